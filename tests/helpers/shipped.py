"""A release output's shipped images as ``tkedistro build`` leaves them, small: for each
component an OCI archive whose ``index.json`` names one image index (two platforms), and
``images/images.json`` listing them; plus what a node's containerd answers about them once it
pulled one platform (``ctr images list``, ``ctr content get``), for a fake node engine."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.manifests import manifest_text

SHIPPED = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "pause")
NODE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
                   "kubelet", "kubectl", "kubeadm")
PLATFORMS = ("linux/amd64", "linux/arm64")
VERSION = "v1.20.2-tke.1"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def cluster_manifest_text(images: Sequence[str] = SHIPPED) -> str:
    """A release that builds the node's binaries and ships the cluster's images."""
    return manifest_text(components=NODE_COMPONENTS,
                         extra=f"images: [{', '.join(images)}]\n" if images else "")


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Shipped:
    """One component's archive: its index digest, and per platform its manifest and config."""

    component: str
    index: bytes
    manifests: dict[str, bytes]  # platform -> manifest bytes
    configs: dict[str, str]  # platform -> config digest

    @property
    def index_digest(self) -> str:
        return digest(self.index)

    def manifest_digest(self, platform: str) -> str:
        return digest(self.manifests[platform])


def _blob(component: str, platform: str) -> tuple[bytes, str]:
    config = digest(f"{component} {platform} config".encode())
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 1},
        "layers": []}, sort_keys=True).encode()
    return manifest, config


def make_shipped(component: str) -> Shipped:
    blobs = {p: _blob(component, p) for p in PLATFORMS}
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [
        {"mediaType": MANIFEST_TYPE, "digest": digest(blobs[p][0]), "size": len(blobs[p][0]),
         "platform": {"os": p.split("/")[0], "architecture": p.split("/")[1]}}
        for p in PLATFORMS]}, sort_keys=True).encode()
    return Shipped(component, index, {p: b[0] for p, b in blobs.items()},
                   {p: b[1] for p, b in blobs.items()})


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_shipped_images(out: Path, components: Sequence[str] = SHIPPED,
                         version: str = VERSION) -> dict[str, Shipped]:
    """``out/images/<component>.oci.tar`` and ``out/images/images.json``."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    made, entries = {}, []
    for component in components:
        shipped = made[component] = make_shipped(component)
        index_json = {"schemaVersion": 2, "manifests": [{
            "mediaType": INDEX_TYPE, "digest": shipped.index_digest, "size": len(shipped.index),
            "annotations": {"org.opencontainers.image.ref.name": version}}]}
        with tarfile.open(out / f"images/{component}.oci.tar", "w") as tar:
            _add(tar, "index.json", json.dumps(index_json).encode())
            _add(tar, f"blobs/sha256/{shipped.index_digest[7:]}", shipped.index)
            for data in shipped.manifests.values():
                _add(tar, f"blobs/sha256/{digest(data)[7:]}", data)
        entries.append({"component": component, "archive": f"images/{component}.oci.tar",
                        "ref": f"tkedistro.local/k8s/{component}:{version}",
                        "index_digest": shipped.index_digest, "inputs": "sha256:" + "0" * 64,
                        "size": 1, "sha256": "sha256:" + "0" * 64,
                        "manifests": {p: shipped.manifest_digest(p) for p in PLATFORMS}})
    (out / "images/images.json").write_text(json.dumps({"schema": 1, "images": entries}))
    return made


def containerd_answers(made: dict[str, Shipped], platform: str = "linux/amd64",
                       version: str = VERSION) -> dict[str, tuple[int, str]]:
    """What a node's ``ctr -n k8s.io`` answers once it pulled ``platform`` of each image:
    ``images list`` (the ref, and the image id the CRI plugin names each image by too) and
    ``content get`` of the index and of that platform's manifest only."""
    rows = ["REF TYPE DIGEST SIZE PLATFORMS LABELS"]
    answers: dict[str, tuple[int, str]] = {}
    for shipped in made.values():
        ref = f"127.0.0.1:5000/tkedistro/{shipped.component}:{version}"
        for name in (ref, shipped.configs[platform]):
            rows.append(f"{name} {INDEX_TYPE} {shipped.index_digest} 1.0 MiB "
                        "linux/amd64,linux/arm64 io.cri-containerd.image=managed")
        answers[f"content get {shipped.index_digest}"] = (0, shipped.index.decode())
        answers[f"content get {shipped.manifest_digest(platform)}"] = (
            0, shipped.manifests[platform].decode())
        other = [p for p in PLATFORMS if p != platform]
        for p in other:
            answers[f"content get {shipped.manifest_digest(p)}"] = (
                1, f"ctr: content digest {shipped.manifest_digest(p)}: not found")
    answers["images list"] = (0, "\n".join(rows) + "\n")
    return answers


def kube_system_pods(made: dict[str, Shipped], nodes: Sequence[str],
                     version: str = VERSION) -> str:
    """``kubectl get pods -n kube-system -o json``: the control plane on ``nodes[0]``,
    kube-proxy on every node, each with the imageID the kubelet reports."""
    def pod(component: str, node: str) -> dict[str, object]:
        repo = f"127.0.0.1:5000/tkedistro/{component}"
        return {"metadata": {"name": f"{component}-{node}"}, "spec": {"nodeName": node},
                "status": {"containerStatuses": [{
                    "name": component, "image": f"{repo}:{version}",
                    "imageID": f"{repo}@{made[component].index_digest}"}]}}

    items = [pod(c, nodes[0]) for c in SHIPPED[:3] if c in made]
    items += [pod("kube-proxy", n) for n in nodes if "kube-proxy" in made]
    return json.dumps({"items": items})

