"""Which images the cluster's nodes actually run, read back from the nodes.

For each shipped image (``shippedimages.SHIPPED``) and each node where it runs: the control
plane's and kube-proxy's pods as the API server reports them (``imageID``: the image index the
kubelet pulled, ``<ref>@sha256:...``) and the node's containerd (``ctr -n k8s.io``): the
index its ref points at, and the one platform manifest of that index the node unpacked (the
manifest whose config is the image id the CRI plugin recorded). pause, the sandbox of every
pod, is read on every node from containerd alone. Compared with ``images.json``, the record
says whether the cluster runs exactly what the release ships (``running-images.json`` in a
results folder, one line in its summary).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tkedistro.cluster import bootstrap
from tkedistro.cluster.config import ClusterConfig
from tkedistro.cluster.shippedimages import CONTROL_PLANE, PAUSE, SHIPPED
from tkedistro.engine.protocols import NodeEngine
from tkedistro.images.push import ArchivedImage
from tkedistro.model.refs import parse_image_ref

RECORD_NAME = "running-images.json"
CTR = ("ctr", "--namespace", "k8s.io")
REPORT_WAIT_S = 120.0  # how long the kubelet may take to report a static pod's image
REPORT_POLL_S = 2.0


@dataclass(frozen=True)
class RunningImage:
    """One shipped image on one node: what images.json records and what the node runs."""

    component: str
    node: str
    ref: str
    expected_index: str  # images.json's index digest
    index_digest: str  # the index the node's containerd holds for ref ("" when none)
    pod_image_id: str  # the digest of the pod's imageID ("" for pause)
    platform: str  # the platform the node unpacked ("" when not found)
    manifest_digest: str  # that platform's manifest digest in the node ("" when not found)
    expected_manifest: str  # images.json's manifest digest for that platform

    @property
    def matches(self) -> bool:
        pod = self.component == PAUSE or self.pod_image_id == self.expected_index
        return (pod and self.index_digest == self.expected_index and bool(self.platform)
                and self.manifest_digest == self.expected_manifest)

    def to_json(self) -> dict[str, object]:
        return {"component": self.component, "node": self.node, "ref": self.ref,
                "index_digest": self.index_digest, "expected_index_digest": self.expected_index,
                "pod_image_id": self.pod_image_id, "platform": self.platform,
                "manifest_digest": self.manifest_digest,
                "expected_manifest_digest": self.expected_manifest, "matches": self.matches}


@dataclass(frozen=True)
class RunningImages:
    """Every shipped image on every node it runs on."""

    images: tuple[RunningImage, ...]

    @property
    def missing(self) -> list[str]:
        """Shipped images seen running on no node."""
        seen = {i.component for i in self.images}
        return [c for c in SHIPPED if c not in seen]

    @property
    def ok(self) -> bool:
        return not self.missing and all(i.matches for i in self.images)

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "missing": self.missing,
                "images": [i.to_json() for i in self.images]}

    def format_text(self) -> str:
        """The summary's line."""
        components = list(dict.fromkeys(i.component for i in self.images))
        if self.ok:
            return (f"shipped images running: {len(components)} of {len(SHIPPED)} with the "
                    "index and platform manifest digests of images.json "
                    f"({', '.join(components)})")
        wrong = sorted({f"{i.component} on {i.node}" for i in self.images if not i.matches})
        parts = [f"not running: {', '.join(self.missing)}"] if self.missing else []
        parts += [f"digests differ from images.json: {', '.join(wrong)}"] if wrong else []
        return "shipped images running: " + "; ".join(parts)


def read_running_images(engine: NodeEngine, config: ClusterConfig, nodes: Sequence[str],
                        expected: Sequence[ArchivedImage]) -> RunningImages:
    """What ``nodes`` (the control plane first) run of the ``expected`` shipped images."""
    pods = _reported_pod_images(engine, nodes[0])
    found = []
    for node in nodes:
        refs = _image_refs(engine, node)
        for image in expected:
            pod_id = pods.get((image.component, node), "")
            if image.component != PAUSE and not pod_id:
                continue  # not running on this node
            found.append(_on_node(engine, node, config.shipped_image(image.component), image,
                                  refs, pod_id))
    return RunningImages(tuple(found))


def _on_node(engine: NodeEngine, node: str, ref: str, image: ArchivedImage,
             refs: Mapping[str, str], pod_id: str) -> RunningImage:
    index = refs.get(ref, "")
    platform, manifest = _unpacked(engine, node, index, refs) if index else ("", "")
    return RunningImage(image.component, node, ref, image.index_digest, index, pod_id,
                        platform, manifest, image.platforms.get(platform, ""))


def _reported_pod_images(engine: NodeEngine, control: str,
                         wait_s: float = REPORT_WAIT_S) -> dict[tuple[str, str], str]:
    """``_pod_images``, read again (for up to ``wait_s``) until the kubelet has reported the
    image of every control-plane pod on ``control`` and of every kube-proxy pod: right after
    ``kubeadm init`` a static pod's mirror pod may not exist yet, or be Pending without
    container statuses."""
    deadline = time.monotonic() + wait_s
    while True:
        pods = _pod_images(engine, control)
        reported = {key: digest for key, digest in pods.items() if digest}
        complete = all(pods.values()) and all((c, control) in reported for c in CONTROL_PLANE)
        if complete or time.monotonic() >= deadline:
            return reported
        time.sleep(REPORT_POLL_S)


def _pod_images(engine: NodeEngine, control: str) -> dict[tuple[str, str], str]:
    """(component, node) -> the digest of the imageID its kube-system pod runs."""
    got = bootstrap.kubectl(engine, control, "get", "pods", "-n", "kube-system", "-o", "json")
    try:
        pods = json.loads(got.output) if got.ok else {}
    except ValueError:
        return {}  # no answer to read: nothing seen running (the record says so)
    return dict(pod_image_ids(pods)) if isinstance(pods, dict) else {}


def pod_image_ids(pods: Mapping[str, object]) -> Iterable[tuple[tuple[str, str], str]]:
    """From ``kubectl get pods -o json``: ((component, node), index digest) for the control
    plane's static pods and kube-proxy's."""
    items = pods.get("items")
    for pod in items if isinstance(items, list) else []:
        node = str(pod.get("spec", {}).get("nodeName", ""))
        for status in pod.get("status", {}).get("containerStatuses") or []:
            name = str(status.get("name", ""))
            if name in (*CONTROL_PLANE, "kube-proxy"):
                yield (name, node), parse_image_ref(str(status.get("imageID", ""))).digest
        named = {str(s.get("name", "")) for s in pod.get("status", {}).get(
            "containerStatuses") or []}
        component = str(pod.get("metadata", {}).get("labels", {}).get("component", ""))
        if component in CONTROL_PLANE and component not in named:
            yield (component, node), ""  # its mirror pod has no container status yet


def _image_refs(engine: NodeEngine, node: str) -> dict[str, str]:
    got = engine.exec(node, [*CTR, "images", "list"])
    return parse_image_list(got.output) if got.ok else {}


def parse_image_list(text: str) -> dict[str, str]:
    """``ctr images list`` (REF TYPE DIGEST ...) -> ref -> the digest it points at."""
    found = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[2].startswith("sha256:"):
            found[fields[0]] = fields[2]
    return found


def _content(engine: NodeEngine, node: str, digest: str) -> dict[str, object] | None:
    got = engine.exec(node, [*CTR, "content", "get", digest])
    try:
        data = json.loads(got.output) if got.ok else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _unpacked(engine: NodeEngine, node: str, index: str,
              refs: Mapping[str, str]) -> tuple[str, str]:
    """(platform, manifest digest) of the index's manifest the node's CRI unpacked: its blob
    is in the node's content store and its config is an image id the CRI plugin recorded
    (containerd names each pulled image by its id, ``sha256:<config digest>``, too)."""
    data = _content(engine, node, index)
    entries = data.get("manifests") if data else None
    for entry in entries if isinstance(entries, list) else []:
        manifest = _content(engine, node, str(entry.get("digest", "")))
        config = manifest.get("config") if manifest else None
        if isinstance(config, dict) and str(config.get("digest")) in refs:
            platform = entry.get("platform") or {}
            return (f"{platform.get('os', '')}/{platform.get('architecture', '')}",
                    str(entry.get("digest")))
    return "", ""
