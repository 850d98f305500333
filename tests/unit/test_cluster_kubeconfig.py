"""The cluster's kubeconfig where kind users expect it: the API server at the published
``https://127.0.0.1:<port>``, the context ``tkedistro-<release>`` merged into the file kubectl
writes (first existing file of ``$KUBECONFIG``, else ``~/.kube/config``) and made current, taken out
again by ``cluster down`` (nothing else touched); under ``sudo`` the invoking user's file,
theirs and 0600 from creation; a file that is not a kubeconfig is named and left alone."""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner, Result

from tests.helpers.engines import fake_engines
from tests.helpers.fake_nodes import FakeNodes, install_fake_nodes
from tests.helpers.manifests import manifest_text
from tkedistro.cli.app import app
from tkedistro.cluster import kubeconfig, lifecycle
from tkedistro.cluster.cgroups import CgroupLayout
from tkedistro.cluster.config import cluster_name
from tkedistro.core.errors import ClusterError, LockedError
from tkedistro.core.workspace import Workspace
from tkedistro.engine.docker_nodes import _host_ports
from tkedistro.model.manifest import parse_manifest

OURS = """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://127.0.0.1:40000
  name: tke
contexts:
- context: {cluster: tke, user: kubernetes-admin}
  name: kubernetes-admin@tke
current-context: kubernetes-admin@tke
kind: Config
users:
- name: kubernetes-admin
  user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}
"""
THEIRS = """\
# my clusters
apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "https://prod.example:6443"}
users:
- name: me
  user: {token: secret}
contexts:
- name: prod
  context: {cluster: prod, user: me}
current-context: prod
preferences: {}
"""


def load(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text())


def names(doc: Any, section: str) -> list[str]:
    return [e["name"] for e in doc[section]]


def test_merge_adds_three_entries_and_the_current_context_leaving_the_rest(
        tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(THEIRS)
    kubeconfig.merge(path, "1.20", OURS, None)
    doc = load(path)
    assert [names(doc, s) for s in ("clusters", "users", "contexts")] == [
        ["prod", "tkedistro-1.20"], ["me", "tkedistro-1.20"], ["prod", "tkedistro-1.20"]]
    assert doc["current-context"] == "tkedistro-1.20"
    assert doc["clusters"][1]["cluster"]["server"] == "https://127.0.0.1:40000"
    assert doc["users"][1]["user"]["client-key-data"] == "S0VZ"
    assert doc["contexts"][1]["context"] == {"cluster": "tkedistro-1.20",
                                             "user": "tkedistro-1.20"}
    assert path.read_text().startswith("# my clusters\n")  # the user's comment stays
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kubeconfig.merge(path, "1.20", OURS, None)  # again: replaced, not doubled
    assert names(load(path), "contexts") == ["prod", "tkedistro-1.20"]
    assert not path.with_name("config.lock").exists()

    assert kubeconfig.unmerge(path, "1.20", None) is True
    doc = load(path)
    assert doc == {**YAML(typ="safe", pure=True).load(THEIRS), "current-context": ""}
    assert kubeconfig.unmerge(path, "1.20", None) is False  # nothing of ours left


def test_unmerge_keeps_a_current_context_that_is_not_ours(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(THEIRS)
    kubeconfig.merge(path, "1.20", OURS, None)
    kubeconfig.merge(path, "1.21", OURS, None)  # the current one now
    assert kubeconfig.unmerge(path, "1.20", None) is True
    doc = load(path)
    assert doc["current-context"] == "tkedistro-1.21"
    assert names(doc, "contexts") == ["prod", "tkedistro-1.21"]


@pytest.mark.parametrize("content", [None, "", "\n"])
def test_a_missing_or_empty_file_becomes_a_valid_kubeconfig_and_stays_one(
        isolated_env: Path, content: str | None) -> None:
    path = isolated_env / ".kube" / "config"  # HOME is the test's own
    if content is not None:
        path.parent.mkdir()
        path.write_text(content)
    assert kubeconfig.user_kubeconfig(None) == path
    kubeconfig.merge(path, "1.20", OURS, None)
    assert stat.S_IMODE(path.parent.stat().st_mode) == (0o700 if content is None else 0o755)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load(path)["apiVersion"] == "v1" and load(path)["kind"] == "Config"
    kubeconfig.unmerge(path, "1.20", None)
    assert load(path) == {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [],
                          "contexts": [], "current-context": ""}


def test_kubeconfig_with_several_paths_writes_the_first_existing_as_kubectl_does(
        tmp_path: Path) -> None:
    absent, second, third = tmp_path / "a" / "absent", tmp_path / "second", tmp_path / "third"
    second.write_text(THEIRS)
    third.write_text(THEIRS)
    env = {"KUBECONFIG": os.pathsep.join(map(str, (absent, second, third)))}
    assert kubeconfig.user_kubeconfig(None, env) == second
    kubeconfig.merge(second, "1.20", OURS, None)
    assert names(load(second), "contexts") == ["prod", "tkedistro-1.20"]
    assert third.read_text() == THEIRS
    # none exists: the last one is made, as kubectl makes it
    env = {"KUBECONFIG": f"{absent}{os.pathsep}{tmp_path / 'b' / 'last'}"}
    assert kubeconfig.user_kubeconfig(None, env) == tmp_path / "b" / "last"


@pytest.mark.parametrize(("content", "why"), [
    ("clusters: [\n", "not valid YAML"),
    ("- a\n- b\n", "not a kubeconfig (a YAML mapping)"),
    ("kind: Pod\n", "kind: 'Pod', not a kubeconfig's Config"),
    ("contexts: {a: 1}\n", "contexts: not a list"),
    ("users:\n- user: {}\n", "users[0]: not a user entry with a name"),
])
def test_a_file_that_is_not_a_kubeconfig_is_named_and_left_alone(
        tmp_path: Path, content: str, why: str) -> None:
    path = tmp_path / "config"
    path.write_text(content)
    with pytest.raises(ClusterError) as caught:
        kubeconfig.merge(path, "1.20", OURS, None)
    assert caught.value.exit_code == 16
    assert caught.value.message.startswith(f"{path}: {why}")
    assert caught.value.message.endswith("; it was left as it is")
    assert "--no-kubeconfig-merge" in (caught.value.hint or "")
    assert path.read_text() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]  # no lock, no temp


def test_a_held_lock_is_exit_13_naming_it_and_nothing_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubeconfig, "LOCK_WAIT_S", 0.2)
    path = tmp_path / "config"
    path.write_text(THEIRS)
    (tmp_path / "config.lock").write_text("")  # kubectl's own lock, as it names it
    with pytest.raises(LockedError) as caught:
        kubeconfig.merge(path, "1.20", OURS, None)
    assert caught.value.exit_code == 13
    assert caught.value.message == (f"{tmp_path}/config.lock exists: another kubectl or "
                                     f"tkedistro is writing {path}")
    assert path.read_text() == THEIRS
    assert (tmp_path / "config.lock").exists()  # someone else's: left


# --- sudo ----------------------------------------------------------------------------------
UID, GID = 4242, 4343


@pytest.fixture
def sudo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``sudo`` by a user 4242 (a fake passwd entry) whose home is ``tmp_path/home``; root's
    HOME elsewhere. Runs as root (as the tests do), so the chowns are real."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the ownership is given for real")
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, UID, GID)
    entry = pwd.struct_passwd(("someone", "x", UID, GID, "", str(home), "/bin/sh"))
    real = pwd.getpwuid
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: entry if uid == UID else real(uid))
    monkeypatch.setenv("SUDO_UID", str(UID))
    monkeypatch.setenv("SUDO_GID", str(GID))
    monkeypatch.setenv("HOME", str(tmp_path / "root-home"))
    return home


def test_under_sudo_the_invoking_users_file_is_theirs_and_0600_from_creation(
        sudo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given: list[tuple[int, int, int]] = []
    real_fchown = os.fchown

    def fchown(fd: int, uid: int, gid: int) -> None:
        st = os.fstat(fd)
        given.append((stat.S_IMODE(st.st_mode), st.st_size, uid))
        real_fchown(fd, uid, gid)

    monkeypatch.setattr(os, "fchown", fchown)
    user = kubeconfig.invoking_user()
    assert user == kubeconfig.InvokingUser(UID, GID, sudo)
    path = kubeconfig.user_kubeconfig(user)
    assert path == sudo / ".kube" / "config"  # the caller's home, not root's HOME
    kubeconfig.merge(path, "1.20", OURS, user)
    # the temporary file was 0600 and empty when given away: never readable by others
    assert given == [(0o600, 0, UID)]
    for made, mode in ((path.parent, 0o700), (path, 0o600)):
        st = made.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (UID, GID, mode)
    kubeconfig.unmerge(path, "1.20", user)
    assert (path.stat().st_uid, path.stat().st_gid) == (UID, GID)
    assert sorted(p.name for p in path.parent.iterdir()) == ["config"]


def test_sudo_uid_without_a_passwd_entry_is_named(sudo: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUDO_UID", "4244")
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: (_ for _ in ()).throw(KeyError(uid)))
    with pytest.raises(ClusterError, match="SUDO_UID=4244: no such user in the passwd"):
        kubeconfig.invoking_user()


def test_root_without_sudo_or_sudo_by_root_writes_roots_own(
        sudo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUDO_UID", "0")
    assert kubeconfig.invoking_user() is None
    monkeypatch.delenv("SUDO_UID")
    assert kubeconfig.invoking_user() is None


# --- published port --------------------------------------------------------------------
def test_the_engine_answer_gives_the_host_port_of_127_0_0_1() -> None:
    attrs = {"NetworkSettings": {"Ports": {
        "6443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "41234"}],
        "80/tcp": None, "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
        "8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}}}
    assert _host_ports(attrs) == {6443: 41234}
    assert _host_ports({"NetworkSettings": {"Ports": None}}) == {}


def test_only_the_control_plane_publishes_the_api_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace(root=tmp_path / "distro", cache=tmp_path / "cache")
    engine = FakeNodes()
    config = lifecycle.cluster_config(ws, "1.20", "v1.20.2-tke.1", 3)
    for layout in (CgroupLayout(1, "cgroupfs"), CgroupLayout(2, "systemd")):
        started = lifecycle._start_nodes(engine, config, "node:1", tmp_path, layout)
        assert [dict(n.host_ports) for n in started] == [{6443: 40000}, {}, {}]
        engine.containers.clear()


def test_no_published_port_is_a_clear_error() -> None:
    from tkedistro.engine.protocols import NodeInfo

    with pytest.raises(ClusterError, match="the engine published no host port for 6443 of "
                                           "node cp"):
        lifecycle._api_port(NodeInfo("cp", "id", True, {}, "172.18.0.2"))


# --- through the CLI ---------------------------------------------------------------------
def cli(ws: Workspace, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, ["--root", str(ws.root), *args],
                              env={"COLUMNS": "1000", **(env or {})})


def flat(text: str) -> str:
    return " ".join(re.sub(r"[╭╮╰╯│─]", " ", text).split())


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "distro" / "releases").mkdir(parents=True)
    return Workspace(root=tmp_path / "distro", cache=tmp_path / "cache")


def test_down_takes_the_context_out_of_the_file_up_merged_into(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = install_fake_nodes(monkeypatch)
    ours = cluster_name("1.20", ws.root)
    engine.add_cluster(ours, [f"{ours}-control-plane", f"{ours}-worker"], release="1.20")
    merged = tmp_path / "merged-then"
    merged.write_text(THEIRS)
    kubeconfig.merge(merged, "1.20", OURS, None)
    config = lifecycle.cluster_config(ws, "1.20", "")
    config.root.mkdir(parents=True)
    state = lifecycle.ClusterState(
        ours, "1.20", (f"{ours}-control-plane", f"{ours}-worker"), ("172.18.0.2", "172.18.0.3"),
        "node", "", str(config.kubeconfig), "dns", 0.0, 0.0, api_port=40000,
        merged_kubeconfig=str(merged))
    config.state_file.write_text(json.dumps(state.to_json()))
    result = cli(ws, "cluster", "down", "1.20", env={"KUBECONFIG": str(tmp_path / "now")})
    assert result.exit_code == 0, result.output
    assert f"kubeconfig context tkedistro-1.20 from {merged}" in result.stdout
    assert names(load(merged), "contexts") == ["prod"]
    assert load(merged)["current-context"] == ""
    assert not (tmp_path / "now").exists()  # nothing of ours there: not made
    assert engine.containers == {}


def test_down_warns_about_a_broken_kubeconfig_and_still_removes_the_cluster(
        ws: Workspace, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = install_fake_nodes(monkeypatch)
    ours = cluster_name("1.20", ws.root)
    engine.add_cluster(ours, [f"{ours}-control-plane"], release="1.20")
    broken = isolated_env / ".kube" / "config"
    broken.parent.mkdir()
    broken.write_text("- not a kubeconfig\n")
    result = cli(ws, "cluster", "down", "1.20")
    assert result.exit_code == 0, result.output
    assert (f"{broken}: not a kubeconfig (a YAML mapping); it was left as it is (context "
            "tkedistro-1.20 not removed from it)") in flat(result.stderr)
    assert broken.read_text() == "- not a kubeconfig\n" and engine.containers == {}


def test_up_refuses_a_broken_kubeconfig_before_touching_the_engine(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = FakeNodes()
    broken = tmp_path / "broken"
    broken.write_text("kind: Pod\n")
    monkeypatch.setenv("KUBECONFIG", str(broken))
    manifest = parse_manifest(manifest_text(), ws.manifest_path("1.20"), "1.20.yaml")
    with pytest.raises(ClusterError) as caught:
        lifecycle.up(ws, manifest, ws.root, support=None,  # type: ignore[arg-type]
                     shipped=(), engines=fake_engines(nodes=engine), merge_kubeconfig=True)
    assert caught.value.message.startswith(f"{broken}: kind: 'Pod'")
    assert engine.runs == [] and engine.containers == {}
    assert broken.read_text() == "kind: Pod\n"


def test_up_prints_the_published_server_and_the_merged_context() -> None:
    from tkedistro.cluster.clustercmd import format_up

    state = lifecycle.ClusterState("tke-1-20-0a1b2c3d", "1.20", ("cp", "w"),
                                   ("172.18.0.2", "172.18.0.3"), "node", "", "/d/kubeconfig",
                                   "dns", 0.0, 80.0, api_port=40000)
    merged = format_up(dataclasses.replace(state, merged_kubeconfig="/h/.kube/config"))
    assert "  API server: https://127.0.0.1:40000" in merged.splitlines()
    assert ("  context tkedistro-1.20 merged into /h/.kube/config (current context; "
            "`tkedistro cluster down` removes it)") in merged.splitlines()
    assert merged.endswith("  try: kubectl --context tkedistro-1.20 get nodes")
    assert format_up(state).endswith("  try: kubectl --kubeconfig /d/kubeconfig get nodes")


def test_up_help_names_the_opt_out(ws: Workspace) -> None:
    result = cli(ws, "cluster", "up", "--help")
    assert result.exit_code == 0
    assert "--no-kubeconfig-merge" in result.output
    assert "tkedistro-RELEASE" in flat(result.output)


def test_down_never_rewrites_a_file_of_another_user_that_cluster_json_names(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed ``cluster.json`` naming someone else's kubeconfig (root's, when run under
    sudo): left as it is, with a warning."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the other user's file is made for real")
    install_fake_nodes(monkeypatch)
    theirs = tmp_path / "someone-elses"
    theirs.write_text(THEIRS)
    kubeconfig.merge(theirs, "1.20", OURS, None)
    os.chown(theirs, 4242, 4242)
    before = theirs.read_text()
    config = lifecycle.cluster_config(ws, "1.20", "")
    config.root.mkdir(parents=True)
    ours = cluster_name("1.20", ws.root)
    state = lifecycle.ClusterState(ours, "1.20", (f"{ours}-control-plane",), ("172.18.0.2",),
                                   "node", "", str(config.kubeconfig), "dns", 0.0, 0.0,
                                   api_port=40000, merged_kubeconfig=str(theirs))
    config.state_file.write_text(json.dumps(state.to_json()))
    result = cli(ws, "cluster", "down", "1.20")
    assert result.exit_code == 0, result.output
    assert (f"{theirs} (named in cluster.json) is not your file: context tkedistro-1.20 not "
            "removed from it") in flat(result.stderr)
    assert theirs.read_text() == before and theirs.stat().st_uid == 4242
