"""The local cluster's own files: the admin kubeconfig is the owner's alone from its first
byte, ``cluster.json`` is checked before it is trusted, and a symlinked ``_cluster/<release>``
(or a symlink in it) makes ``cluster up``/``down``/``status`` refuse (exit 3) instead of
writing or deleting what it points at. Against the in-memory ``NodeEngine``; the nodes' own
privileges are in tests/unit/test_node_privileges.py."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.engines import fake_engines
from tests.helpers.fake_nodes import FakeNodes, install_fake_nodes
from tests.helpers.manifests import manifest_text
from tkedistro.cli.app import app
from tkedistro.cluster import lifecycle, pushing
from tkedistro.cluster.cgroups import CgroupLayout
from tkedistro.cluster.config import cluster_name
from tkedistro.core import files
from tkedistro.core.errors import ClusterError, UnsafePathError
from tkedistro.core.workspace import Workspace
from tkedistro.model.manifest import parse_manifest


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "distro" / "releases").mkdir(parents=True)
    return Workspace(root=tmp_path / "distro", cache=tmp_path / "cache")


@pytest.fixture
def engine(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> FakeNodes:
    return install_fake_nodes(monkeypatch)


def cli(ws: Workspace, *args: str) -> Result:
    return CliRunner().invoke(app, ["--root", str(ws.root), *args], env={"COLUMNS": "1000"})


def flat(text: str) -> str:
    return " ".join(re.sub(r"[╭╮╰╯│─]", " ", text).split())


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)  # a mode set after creation would show here as 0666 first
    yield
    os.umask(old)


ADMIN_CONF = """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://172.18.0.2:6443
  name: tke
contexts:
- context:
    cluster: tke
    user: kubernetes-admin
  name: kubernetes-admin@tke
current-context: kubernetes-admin@tke
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
"""


def test_the_kubeconfig_is_0600_from_creation_and_never_chmod_ed(
        ws: Workspace, engine: FakeNodes, open_umask: None) -> None:
    config = lifecycle.cluster_config(ws, "1.20", "v1.20.2-tke.1")
    engine.pod_cidrs = {n: f"10.244.{i}.0/24" for i, n in enumerate(config.node_names)}
    engine.ready = set(config.node_names)
    engine.answers["cat /etc/kubernetes/admin.conf"] = (0, ADMIN_CONF)
    seen: list[tuple[str, Path]] = []
    dns = pushing.DnsImage("kind: List\n", "tkedistro-dns", "dns")
    with files.watch(lambda op, path: seen.append((op, path))):
        state = lifecycle._bootstrap(engine, config, "node:1", ws.cache / "registry", dns,
                                     CgroupLayout(1, "cgroupfs"))
    assert state.kubeconfig == str(config.kubeconfig)
    assert os.stat(config.kubeconfig).st_mode & 0o777 == 0o600
    # the server is the published port on the host's loopback, the rest as kubeadm wrote it
    assert state.api_port == 40000  # the fake engine's host port for the control plane's 6443
    assert config.kubeconfig.read_text() == ADMIN_CONF.replace(
        "https://172.18.0.2:6443", "https://127.0.0.1:40000")
    assert [op for op, path in seen if path == config.kubeconfig] == ["write"]


def _our_cluster(ws: Workspace, engine: FakeNodes) -> str:
    ours = cluster_name("1.20", ws.root)
    engine.add_cluster(ours, [f"{ours}-control-plane", f"{ours}-worker"])
    return ours


def _victim(tmp_path: Path) -> Path:
    """A folder outside the repo holding what a symlinked _cluster/1.20 would expose."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "kubeconfig").write_text("someone else's\n")
    (victim / "cluster.json").write_text("{}\n")
    return victim


def test_down_refuses_a_symlinked_cluster_folder_before_removing_anything(
        ws: Workspace, engine: FakeNodes, tmp_path: Path) -> None:
    ours = _our_cluster(ws, engine)
    victim = _victim(tmp_path)
    (ws.root / "_cluster").mkdir()
    (ws.root / "_cluster" / "1.20").symlink_to(victim)
    result = cli(ws, "cluster", "down", "1.20")
    assert result.exit_code == 3, result.output
    assert f"error: {ws.root}/_cluster/1.20 is a symlink" in flat(result.stderr)
    assert f"hint: remove the symlink ({ws.root}/_cluster/1.20)" in flat(result.stderr)
    assert sorted(p.name for p in victim.iterdir()) == ["cluster.json", "kubeconfig"]
    assert (victim / "kubeconfig").read_text() == "someone else's\n"
    assert sorted(engine.containers) == [f"{ours}-control-plane", f"{ours}-worker"]


def test_down_never_deletes_what_a_symlinked_kubeconfig_points_at(
        ws: Workspace, engine: FakeNodes, tmp_path: Path) -> None:
    _our_cluster(ws, engine)
    victim = _victim(tmp_path)
    folder = ws.root / "_cluster" / "1.20"
    folder.mkdir(parents=True)
    (folder / "kubeconfig").symlink_to(victim / "kubeconfig")
    result = cli(ws, "cluster", "down", "1.20")
    assert result.exit_code == 3, result.output
    assert f"error: {folder}/kubeconfig is a symlink" in flat(result.stderr)
    assert (victim / "kubeconfig").read_text() == "someone else's\n"


def test_up_refuses_a_symlinked_cluster_folder_before_touching_the_engine(
        ws: Workspace, engine: FakeNodes, tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    (ws.root / "_cluster").mkdir()
    (ws.root / "_cluster" / "1.20").symlink_to(victim)
    manifest = parse_manifest(manifest_text(), ws.manifest_path("1.20"), "1.20.yaml")
    with pytest.raises(UnsafePathError) as caught:
        lifecycle.up(ws, manifest, ws.root, support=None,  # type: ignore[arg-type]
                     shipped=(), engines=fake_engines(nodes=engine))
    assert caught.value.exit_code == 3
    assert caught.value.message.startswith(f"{ws.root}/_cluster/1.20 is a symlink")
    assert engine.runs == [] and engine.containers == {}
    assert sorted(p.name for p in victim.iterdir()) == ["cluster.json", "kubeconfig"]


def test_status_refuses_a_symlinked_state_file(ws: Workspace, engine: FakeNodes,
                                               tmp_path: Path) -> None:
    _our_cluster(ws, engine)
    victim = _victim(tmp_path)
    folder = ws.root / "_cluster" / "1.20"
    folder.mkdir(parents=True)
    (folder / "cluster.json").symlink_to(victim / "cluster.json")
    result = cli(ws, "cluster", "status", "1.20")
    assert result.exit_code == 3, result.output
    assert f"error: {folder}/cluster.json is a symlink" in flat(result.stderr)


@pytest.mark.parametrize(("content", "why"), [
    ('{"version": 1, "name": 5}', "name: Input should be a valid string (and 10 more)"),
    ("[]", "(top): Input should be an object"),
])
def test_status_of_a_damaged_state_file_is_exit_17_with_the_way_out(
        ws: Workspace, engine: FakeNodes, content: str, why: str) -> None:
    _our_cluster(ws, engine)
    state = ws.root / "_cluster" / "1.20" / "cluster.json"
    state.parent.mkdir(parents=True)
    state.write_text(content)
    hint = ("`tkedistro cluster down 1.20` removes the cluster and this file; then "
            "`tkedistro cluster up 1.20` starts a new one")
    result = cli(ws, "cluster", "status", "1.20")
    assert result.exit_code == 17, result.output
    err = flat(result.stderr)
    assert f"error: {state}: not a cluster state tkedistro wrote: {why}" in err
    assert f"hint: {hint}" in err
    as_json = cli(ws, "cluster", "status", "1.20", "--json")
    assert as_json.exit_code == 17
    error = json.loads(as_json.stdout)["error"]
    assert (error["type"], error["exit_code"]) == ("DamagedStateError", 17)
    assert error["message"] == f"{state}: not a cluster state tkedistro wrote: {why}"
    down = cli(ws, "cluster", "down", "1.20")  # the way out works
    assert down.exit_code == 0, down.output
    assert not state.exists()
    assert json.loads(cli(ws, "cluster", "status", "1.20", "--json").stdout)["state"] is None


def test_an_admin_kubeconfig_read_back_empty_is_read_again_never_written_empty(
        engine: FakeNodes, monkeypatch: pytest.MonkeyPatch) -> None:
    from tkedistro.cluster import bootstrap

    monkeypatch.setattr(bootstrap.time, "sleep", lambda seconds: None)
    engine.add_cluster("tke-1-20-abc123", ["cp"])
    answers = iter([(0, ""), (0, "apiVersion: v1\n")])
    real_exec = engine.exec

    def flaky(name: str, argv: list[str]) -> object:
        if list(argv) == ["cat", bootstrap.ADMIN]:
            from tkedistro.engine.protocols import RunResult

            return RunResult(tuple(argv), *next(answers))
        return real_exec(name, argv)

    monkeypatch.setattr(engine, "exec", flaky)
    assert bootstrap.admin_kubeconfig(engine, "cp") == "apiVersion: v1\n"
    answers = iter([(0, "")] * 3)
    with pytest.raises(ClusterError) as caught:
        bootstrap.admin_kubeconfig(engine, "cp", tries=3)
    assert caught.value.message == ("reading /etc/kubernetes/admin.conf in node cp gave no "
                                    "kubeconfig (3 tries)")
