"""The check's own pod, in its own namespace, for the kinds that look at a pod's metrics or
cgroups: Guaranteed (a cpu and memory limit), so the kubelet makes ``kubepods/pod<uid>``
and writes its memory limit there."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tkedistro.cluster import bootstrap
from tkedistro.cluster.config import IMAGE_PATH, NODE_REGISTRY, PAUSE_TAG, scaled
from tkedistro.core.render import yaml_documents
from tkedistro.engine.protocols import NodeEngine

NAMESPACE, POD, CONTAINER = "tkedistro-proofs", "patch-proof", "app"
IMAGE = f"{NODE_REGISTRY}/{IMAGE_PATH}/pause:{PAUSE_TAG}"  # in every cluster's registry
MEMORY_LIMIT = 32 * 1024 * 1024


@dataclass(frozen=True)
class ProofPod:
    namespace: str
    name: str
    uid: str
    node: str
    container: str
    image: str  # as the pod spec names it
    container_id: str  # containerd's id of the container


def pod_manifest() -> str:
    limits = {"cpu": "50m", "memory": str(MEMORY_LIMIT)}  # Guaranteed: kubepods/pod<uid>
    return yaml_documents(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD, "namespace": NAMESPACE},
         "spec": {"terminationGracePeriodSeconds": 1, "containers": [
             {"name": CONTAINER, "image": IMAGE, "imagePullPolicy": "IfNotPresent",
              "resources": {"requests": limits, "limits": limits}}]}})


def read_pod(data: Mapping[str, Any]) -> ProofPod:
    """The pod as ``kubectl get -o json`` shows it once it is Ready."""
    meta, spec = data["metadata"], data["spec"]
    container = spec["containers"][0]
    status = data["status"]["containerStatuses"][0]
    return ProofPod(meta["namespace"], meta["name"], meta["uid"], spec["nodeName"],
                    container["name"], container["image"],
                    str(status.get("containerID", "")).removeprefix("containerd://"))


def _delete_namespace(engine: NodeEngine, control: str) -> None:
    bootstrap.kubectl(engine, control, "delete", "namespace", NAMESPACE, "--ignore-not-found",
                      f"--timeout={scaled(120):.0f}s")


@contextmanager
def proof_pod(engine: NodeEngine, control: str) -> Iterator[ProofPod]:
    """The check's own pod in its own namespace (a killed run's is removed first); deleted
    after."""
    _delete_namespace(engine, control)
    try:
        bootstrap.apply(engine, control, "tkedistro-proofs", pod_manifest())
        bootstrap.wait_for(f"pod {NAMESPACE}/{POD} Ready", lambda: bootstrap.kubectl(
            engine, control, "-n", NAMESPACE, "wait", "--for=condition=Ready", f"pod/{POD}",
            "--timeout=5s").ok, 120, every_s=1,
            hint=f"docker exec {control} kubectl --kubeconfig {bootstrap.ADMIN} -n {NAMESPACE} "
                 f"describe pod {POD}")
        got = bootstrap.kubectl(engine, control, "-n", NAMESPACE, "get", "pod", POD, "-o", "json")
        yield read_pod(json.loads(got.output))
    finally:
        _delete_namespace(engine, control)
