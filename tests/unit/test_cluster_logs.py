"""``tkedistro cluster logs`` against an in-memory ``NodeEngine``: the folder's layout and the
tarball beside it, what cannot be collected named in errors.txt, no credential in either, and
the logs a failed ``cluster up`` collects (with ``--retain`` keeping the nodes)."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.fake_nodes import FakeNodes, install_fake_nodes
from tests.helpers.shipped import cluster_manifest_text, write_shipped_images
from tkedistro.cli.app import app
from tkedistro.cluster import clustercmd, lifecycle, logs
from tkedistro.cluster.config import cluster_name
from tkedistro.core.errors import ClusterError
from tkedistro.core.workspace import Workspace

SECRET = "c2VjcmV0LWtleS1kYXRh"  # what a credential would look like; never in the logs
KUBELET_LOG = "I1207 kubelet started\nE1207 failed to pull image\n"
ETCD_LOG = "2026-12-07T10:00:00Z stderr F etcd serving\n"
ETCD_DIR = "/var/log/pods/kube-system_etcd-cp_0123/etcd"
API_RESOURCES = "configmaps\nevents\npods\nsecrets\nserviceaccounts\n"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "distro" / "releases").mkdir(parents=True)
    return Workspace(root=tmp_path / "distro", cache=tmp_path / "cache")


def _nodes_of(ws: Workspace) -> tuple[str, str, str]:
    name = cluster_name("1.20", ws.root)
    return name, f"{name}-control-plane", f"{name}-worker"


def _cluster(engine: FakeNodes, ws: Workspace) -> tuple[str, str]:
    """A two-node cluster whose nodes hold what a started node holds."""
    name, cp, worker = _nodes_of(ws)
    engine.add_cluster(name, [cp, worker])
    for node in (cp, worker):
        engine.node_files[(node, "/var/log/kubelet.log")] = KUBELET_LOG.encode()
        engine.node_files[(node, "/var/log/containerd.log")] = b"containerd started\n"
        engine.outputs[node] = "[tkedistro-node] cgroup root for pods: /x/kubelet\n"
    engine.node_files[(cp, "/var/log/registry.log")] = b"registry listening\n"
    engine.node_files[(cp, f"{ETCD_DIR}/0.log")] = ETCD_LOG.encode()
    engine.node_links[(cp, "/var/log/containers/etcd-cp_kube-system_etcd-1.log")] = \
        f"{ETCD_DIR}/0.log"
    engine.answers = {"api-resources": (0, API_RESOURCES), "crictl": (127, "not found"),
                      "get nodes --output=wide": (0, f"NAME STATUS\n{cp} Ready\n")}
    return cp, worker


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _members(tarball: Path) -> list[str]:
    with tarfile.open(tarball) as tar:
        return sorted(m.name for m in tar.getmembers() if m.isfile())


def test_the_folder_holds_every_nodes_logs_and_the_tarball_the_same_files(
        ws: Workspace) -> None:
    engine = FakeNodes()
    cp, worker = _cluster(engine, ws)
    got = clustercmd.export_logs(ws, "1.20", engine)
    folder = got.folder
    assert folder.parent == ws.root / "_cluster" / "1.20"
    assert re.fullmatch(r"logs-\d{8}T\d{6}Z", folder.name), folder.name
    tree = _tree(folder)
    for node in (cp, worker):
        for item in ("inspect.json", "entrypoint.log", "var/log/kubelet.log",
                     "var/log/containerd.log", "processes.txt", "ctr-containers.txt",
                     "iptables.txt", "kernel.log"):
            assert f"{node}/{item}" in tree, (node, item)
    assert (folder / cp / "var/log/kubelet.log").read_text() == KUBELET_LOG
    assert (folder / cp / ETCD_DIR.removeprefix("/") / "0.log").read_text() == ETCD_LOG
    assert (folder / cp / "var/log/containers-links.txt").read_text() == (
        f"containers/etcd-cp_kube-system_etcd-1.log -> {ETCD_DIR}/0.log\n")
    assert json.loads((folder / cp / "inspect.json").read_text())["Name"] == f"/{cp}"
    assert "cgroup root for pods" in (folder / worker / "entrypoint.log").read_text()
    for dump in ("nodes.txt", "nodes.yaml", "events.txt", "resources.txt", "resources.yaml"):
        assert f"kubernetes/{dump}" in tree, dump
    assert f"{cp} Ready" in (folder / "kubernetes/nodes.txt").read_text()
    # the tarball beside the folder holds exactly its files, under the folder's name
    assert got.tarball == folder.with_name(folder.name + ".tar.gz")
    assert _members(got.tarball) == [f"{folder.name}/{f}" for f in tree]
    # pod specs and the nodes' environment: only the owner (root) reads the folder or tarball
    assert (folder.stat().st_mode & 0o777, got.tarball.stat().st_mode & 0o777) == (0o700, 0o600)


def test_what_cannot_be_collected_is_named_in_errors_txt_and_the_rest_is_collected(
        ws: Workspace) -> None:
    engine = FakeNodes()
    cp, worker = _cluster(engine, ws)
    engine.fail.add((worker, "inspect"))
    engine.answers["ps auxwwf"] = (127, "not found")  # a tool the node image has
    got = clustercmd.export_logs(ws, "1.20", engine)
    errors = (got.folder / "errors.txt").read_text().splitlines()
    assert f"{worker}/inspect.json: inspect failed on {worker}" in errors
    assert f"{worker}/var/log/registry.log: no /var/log/registry.log in node {worker}" in errors
    assert not [e for e in errors if "crictl" in e]  # not in the node image: no error
    assert "not in the nodes (their listings left out): crictl" in (
        got.folder / "cluster.txt").read_text()
    assert f"{cp}/processes.txt: ps is not available in the node (exit 127)" in errors
    assert list(got.errors) == errors
    tree = _tree(got.folder)
    assert f"{worker}/inspect.json" not in tree
    assert f"{worker}/var/log/kubelet.log" in tree and f"{cp}/inspect.json" in tree
    assert f"{got.folder.name}/errors.txt" in _members(got.tarball)


def test_a_stopped_control_plane_costs_only_what_needs_it_running(ws: Workspace) -> None:
    engine = FakeNodes()
    name, cp, worker = _nodes_of(ws)
    engine.add_cluster(name, [cp, worker], running=False)
    engine.node_files[(cp, "/var/log/kubelet.log")] = KUBELET_LOG.encode()
    got = clustercmd.export_logs(ws, "1.20", engine)
    errors = (got.folder / "errors.txt").read_text()
    assert f"kubernetes/: the control-plane node {cp} is not running" in errors
    assert f"{cp}/processes.txt: node {cp} is not running" in errors
    assert engine.runs == []  # nothing is run in a stopped node
    assert (got.folder / cp / "var/log/kubelet.log").read_text() == KUBELET_LOG
    assert (got.folder / cp / "inspect.json").is_file()


def test_no_kubeconfig_secret_or_private_key_reaches_the_folder_or_the_tarball(
        ws: Workspace) -> None:
    engine = FakeNodes()
    cp, _ = _cluster(engine, ws)
    kubeconfig = ws.root / "_cluster" / "1.20" / "kubeconfig"
    kubeconfig.parent.mkdir(parents=True)
    kubeconfig.write_text(f"users:\n- user:\n    client-key-data: {SECRET}\n")
    engine.node_files[(cp, f"{ETCD_DIR}/1.log")] = (
        f"client-key-data: {SECRET}\n  token: {SECRET}\n"
        f"-----BEGIN RSA PRIVATE KEY-----\n{SECRET}\n-----END RSA PRIVATE KEY-----\n"
        f"fetching https://user:{SECRET}@example.com/x\n").encode()
    got = clustercmd.export_logs(ws, "1.20", engine)
    for path in got.folder.rglob("*"):
        assert path.name != "kubeconfig"
        assert not path.is_file() or SECRET not in path.read_text(), path
    with tarfile.open(got.tarball) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is None or SECRET.encode() not in handle.read(), member.name
    redacted = (got.folder / cp / ETCD_DIR.removeprefix("/") / "1.log").read_text()
    assert "client-key-data: [removed]" in redacted
    assert "[private key removed]" in redacted
    # Secrets are never dumped; the admin kubeconfig is only used inside the node
    gets = [a for n, a in engine.runs if "get" in a and "--output=yaml" in a and n == cp]
    assert [a[a.index("get") + 1] for a in gets] == [
        "nodes", "configmaps,events,pods,serviceaccounts"]
    assert all("--kubeconfig=/etc/kubernetes/admin.conf" in a for n, a in engine.runs
               if "kubectl" in a)


def cli(ws: Workspace, *args: str) -> Result:
    return CliRunner().invoke(app, ["--root", str(ws.root), *args], env={"COLUMNS": "1000"})


def flat(text: str) -> str:
    return " ".join(re.sub(r"[╭╮╰╯│─]", " ", text).split())


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> FakeNodes:
    return install_fake_nodes(monkeypatch)


def test_cluster_logs_prints_the_folder_and_the_tarball_even_with_a_damaged_state(
        ws: Workspace, fake_engine: FakeNodes, tmp_path: Path) -> None:
    _cluster(fake_engine, ws)
    state = ws.root / "_cluster" / "1.20" / "cluster.json"
    state.parent.mkdir(parents=True)
    state.write_text("[]")  # damaged: nodes are found by their label, not through it
    target = tmp_path / "out" / "logs"
    result = cli(ws, "cluster", "logs", "1.20", str(target))
    assert result.exit_code == 0, result.output
    name = cluster_name("1.20", ws.root)
    assert result.stdout.splitlines() == [
        f"logs of cluster {name} (2 nodes): {target}", f"  tarball: {target}.tar.gz",
        f"  3 item(s) could not be collected: see {target}/errors.txt"]
    as_json = cli(ws, "cluster", "logs", "1.20", "--json")
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert Path(data["tarball"]).is_file() and Path(data["folder"]).is_dir()
    assert data["nodes"] == [f"{name}-control-plane", f"{name}-worker"]


def test_cluster_logs_refuses_a_folder_that_exists_and_a_cluster_without_nodes(
        ws: Workspace, fake_engine: FakeNodes, tmp_path: Path) -> None:
    there = tmp_path / "there"
    there.mkdir()
    result = cli(ws, "cluster", "logs", "1.20", str(there))
    assert result.exit_code == 2, result.output
    assert f"{there} already exists; the logs go into a new folder" in flat(result.output)
    result = cli(ws, "cluster", "logs", "1.20")
    assert result.exit_code == 16, result.output
    name = cluster_name("1.20", ws.root)
    assert (f"error: cluster {name} has no node containers: no logs to collect"
            in result.stderr)
    assert "hint: see `tkedistro cluster status 1.20`" in result.stderr


def test_cluster_logs_refuses_a_symlinked_cluster_folder(
        ws: Workspace, fake_engine: FakeNodes, tmp_path: Path) -> None:
    _cluster(fake_engine, ws)
    victim = tmp_path / "victim"
    victim.mkdir()
    (ws.root / "_cluster").mkdir()
    (ws.root / "_cluster" / "1.20").symlink_to(victim)
    result = cli(ws, "cluster", "logs", "1.20")
    assert result.exit_code == 3, result.output
    assert f"error: {ws.root}/_cluster/1.20 is a symlink" in flat(result.stderr)
    assert list(victim.iterdir()) == []


# --- a failed `cluster up` ------------------------------------------------------------------
@pytest.fixture
def startable(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cluster up` as far as the node containers: images made and pushed (faked)."""
    (ws.root / "releases" / "1.20.yaml").write_text(cluster_manifest_text())
    bin_dir = ws.root / "_output" / "1.20" / "bin" / "linux" / "amd64"
    bin_dir.mkdir(parents=True)
    for name in lifecycle.NODE_BINARIES:
        (bin_dir / name).write_text("")
    write_shipped_images(ws.root / "_output" / "1.20")
    registry = SimpleNamespace(folder=ws.cache / "registry")
    monkeypatch.setattr(clustercmd, "support_images", lambda *a: None)
    monkeypatch.setattr(lifecycle, "_registry", lambda ws_, given: _given(registry))
    monkeypatch.setattr(lifecycle, "ensure_node_image",
                        lambda *a: SimpleNamespace(ref="tkedistro/node:1", id="sha256:1"))
    monkeypatch.setattr(lifecycle.pushing, "push_cluster_images",
                        lambda *a: SimpleNamespace(dns=None, shipped=()))


class _given:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __enter__(self) -> Any:
        return self.value

    def __exit__(self, *exc: object) -> None:
        return None


def _failing_kubeadm(engine: FakeNodes, ws: Workspace) -> str:
    _, cp, _ = _nodes_of(ws)
    engine.fail.add((cp, "kubeadm"))
    engine.node_files[(cp, "/var/log/kubelet.log")] = KUBELET_LOG.encode()
    return cp


def test_a_failed_cluster_up_leaves_its_logs_and_says_where_and_what_to_run(
        ws: Workspace, fake_engine: FakeNodes, startable: None) -> None:
    cp = _failing_kubeadm(fake_engine, ws)
    result = cli(ws, "cluster", "up", "1.20")
    assert result.exit_code == 16, result.output
    err = result.stderr
    assert f"error: kubeadm init failed on node {cp} (exit 1)" in err
    found = sorted((ws.root / "_cluster" / "1.20").glob("logs-*Z"))
    assert len(found) == 1, found
    folder = found[0]
    assert (folder / cp / "var/log/kubelet.log").read_text() == KUBELET_LOG
    assert folder.with_name(folder.name + ".tar.gz").is_file()
    assert f"logs of the failed cluster: {folder} (and {folder.name}.tar.gz)" in err
    assert ("the cluster was removed (`tkedistro cluster down 1.20` removes anything left); "
            "--retain keeps a failed cluster for `tkedistro cluster logs 1.20`") in err
    assert fake_engine.containers == {}  # removed after the logs were taken


@pytest.mark.parametrize("how", ["--retain", "TKEDISTRO_KEEP_CLUSTER=1"])
def test_retain_keeps_a_failed_cluster_and_says_how_to_inspect_and_remove_it(
        ws: Workspace, fake_engine: FakeNodes, startable: None,
        monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    cp = _failing_kubeadm(fake_engine, ws)
    if how.startswith("TKEDISTRO"):
        monkeypatch.setenv(lifecycle.KEEP_ENV, "1")
    result = cli(ws, "cluster", "up", "1.20", *([how] if how.startswith("--") else []))
    assert result.exit_code == 16, result.output
    assert ("the cluster is kept: inspect it with `tkedistro cluster logs 1.20`, remove it "
            "with `tkedistro cluster down 1.20`") in result.stderr
    assert sorted(fake_engine.containers) == [cp, cp.replace("control-plane", "worker")]
    again = cli(ws, "cluster", "logs", "1.20")
    assert again.exit_code == 0, again.output
    down = cli(ws, "cluster", "down", "1.20")
    assert down.exit_code == 0 and fake_engine.containers == {}


def test_a_failing_log_collection_never_hides_the_original_error(
        ws: Workspace, fake_engine: FakeNodes, monkeypatch: pytest.MonkeyPatch) -> None:
    _cluster(fake_engine, ws)

    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(logs.files, "write_tarball", broken)
    config = lifecycle.cluster_config(ws, "1.20", "")
    assert logs.collect_after_failure(fake_engine, config) is None
    error = ClusterError("kubeadm init failed", hint="logs: docker exec ...")
    lifecycle._failed(fake_engine, config, error, False, None)
    assert error.message == "kubeadm init failed"
    assert error.hint is not None and error.hint.startswith("logs: docker exec ...\n")
    assert "logs of the failed cluster" not in error.hint
    assert "`tkedistro cluster down 1.20`" in error.hint


def test_ctrl_c_during_up_removes_the_cluster_without_collecting(
        ws: Workspace, fake_engine: FakeNodes) -> None:
    _cluster(fake_engine, ws)
    config = lifecycle.cluster_config(ws, "1.20", "")
    lifecycle._failed(fake_engine, config, KeyboardInterrupt(), False, None)
    assert fake_engine.containers == {} and fake_engine.runs == []
    assert not list((ws.root / "_cluster" / "1.20").glob("logs-*"))

