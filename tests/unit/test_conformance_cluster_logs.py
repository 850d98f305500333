"""A conformance run on the local cluster that fails leaves the cluster's logs in its results
folder (``cluster-logs/``) and names ``cluster logs`` and ``cluster down``; ``--retain`` keeps
the cluster. The suite, the registry and the cluster's start are faked; the engine is an
in-memory ``NodeEngine``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.engines import use_engines
from tests.helpers.fake_nodes import FakeNodes
from tests.helpers.shipped import cluster_manifest_text, write_shipped_images
from tkedistro.cli.app import app
from tkedistro.cluster import lifecycle
from tkedistro.cluster.config import cluster_name
from tkedistro.conformance import pipeline as conf
from tkedistro.conformance.offline import OfflineImages
from tkedistro.core.errors import ClusterError
from tkedistro.core.workspace import Workspace

SPEC = "[sig-x] y [Conformance]"
KUBELET_LOG = "E1207 pod sandbox failed\n"


class _Registry:
    def __init__(self, folder: Path) -> None:
        self.address = "127.0.0.1:5001"
        self.login = None

    def has(self, *args: object) -> bool:
        return True

    def __enter__(self) -> _Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "distro"
    (root / "releases").mkdir(parents=True)
    (root / "releases" / "1.20.yaml").write_text(cluster_manifest_text())
    write_shipped_images(root / "_output" / "1.20")
    bin_dir = root / "_output" / "1.20" / "bin" / "linux" / "amd64"
    bin_dir.mkdir(parents=True)
    for name in {*conf.TOOLS, *lifecycle.NODE_BINARIES}:
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    return Workspace(root=root, cache=tmp_path / "cache")


@pytest.fixture
def engine(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeNodes:
    """A cluster ``up`` starts for the run (faked: two node containers holding a kubelet
    log), a suite that fails SPEC, and nothing else outside the process."""
    nodes = FakeNodes()
    use_engines(monkeypatch, nodes=nodes)
    name = cluster_name("1.20", ws.root)

    def up(ws_: Workspace, manifest: object, bin_dir: Path, **kwargs: Any
           ) -> lifecycle.ClusterState:
        cp, worker = f"{name}-control-plane", f"{name}-worker"
        nodes.add_cluster(name, [cp, worker])
        nodes.node_files[(cp, "/var/log/kubelet.log")] = KUBELET_LOG.encode()
        return lifecycle.ClusterState(name, "1.20", (cp, worker), ("172.18.0.2", "172.18.0.3"),
                                      "node", "sha256:1", str(tmp_path / "kubeconfig"), "dns",
                                      0.0, 1.0)

    def failing_suite(options: object, bins: Path, kubeconfig: Path, report_dir: Path,
                      repo_list: Path | None, skip: str) -> bool:
        (report_dir / "e2e.log").write_text("ran\n")
        (report_dir / "junit_01.xml").write_text(
            f'<testsuite tests="1" failures="1"><testcase name="{SPEC}" time="1">'
            '<failure message="boom">boom</failure></testcase></testsuite>\n')
        return False

    monkeypatch.setattr(lifecycle, "up", up)
    monkeypatch.setattr(lifecycle, "remove_cgroup_parent", lambda parent: [])
    monkeypatch.setattr(conf, "LocalRegistry", _Registry)
    monkeypatch.setattr(conf, "prepare_images", lambda *a, **k: OfflineImages(
        registry="127.0.0.1:5001", repo_list=tmp_path / "repo-list"))
    monkeypatch.setattr(conf, "require_root", lambda: None)
    monkeypatch.setattr(conf, "support_images", lambda *a: None)
    monkeypatch.setattr(conf, "_suite", failing_suite)
    return nodes


def cli(ws: Workspace, *args: str) -> Result:
    return CliRunner().invoke(app, ["--root", str(ws.root), *args], env={"COLUMNS": "1000"})


def _run_folder(ws: Workspace) -> Path:
    found = [p for p in (ws.root / "_results" / "1.20" / "conformance").iterdir()
             if not p.is_symlink()]
    assert len(found) == 1, found
    return found[0]


def test_a_failed_run_leaves_the_clusters_logs_in_its_results_and_removes_it(
        ws: Workspace, engine: FakeNodes) -> None:
    result = cli(ws, "conformance", "1.20", "--quick", "--no-build")
    assert result.exit_code == 15, result.output
    run = _run_folder(ws)
    logs = run / "cluster-logs"
    cp = f"{cluster_name('1.20', ws.root)}-control-plane"
    assert (logs / cp / "var/log/kubelet.log").read_text() == KUBELET_LOG
    assert (run / "cluster-logs.tar.gz").is_file()
    err = result.stderr
    assert f"hint: details: {run / 'e2e.log'}" in err
    assert f"logs of the failed cluster: {logs} (and cluster-logs.tar.gz)" in err
    assert ("the cluster was removed (`tkedistro cluster down 1.20` removes anything left); "
            "--retain keeps a failed cluster for `tkedistro cluster logs 1.20`") in err
    assert engine.containers == {}


def test_retain_keeps_the_cluster_of_a_failed_run(ws: Workspace, engine: FakeNodes) -> None:
    result = cli(ws, "conformance", "1.20", "--quick", "--no-build", "--retain")
    assert result.exit_code == 15, result.output
    assert ("the cluster is kept: inspect it with `tkedistro cluster logs 1.20`, remove it "
            "with `tkedistro cluster down 1.20`") in result.stderr
    assert len(engine.containers) == 2
    assert (_run_folder(ws) / "cluster-logs").is_dir()


def test_a_run_that_passes_collects_nothing_and_removes_the_cluster(
        ws: Workspace, engine: FakeNodes, monkeypatch: pytest.MonkeyPatch) -> None:
    def passing(options: object, bins: Path, kubeconfig: Path, report_dir: Path,
                repo_list: Path | None, skip: str) -> bool:
        (report_dir / "junit_01.xml").write_text(
            f'<testsuite tests="1" failures="0"><testcase name="{SPEC}" time="1"/></testsuite>\n')
        return False

    monkeypatch.setattr(conf, "_suite", passing)
    result = cli(ws, "conformance", "1.20", "--quick", "--no-build", "--retain")
    assert result.exit_code == 0, result.output
    assert not (_run_folder(ws) / "cluster-logs").exists()
    assert engine.containers == {}


def test_a_suite_that_cannot_run_keeps_its_error_and_gets_the_logs(
        ws: Workspace, engine: FakeNodes, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> bool:
        raise ClusterError("ginkgo could not start", hint="see e2e.log")

    monkeypatch.setattr(conf, "_suite", broken)
    result = cli(ws, "conformance", "1.20", "--quick", "--no-build")
    assert result.exit_code == 16, result.output
    err = " ".join(result.stderr.split())
    assert "error: ginkgo could not start" in err
    assert re.search(r"hint: see e2e.log logs of the failed cluster: \S+/cluster-logs ", err)
    assert "`tkedistro cluster logs 1.20`" in err and engine.containers == {}


def test_retain_is_refused_for_an_existing_cluster(ws: Workspace, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")
    result = cli(ws, "conformance", "1.20", "--kubeconfig", str(kubeconfig), "--retain")
    assert result.exit_code == 2, result.output
    assert "--retain keeps the local cluster" in " ".join(result.output.split())


def test_a_cluster_that_fails_to_start_gets_retain_and_the_results_folder(
        ws: Workspace, engine: FakeNodes, monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[tuple[bool, Path]] = []

    def up(*args: object, retain: bool, logs_dir: Path, **kwargs: object) -> None:
        handed.append((retain, logs_dir))
        raise ClusterError("kubeadm init failed")

    monkeypatch.setattr(lifecycle, "up", up)
    result = cli(ws, "conformance", "1.20", "--quick", "--no-build", "--retain")
    assert result.exit_code == 16, result.output
    assert handed == [(True, _run_folder(ws) / "cluster-logs")]
