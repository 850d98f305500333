"""A second distro repo, not this one: release 1.21 of "acme", whose own patches declare
their own proofs in ``Proof:`` trailers, and a ``FakeNodes`` cluster that answers them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.fake_nodes import FakeNodes
from tests.helpers.gitrepo import K8S_LIKE_FILES, git, write_manifest
from tests.helpers.shipped import (
    NODE_COMPONENTS,
    SHIPPED,
    containerd_answers,
    kube_system_pods,
    make_shipped,
    write_shipped_images,
)
from tkedistro.cluster.config import cluster_name
from tkedistro.cluster.lifecycle import ClusterState

RELEASE = "1.21"
VERSION = "v1.21.0-tke.1"
REQUIRED = "Patch-Kind: carry\nUpstream-Ref: none\nUpstream-Status: not-submitted"
SCHEDULER_PROOF = ("Proof: component-http component=kube-scheduler method=PUT\n"
                   " path=/debug/flags/v anonymous=403 body=3 restore-flag=v")
QUOTA_PROOF = "Proof: cgroup-value controller=cpu file=cpu.cfs_quota_us equals=5000 cgroups=pod"
UID = "0b5e6d1c-acme-4c1e-9d7a-2f1f0f3e9a11"
ROOT = "/acme-node/kubelet"
PATCHES = {  # file name -> (files it changes, commit message)
    "0001-kube-scheduler-debug-flags.patch": (
        {"cmd/kube-scheduler/main.go": "package main\n\n// serves /debug/flags/v\n"},
        f"kube-scheduler: serve /debug/flags/v\n\n{REQUIRED}\n{SCHEDULER_PROOF}"),
    "0002-kubelet-cpu-quota.patch": (
        {"pkg/kubelet/cm/limits.go": "package cm\n\nconst quota = true\n"},
        f"kubelet: write the pod's cpu quota\n\n{REQUIRED}\n{QUOTA_PROOF}"),
    "0003-readme.patch": ({"README.md": "# acme\n"}, f"README: acme\n\n{REQUIRED}"),
}


@dataclass
class OtherDistro:
    root: Path
    cluster: str  # the cluster's name, as `cluster up` would give it
    control: str
    worker: str

    def patch(self, name: str) -> Path:
        return self.root / "patches" / RELEASE / name


def _format_patches(tmp_path: Path, out: Path) -> str:
    """Commit each patch on a k8s-shaped repo and ``git format-patch`` it; the base commit."""
    work = tmp_path / "acme-work"
    work.mkdir()
    git(work, "init", "-q", "-b", "master")
    for rel, text in K8S_LIKE_FILES.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "base")
    base = git(work, "rev-parse", "HEAD")
    for number, (name, (files, message)) in enumerate(PATCHES.items(), 1):
        for rel, text in files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(text)
        git(work, "add", "-A")
        git(work, "commit", "-qm", message)
        made = Path(git(work, "format-patch", "-1", f"--start-number={number}", "-o", str(out)))
        made.rename(out / name)
    return base


def make_other_distro(tmp_path: Path) -> OtherDistro:
    """The repo, its manifest listing the three patches, and the state file of a running
    2-node cluster of it."""
    root = tmp_path / "acme"
    base = _format_patches(tmp_path, root / "patches" / RELEASE)
    write_manifest(root, RELEASE, url="https://example.invalid/acme/kubernetes.git",
                   tag="v1.21.0", commit=base,
                   patches=[f"patches/{RELEASE}/{name}" for name in PATCHES],
                   components=list(NODE_COMPONENTS), extra=f"images: [{', '.join(SHIPPED)}]\n")
    write_shipped_images(root / "_output" / RELEASE, version=VERSION)
    name = cluster_name(RELEASE, root)
    control, worker = f"{name}-control-plane", f"{name}-worker"
    state = ClusterState(name, RELEASE, (control, worker), ("172.18.0.2", "172.18.0.3"),
                         "node", "", str(root / "_cluster" / RELEASE / "kubeconfig"), "dns",
                         0.0, 0.0, api_port=40000)
    (root / "_cluster" / RELEASE).mkdir(parents=True)
    (root / "_cluster" / RELEASE / "cluster.json").write_text(json.dumps(state.to_json()))
    return OtherDistro(root, name, control, worker)


def answering_cluster(distro: OtherDistro, *, quota: str = "5000") -> FakeNodes:
    """Its nodes, up and Ready, answering what the two proofs ask (``quota``: what the pod's
    cpu.cfs_quota_us reads)."""
    shipped = {c: make_shipped(c) for c in SHIPPED}  # as make_other_distro wrote them
    nodes = FakeNodes()
    nodes.add_cluster(distro.cluster, [distro.control, distro.worker])
    nodes.pod_cidrs = {distro.control: "10.244.0.0/24", distro.worker: "10.244.1.0/24"}
    nodes.ready = {distro.control, distro.worker}
    pod = {"metadata": {"namespace": "tkedistro-proofs", "name": "patch-proof", "uid": UID},
           "spec": {"nodeName": distro.worker, "containers": [{"name": "app", "image": "p"}]},
           "status": {"containerStatuses": [{"containerID": "containerd://cccc"}]}}
    folder = f"/sys/fs/cgroup/cpu{ROOT}/kubepods/pod{UID}"
    nodes.answers = {
        "openssl x509": (0, "subject=O = system:masters, CN = kube-apiserver-kubelet-client\n"),
        "cat /etc/kubernetes/manifests/kube-scheduler.yaml": (0, "    - --v=2\n"),
        "--cert /etc/kubernetes/pki/": (0, "successfully set klog.logging.verbosity\n200"),
        "curl -sSk": (0, "forbidden: User \"system:anonymous\"\n403"),
        "get pod patch-proof -o json": (0, json.dumps(pod)),
        "cat /run/tkedistro-cgroup-root": (0, ROOT + "\n"),
        "uname -r": (0, "5.10.0\n"),
        f"grep -H  {folder}/cpu.cfs_quota_us": (0, f"{folder}/cpu.cfs_quota_us:{quota}\n"),
        "get pods -n kube-system -o json": (0, kube_system_pods(
            shipped, [distro.control, distro.worker], VERSION)),
        **containerd_answers(shipped, version=VERSION),
    }
    return nodes
