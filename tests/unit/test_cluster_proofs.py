"""``tkedistro cluster prove``: each patch checked on the running cluster, here against a fake
cluster (a ``NodeEngine`` answering as the real nodes did), patched and unpatched."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
from typer.testing import CliRunner, Result

from tests.conftest import REPO
from tests.helpers.engines import use_engines
from tests.helpers.shipped import (
    SHIPPED,
    Shipped,
    containerd_answers,
    kube_system_pods,
    make_shipped,
    write_shipped_images,
)
from tkedistro.cli.app import app
from tkedistro.cluster import proofs
from tkedistro.cluster.config import cluster_name
from tkedistro.cluster.lifecycle import ClusterState
from tkedistro.cluster.proofkinds import cgroupvalue, componenthttp, metriclabels
from tkedistro.cluster.proofkinds.cgroupvalue import judge_kmem
from tkedistro.cluster.proofkinds.componenthttp import HttpAnswer, manifest_flag, subject_groups
from tkedistro.cluster.proofkinds.metriclabels import parse_metrics
from tkedistro.cluster.proofkinds.pod import ProofPod
from tkedistro.core.workspace import Workspace
from tkedistro.engine.protocols import NodeInfo, RunResult
from tkedistro.model.manifest import load_release

KCM_PATCH = "0001-kube-controller-manager-dynamic-log-level.patch"
METRICS_PATCH = "0002-kubelet-containerd-container-metric-labels.patch"
KMEM_PATCH = "0003-kubelet-kmem-accounting-off.patch"
KCM_MANIFEST = componenthttp.MANIFESTS / "kube-controller-manager.yaml"

CONTROL, WORKER = "tke-1-20-abcdef-control-plane", "tke-1-20-abcdef-worker"
UID = "4f42337e-f5e2-418a-a3e8-6e8dd74b7bb4"
ROOT = "/tke-1-20-abcdef/6ef2a43/kubelet"
POD_CG = f"{ROOT}/kubepods/pod{UID}"
UNLIMITED = "9223372036854771712"
STATUS_403 = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403,
                         "message": 'forbidden: User "system:anonymous" cannot put path '
                                    '"/debug/flags/v"'})


def _series(container: str, cgroup: str, image: str, *, pod: str = "patch-proof",
            ns: str = "tkedistro-proofs", name: str = "container_cpu_usage_seconds_total") -> str:
    return (f'{name}{{container="{container}",cpu="total",id="{cgroup}",image="{image}",'
            f'name="",namespace="{ns}",pod="{pod}"}} 0.04 1796172318163')


PAUSE = "127.0.0.1:5000/tkedistro/pause:3.2"
PATCHED_METRICS = "\n".join([
    "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.",
    "# TYPE container_cpu_usage_seconds_total counter",
    _series("", POD_CG, ""),
    _series("POD", f"{POD_CG}/aaaa", PAUSE),
    _series("POD", f"{POD_CG}/aaaa", PAUSE, name="container_network_receive_bytes_total"),
    _series("app", f"{POD_CG}/bbbb", PAUSE),
    _series("kube-proxy", f"{ROOT}/kubepods/besteffort/podx/cccc", "kube-proxy:v1.20.2",
            pod="kube-proxy-dmrsb", ns="kube-system"),
]) + "\n"
# without patch 0002 containerd's sandbox has no container name label
UNPATCHED_METRICS = PATCHED_METRICS.replace('container="POD"', 'container=""')
# the first cluster: cAdvisor never reached containerd, so no labels at all
UNLABELLED_METRICS = re.sub(r'(container|image|namespace|pod)="[^"]*"', r'\1=""',
                            PATCHED_METRICS)


V2_STAT = ("anon 1048576", "file 0", "kernel 1310720", "kernel_stack 32768", "pagetables 0",
           "sock 0", "slab 483328", "slab_reclaimable 200000")


@dataclass
class FakeCluster:
    """Answers ``exec`` as the nodes of a 2-node cluster do; records every command."""

    kcm: str = "patched"  # "unpatched": no /debug/flags/v (404); "no-anonymous": 401
    verbosity_flag: str = ""  # a "--v=N" line in kube-controller-manager.yaml
    metrics: str = PATCHED_METRICS
    kernel: str = "6.18.44-fc-v1045"
    kmem: Mapping[str, str] = field(default_factory=lambda: {
        "memory.kmem.limit_in_bytes": UNLIMITED, "memory.kmem.usage_in_bytes": "356352",
        "memory.kmem.max_usage_in_bytes": "647168"})
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    cgroup_fs: str = "tmpfs"  # ``stat -fc %T /sys/fs/cgroup``: "cgroup2fs" on a v2 node
    root: str = ROOT  # the node's /run/tkedistro-cgroup-root
    # the release's shipped images (as _distro writes them) and what containerd says of them
    shipped: dict[str, Shipped] = field(default_factory=lambda: {
        c: make_shipped(c) for c in SHIPPED})
    containerd: dict[str, tuple[int, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.containerd = self.containerd or containerd_answers(self.shipped)

    def nodes(self, labels: Mapping[str, str]) -> list[NodeInfo]:
        return [NodeInfo(n, n, True, dict(labels), a)
                for n, a in ((CONTROL, "172.24.0.2"), (WORKER, "172.24.0.3"))]

    def put_file(self, name: str, path: PurePosixPath, data: bytes, mode: int = 0o644) -> None:
        self.files[f"{name}:{path}"] = data

    def exec(self, name: str, argv: Sequence[str]) -> RunResult:
        self.calls.append((name, tuple(argv)))
        code, out = self._answer(name, list(argv))
        return RunResult(tuple(argv), code, out)

    def _answer(self, node: str, argv: list[str]) -> tuple[int, str]:
        if argv[:3] == ["ctr", "--namespace", "k8s.io"]:
            line = " ".join(argv)
            return next((v for k, v in self.containerd.items() if k in line), (1, "not found"))
        if argv[0] == "kubectl":
            return self._kubectl(argv[2:])
        if argv[0] == "curl":
            return self._curl(argv)
        if argv[:2] == ["openssl", "x509"]:
            return 0, "subject=O = system:masters, CN = kube-apiserver-kubelet-client\n"
        if argv == ["cat", str(KCM_MANIFEST)]:
            return 0, f"spec:\n  containers:\n  - command:\n    - kube-controller-manager\n" \
                      f"    - --port=0\n{self.verbosity_flag}"
        if argv == ["cat", str(cgroupvalue.CGROUP_ROOT_FILE)]:
            return 0, self.root + "\n"
        if argv == ["stat", "-fc", "%T", "/sys/fs/cgroup"]:
            return 0, self.cgroup_fs + "\n"
        if argv == ["uname", "-r"]:
            return 0, self.kernel + "\n"
        if argv[:4] == ["ctr", "-n", "k8s.io", "containers"]:
            return 0, json.dumps({"ID": argv[-1], "Image": PAUSE})
        if argv[:3] == ["grep", "-H", ""]:
            return 0, "".join(self._cgroup_file(p) for p in argv[3:])
        raise AssertionError(f"unexpected command on {node}: {argv}")

    def _cgroup_file(self, path: str) -> str:
        folder, _, name = path.rpartition("/")
        limit = "33554432" if folder.endswith(f"pod{UID}") else "25275990016"
        if self.cgroup_fs == "cgroup2fs":
            return self._v2_file(path, limit)
        value = limit if name == "memory.limit_in_bytes" else self.kmem.get(name)
        return f"{path}:{value}\n" if value is not None else \
            f"grep: {path}: No such file or directory\n"

    def _v2_file(self, path: str, limit: str) -> str:
        if not path.startswith("/sys/fs/cgroup/kubelet/kubepods"):  # one tree on v2
            return f"grep: {path}: No such file or directory\n"
        if path.endswith("/memory.max"):
            return f"{path}:{limit}\n"
        if path.endswith("/memory.stat"):
            return "".join(f"{path}:{line}\n" for line in V2_STAT)
        return f"grep: {path}: No such file or directory\n"

    def _curl(self, argv: list[str]) -> tuple[int, str]:
        body, admin = argv[argv.index("--data") + 1], "--cert" in argv
        if not admin:
            return (0, "Unauthorized\n401") if self.kcm == "no-anonymous" else \
                (0, f"{STATUS_403}\n403")
        if self.kcm == "unpatched":  # authorized, but no such path
            return 0, "404 page not found\n\n404"
        if body.isdigit():
            return 0, f"successfully set klog.logging.verbosity to {body}\n200"
        return 0, f'failed set klog.logging.verbosity {body}: strconv.ParseInt: parsing ' \
                  f'"{body}": invalid syntax\n400'

    def _kubectl(self, args: list[str]) -> tuple[int, str]:
        if args[:4] == ["get", "pods", "-n", "kube-system"]:
            return 0, kube_system_pods(self.shipped, [CONTROL, WORKER])
        if args[:2] == ["get", "nodes"]:
            ready = [{"type": "Ready", "status": "True"}]
            return 0, json.dumps({"items": [{"metadata": {"name": n}, "status": {
                "conditions": ready}} for n in (CONTROL, WORKER)]})
        if args[:2] == ["get", "--raw"]:
            assert args[2] == f"/api/v1/nodes/{WORKER}/proxy/metrics/cadvisor"
            return 0, self.metrics
        if args[-3:] == ["pod", "patch-proof", "-o"] or args[-2:] == ["-o", "json"]:
            return 0, json.dumps({
                "metadata": {"namespace": "tkedistro-proofs", "name": "patch-proof", "uid": UID},
                "spec": {"nodeName": WORKER, "containers": [{"name": "app", "image": PAUSE}]},
                "status": {"containerStatuses": [{"containerID": "containerd://bbbb"}]}})
        return 0, ""  # apply, wait, delete

    def curls(self) -> list[str]:
        """The body of each PUT, "admin:" when it carried the client certificate."""
        return [("admin:" if "--cert" in a else "") + a[a.index("--data") + 1]
                for _, a in self.calls if a[0] == "curl"]


STATE = ClusterState("tke-1-20-abcdef", "1.20", (CONTROL, WORKER), ("172.24.0.2", "172.24.0.3"),
                     "node", "", "kubeconfig", "dns", 0.0, 0.0, api_port=40000)


def declared_1_20() -> list[proofs.Declared]:
    """The proofs the repo's own 1.20 series declares in its patches' trailers."""
    ws = Workspace(REPO, REPO / "_no_cache")
    return proofs.declared_proofs(ws, load_release(ws, "1.20"))


def _by_patch(cluster: FakeCluster) -> dict[str, proofs.Proof]:
    found = proofs.prove_series(cluster, STATE, declared_1_20())  # type: ignore[arg-type]
    return {p.patch: p for p in found}


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metriclabels, "WAIT_S", 0)
    monkeypatch.setattr(time, "sleep", lambda s: None)


def test_a_patched_cluster_proves_all_three_with_what_it_answered() -> None:
    cluster = FakeCluster()
    found = _by_patch(cluster)
    assert [found[p].passed for p in (KCM_PATCH, METRICS_PATCH, KMEM_PATCH)] == [True] * 3
    kcm = found[KCM_PATCH].evidence
    assert 'no credentials -> 403 forbidden: User "system:anonymous" cannot put path' in kcm
    assert "PUT 5 -> 200 successfully set klog.logging.verbosity to 5" in kcm
    assert "PUT loud -> 400 failed set klog.logging.verbosity loud" in kcm
    metrics = found[METRICS_PATCH].evidence
    assert ('container_cpu_usage_seconds_total{container="POD",pod="patch-proof",'
            f'namespace="tkedistro-proofs",image="{PAUSE}"}}') in metrics
    assert 'container_network_receive_bytes_total{container="POD"' in metrics
    assert 'container="app",pod="patch-proof"' in metrics
    kmem = found[KMEM_PATCH].evidence
    assert (f"kubepods/pod{UID}: limit_in_bytes=33554432 kmem.limit_in_bytes={UNLIMITED} "
            "kmem.usage_in_bytes=356352 kmem.max_usage_in_bytes=647168") in kmem
    assert "kernel 6.18 >= 4.6 charges kmem to every v1 memory cgroup" in kmem


def test_on_a_cgroup_v2_node_the_kmem_check_shows_memory_max_and_the_kernel_lines() -> None:
    cluster = FakeCluster(cgroup_fs="cgroup2fs", root="/kubelet")
    found = _by_patch(cluster)
    assert [found[p].passed for p in (KCM_PATCH, METRICS_PATCH, KMEM_PATCH)] == [True] * 3
    kmem = found[KMEM_PATCH].evidence
    assert kmem.startswith(f"{WORKER} /kubelet (uname 6.18.44-fc-v1045, cgroup v2): "
                           "cgroup v2 has no separate kernel-memory limit")
    assert (f"kubepods/pod{UID}: max=33554432 stat:kernel=1310720 stat:kernel_stack=32768 "
            "stat:slab=483328") in kmem
    read = [a for _, a in cluster.calls if a[:3] == ("grep", "-H", "")]
    assert read[-1][3:] == (f"/sys/fs/cgroup/kubelet/kubepods/pod{UID}/memory.max",
                            f"/sys/fs/cgroup/kubelet/kubepods/pod{UID}/memory.stat")


def test_on_a_cgroup_v2_node_a_pod_without_its_memory_max_fails() -> None:
    cgroups = {"kubepods": {"memory.max": "max"}, f"kubepods/pod{UID}": {"memory.max": "max"}}
    passed, evidence = cgroupvalue.judge_kmem_v2(cgroups, f"kubepods/pod{UID}", 33554432)
    assert not passed
    assert evidence.startswith(f"kubepods/pod{UID}: memory.max is not the pod's limit 33554432;")


def test_everything_runs_inside_the_nodes_and_cleans_up() -> None:
    cluster = FakeCluster(verbosity_flag="    - --v=2\n")
    _by_patch(cluster)
    assert cluster.curls() == ["5", "admin:5", "admin:loud", "admin:2"]  # restored to --v=2
    kubectl = [list(a[2:]) for _, a in cluster.calls if a[0] == "kubectl"]
    assert kubectl[0][:3] == ["delete", "namespace", "tkedistro-proofs"]  # a killed run's
    assert kubectl[-1][:3] == ["delete", "namespace", "tkedistro-proofs"]
    assert {n for n, _ in cluster.calls} == {CONTROL, WORKER}
    manifest = cluster.files[f"{CONTROL}:/etc/tkedistro/manifests/tkedistro-proofs.yaml"]
    assert b"memory: '33554432'" in manifest or b"memory: \"33554432\"" in manifest


def test_kcm_without_the_patch_fails_and_still_restores() -> None:
    cluster = FakeCluster(kcm="unpatched")
    proof = _by_patch(cluster)[KCM_PATCH]
    assert not proof.passed
    assert proof.evidence.startswith(
        "admin PUT 5: 404 404 page not found (expected 200 'successfully set "
        "klog.logging.verbosity to 5'); admin PUT loud: 404 404 page not found (expected 400); "
        "restoring verbosity 0: 404 404 page not found | "
        'no credentials -> 403 forbidden: User "system:anonymous"')
    assert cluster.curls()[-1] == "admin:0"


def test_kcm_answering_401_passes_and_says_why() -> None:
    proof = _by_patch(FakeCluster(kcm="no-anonymous"))[KCM_PATCH]
    assert proof.passed
    assert "no credentials -> 401 Unauthorized [401: anonymous requests are not " \
           "authenticated]" in proof.evidence


def test_an_unlabelled_sandbox_fails_naming_its_cgroup() -> None:
    proof = _by_patch(FakeCluster(metrics=UNPATCHED_METRICS))[METRICS_PATCH]
    assert not proof.passed
    assert proof.evidence.startswith('no series with container="POD" (the sandbox); 2 series of '
                                     f'a container cgroup with container="": {POD_CG}/aaaa')


def test_metrics_without_any_labels_fail_with_the_diagnosis() -> None:
    proof = _by_patch(FakeCluster(metrics=UNLABELLED_METRICS))[METRICS_PATCH]
    assert not proof.passed
    assert proof.evidence == (
        "no series carries pod='patch-proof' namespace='tkedistro-proofs' (3 series of its "
        "container cgroups have empty labels: the kubelet's cAdvisor did not get them from "
        "containerd; is its --containerd socket the node's?)")


def test_a_kmem_limit_on_a_pod_cgroup_fails() -> None:
    kmem = {"memory.kmem.limit_in_bytes": "4096", "memory.kmem.usage_in_bytes": "8192"}
    proof = _by_patch(FakeCluster(kmem=kmem))[KMEM_PATCH]
    assert not proof.passed
    assert proof.evidence.split("): ", 1)[1].startswith(
        "kubepods: a kernel-memory limit is set; kubepods/pod" + UID + ": a kernel-memory "
        "limit is set")


POD = ProofPod("tkedistro-proofs", "patch-proof", UID, WORKER, "app", PAUSE, "bbbb")


def _cgroups(usage: str) -> dict[str, dict[str, str]]:
    files = {"memory.kmem.limit_in_bytes": UNLIMITED, "memory.kmem.usage_in_bytes": usage,
             "memory.kmem.max_usage_in_bytes": usage}
    return {"kubepods": {"memory.limit_in_bytes": "25275990016", **files},
            "kubepods/podU": {"memory.limit_in_bytes": "33554432", **files}}


def test_on_a_3_10_kernel_kmem_usage_must_read_zero() -> None:
    passed, evidence = judge_kmem((3, 10), _cgroups("0"), "kubepods/podU", 33554432)
    assert passed and "kernel 3.10 < 4.6: kmem accounted only after a limit write" in evidence
    passed, evidence = judge_kmem((3, 10), _cgroups("12288"), "kubepods/podU", 33554432)
    assert not passed
    assert evidence.startswith("kubepods: kernel memory is being accounted; kubepods/podU: "
                               "kernel memory is being accounted")


def test_kmem_judged_on_the_pods_own_cgroup_only() -> None:
    passed, evidence = judge_kmem((6, 18), _cgroups("0"), "kubepods/podOther", 33554432)
    assert not passed
    assert evidence.startswith("kubepods/podOther: memory.limit_in_bytes is not the pod's "
                               "limit 33554432")


def test_a_kernel_without_kmem_files_has_nothing_to_enable() -> None:
    cgroups = {"kubepods/podU": {"memory.limit_in_bytes": "33554432"}}
    passed, evidence = judge_kmem((6, 18), cgroups, "kubepods/podU", 33554432)
    assert passed and "this kernel has no memory.kmem.* files" in evidence


def test_metric_labels_are_parsed_with_escapes() -> None:
    text = 'm{a="x\\"y",b=""} 1\n# c{d="e"} 2\nbare 3\n'
    assert [(s.name, dict(s.labels)) for s in parse_metrics(text)] == [("m", {"a": 'x"y',
                                                                              "b": ""})]


@pytest.mark.parametrize(("manifest", "level"), [("    - --v=4\n", "4"), ("    - -v=3\n", "3"),
                                                 ("    - --vmodule=x=2\n", "0"), ("", "0")])
def test_the_verbosity_to_restore_comes_from_the_manifest(manifest: str, level: str) -> None:
    assert manifest_flag(f"    - kube-controller-manager\n{manifest}", "v") == level


def test_certificate_groups_in_both_openssl_formats() -> None:
    assert subject_groups("subject=O = system:masters, CN = kube-apiserver-kubelet-client") == \
        ["system:masters"]
    assert subject_groups("subject= /O=system:masters/CN=kubernetes-admin") == ["system:masters"]
    assert subject_groups("subject=CN = kube-controller-manager") == []


def test_a_status_body_is_shown_by_its_message() -> None:
    assert HttpAnswer(403, STATUS_403).show() == \
        '403 forbidden: User "system:anonymous" cannot put path "/debug/flags/v"'
    assert HttpAnswer(0, "curl: (7) Failed to connect").show() == \
        "no answer curl: (7) Failed to connect"


# --- the command ---------------------------------------------------------------------------

def _distro(tmp_path: Path, *, state: bool = True) -> Path:
    root = tmp_path / "distro"
    (root / "releases").mkdir(parents=True)
    shutil.copy(REPO / "releases" / "1.20.yaml", root / "releases" / "1.20.yaml")
    shutil.copytree(REPO / "patches", root / "patches")
    write_shipped_images(root / "_output" / "1.20")
    if state:
        name = cluster_name("1.20", root)
        data = {**STATE.to_json(), "name": name,
                "kubeconfig": str(root / "_cluster" / "1.20" / "kubeconfig")}
        (root / "_cluster" / "1.20").mkdir(parents=True)
        (root / "_cluster" / "1.20" / "cluster.json").write_text(json.dumps(data))
    return root


def _prove(monkeypatch: pytest.MonkeyPatch, root: Path, cluster: FakeCluster,
           *args: str) -> Result:
    use_engines(monkeypatch, nodes=cluster)
    return CliRunner().invoke(app, ["--root", str(root), "cluster", "prove", "1.20", *args],
                              env={"COLUMNS": "1000"})


def test_prove_prints_pass_per_patch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _prove(monkeypatch, _distro(tmp_path), FakeCluster())
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("patches of 1.20 on cluster tke-1-20-")
    assert [line.strip() for line in lines if line.strip().startswith(("PASS", "FAIL"))] == [
        f"PASS  {KCM_PATCH}", f"PASS  {METRICS_PATCH}", f"PASS  {KMEM_PATCH}"]
    assert "note: the cluster runs another build than _output/1.20" in result.stdout


def test_a_failed_proof_exits_22_naming_the_patch(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    result = _prove(monkeypatch, _distro(tmp_path), FakeCluster(metrics=UNPATCHED_METRICS),
                    "--json")
    assert result.exit_code == 22
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [(p["patch"], p["passed"]) for p in report["proofs"]] == [
        (KCM_PATCH, True), (METRICS_PATCH, False), (KMEM_PATCH, True)]
    assert (f"1 of 3 patches of 1.20 did not show their effect on cluster "
            f"{cluster_name('1.20', tmp_path / 'distro')}: {METRICS_PATCH}") in result.stderr


def test_prove_needs_a_running_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _prove(monkeypatch, _distro(tmp_path, state=False), FakeCluster())
    assert result.exit_code == 16
    assert "the cluster of 1.20 (tke-1-20-" in result.stderr
    assert "hint: start it: tkedistro cluster up 1.20" in result.stderr


def test_reordering_the_series_keeps_every_proof_attached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _distro(tmp_path)
    moved = CliRunner().invoke(app, ["--root", str(root), "patches", "reorder", "1.20",
                                     "--move", "0003", "--before", "0001",
                                     "--renumber"])  # issue 28: every file renamed
    assert moved.exit_code == 0, moved.output
    renamed = ["0001-kubelet-kmem-accounting-off.patch",
               "0002-kube-controller-manager-dynamic-log-level.patch",
               "0003-kubelet-containerd-container-metric-labels.patch"]
    assert sorted(p.name for p in (root / "patches" / "1.20").iterdir()) == renamed
    result = _prove(monkeypatch, root, FakeCluster(), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(p["patch"], p["kind"], p["passed"]) for p in report["proofs"]] == [
        (renamed[0], "cgroup-value", True), (renamed[1], "component-http", True),
        (renamed[2], "metric-labels", True)]
    assert report["unproven"] == []
    checks = [p["check"] for p in report["proofs"]]
    assert checks[0].startswith("memory cgroups the kubelet on")
    assert checks[1].startswith("PUT https://127.0.0.1:10257/debug/flags/v in")
    assert checks[2].startswith("/metrics/cadvisor of")


def test_the_checks_name_what_each_kind_looked_at(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    result = _prove(monkeypatch, _distro(tmp_path), FakeCluster())
    checks = [line.strip() for line in result.stdout.splitlines()[1:]
              if line.startswith(" " * 8) and not line.strip().startswith("evidence:")]
    assert checks == [
        f"PUT https://127.0.0.1:10257/debug/flags/v in {CONTROL}: refused without credentials, "
        "200 for 5 and 400 for 'loud' as system:masters, then the manifest's verbosity put back",
        f"/metrics/cadvisor of {WORKER} for pod tkedistro-proofs/patch-proof: the pause sandbox "
        'as container="POD" with pod and namespace, container "app" with pod, namespace and '
        "image",
        f"memory cgroups the kubelet on {WORKER} made for pod tkedistro-proofs/patch-proof "
        "(memory limit 33554432) and for kubepods: no kernel-memory limit; kmem usage judged "
        "where the kernel only accounts after a limit write (< 4.6)"]


def test_prove_leaves_its_report_and_the_images_the_nodes_ran_in_a_results_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _distro(tmp_path)
    result = _prove(monkeypatch, root, FakeCluster(), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    folder = Path(report["results_dir"])
    assert folder.parent == root / "_results" / "1.20" / "prove"
    assert folder.name.endswith("-v1.20.2-tke.1")
    assert json.loads((folder / "summary.json").read_text()) == report
    running = json.loads((folder / "running-images.json").read_text())
    assert running == report["running_images"] and running["ok"] is True
    recorded = {e["component"]: e for e in json.loads(
        (root / "_output/1.20/images/images.json").read_text())["images"]}
    assert {(r["component"], r["node"], r["index_digest"], r["manifest_digest"])
            for r in running["images"]} == {
        (c, node, recorded[c]["index_digest"], recorded[c]["manifests"]["linux/amd64"])
        for c, node in [*((c, CONTROL) for c in SHIPPED), ("kube-proxy", WORKER),
                        ("pause", WORKER)]}
    text = _prove(monkeypatch, root, FakeCluster())
    assert ("  shipped images running: 5 of 5 with the index and platform manifest digests of "
            "images.json (kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, "
            "pause)") in text.stdout.splitlines()
    assert len(list(folder.parent.iterdir())) == 2  # a folder per run
