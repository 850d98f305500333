"""Cluster names never collide: they come from the exact release name (and the distro root),
stay valid hostnames with every node suffix, and a cluster an earlier tkedistro started under
the old, shared name is still found by ``cluster down`` through its exact release label."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.fake_nodes import FakeNodes, install_fake_nodes
from tkedistro.cli.app import app
from tkedistro.cluster import lifecycle
from tkedistro.cluster.config import MAX_NODES, cluster_name, legacy_cluster_name
from tkedistro.core.workspace import Workspace

HOSTNAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
RELEASES = ("1.0-tke", "1.0-TKE", "1.0.tke")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "distro" / "releases").mkdir(parents=True)
    return Workspace(root=tmp_path / "distro", cache=tmp_path / "cache")


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeNodes:
    return install_fake_nodes(monkeypatch)


def cli(ws: Workspace, *args: str) -> Result:
    return CliRunner().invoke(app, ["--root", str(ws.root), *args], env={"COLUMNS": "1000"})


def flat(text: str) -> str:
    return " ".join(re.sub(r"[╭╮╰╯│─]", " ", text).split())


def test_releases_that_read_alike_get_different_names(ws: Workspace) -> None:
    new = [cluster_name(r, ws.root) for r in RELEASES]
    assert len(set(new)) == 3, new
    assert all(n.startswith("tke-1-0-tke-") for n in new)
    assert len({legacy_cluster_name(r, ws.root) for r in RELEASES}) == 1  # what collided


@pytest.mark.parametrize("release", [*RELEASES, "1.20", "1.20-" + "X" * 59,
                                     "1.2-abcdefghijklmnopq-r", "123456789012345678.9-rc.1"])
def test_every_node_name_is_a_hostname(ws: Workspace, release: str) -> None:
    name = cluster_name(release, ws.root)
    config = lifecycle.cluster_config(ws, release, "", MAX_NODES)
    assert config.node_names[-1] == f"{name}-worker{MAX_NODES - 1}"
    for node in config.node_names:
        assert len(node) <= 63 and HOSTNAME.fullmatch(node), node


def _start(engine: FakeNodes, ws: Workspace, release: str, name: str, subnet: str) -> None:
    engine.add_cluster(name, [f"{name}-control-plane", f"{name}-worker"], subnet=subnet,
                       release=release)


def test_down_of_one_release_leaves_the_look_alikes(ws: Workspace, engine: FakeNodes) -> None:
    for i, release in enumerate(RELEASES):
        _start(engine, ws, release, cluster_name(release, ws.root), f"172.{20 + i}.0")
    result = cli(ws, "cluster", "down", "1.0-TKE")
    assert result.exit_code == 0, result.output
    gone = cluster_name("1.0-TKE", ws.root)
    assert f"container {gone}-control-plane" in result.stdout
    left = sorted(cluster_name(r, ws.root) for r in ("1.0-tke", "1.0.tke"))
    assert sorted(engine.containers) == [f"{n}-{s}" for n in left
                                         for s in ("control-plane", "worker")]
    assert sorted(engine.network_list) == left


def test_down_finds_a_cluster_of_the_old_name_by_its_exact_release(
        ws: Workspace, engine: FakeNodes) -> None:
    """Two releases shared one old name (and network): ``down`` takes only the containers
    and volumes labelled with its exact release, the network only with the last of them."""
    old = legacy_cluster_name("1.0-tke", ws.root)
    engine.add_cluster(old, [f"{old}-control-plane", f"{old}-worker"], release="1.0-tke")
    engine.containers[f"{old}-cp-b"] = engine.containers[f"{old}-worker"].__class__(
        f"{old}-cp-b", "id-b", True, {"org.tkedistro.cluster": old,
                                       "org.tkedistro.release": "1.0-TKE"}, "172.18.0.9")
    result = cli(ws, "cluster", "down", "1.0-tke")
    assert result.exit_code == 0, result.output
    assert sorted(engine.containers) == [f"{old}-cp-b"]
    assert sorted(engine.volume_list) == []  # both volumes carried 1.0-tke's label
    assert sorted(engine.network_list) == [old]  # still used by 1.0-TKE's node
    assert result.stdout.split("\n")[:3] == ["removed:", f"  container {old}-control-plane",
                                             f"  container {old}-worker"]
    result = cli(ws, "cluster", "down", "1.0-TKE")
    assert result.exit_code == 0, result.output
    assert engine.containers == {} and engine.network_list == {}
    assert f"network {old}" in result.stdout


def test_status_with_a_state_file_of_the_old_name_says_what_it_is(
        ws: Workspace, engine: FakeNodes) -> None:
    old = legacy_cluster_name("1.20", ws.root)
    state = ws.root / "_cluster" / "1.20" / "cluster.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({  # as an earlier tkedistro wrote it: no api_port
        "version": 1, "name": old, "release": "1.20", "nodes": [f"{old}-control-plane"],
        "addresses": ["172.18.0.2"], "node_image": "n", "node_image_id": "",
        "kubeconfig": str(state.parent / "kubeconfig"), "dns": "d", "created": 0.0,
        "seconds": 1.0, "build": ""}))
    result = cli(ws, "cluster", "status", "1.20")
    assert result.exit_code == 17, result.output
    assert (f"error: {state}: cluster {old} was started by an earlier tkedistro, whose "
            "cluster names did not tell '1.20' from similar release names; it is now "
            f"{cluster_name('1.20', ws.root)}") in flat(result.stderr)
    assert "hint: `tkedistro cluster down 1.20` removes the cluster and this file" in flat(
        result.stderr)
    assert cli(ws, "cluster", "down", "1.20").exit_code == 0
    assert not state.exists()
