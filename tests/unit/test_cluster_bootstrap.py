"""Turning node containers into a cluster, against an in-memory ``NodeEngine``: what every node
is given and runs (kubeadm init/join, routes, iptables, the CNI file), and the
``tkedistro cluster`` commands as a user types them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner, Result

from tests.helpers.engines import fake_engines
from tests.helpers.fake_nodes import CA_HASH, FakeNodes, install_fake_nodes
from tests.helpers.manifests import manifest_text
from tests.helpers.shipped import SHIPPED, cluster_manifest_text, write_shipped_images
from tkedistro.cli.app import app
from tkedistro.cluster import bootstrap, clustercmd, lifecycle
from tkedistro.cluster.config import ClusterConfig, cluster_name
from tkedistro.cluster.supportimages import SupportImages
from tkedistro.core.errors import ClusterError
from tkedistro.core.workspace import Workspace
from tkedistro.engine.protocols import NodeInfo
from tkedistro.images.push import ArchivedImage
from tkedistro.model.manifest import Manifest, parse_manifest

TOKEN = "abcdef.0123456789abcdef"
KUBEADM_FILE = "/etc/tkedistro/kubeadm.yaml"
CNI_FILE = "/etc/cni/net.d/10-tkedistro.conflist"
CIDRS = {"cp": "10.244.0.0/24", "w1": "10.244.1.0/24", "w2": "10.244.2.0/24"}


@pytest.fixture
def engine() -> FakeNodes:
    nodes = FakeNodes()
    nodes.add_cluster("tke-1-20-abc123", list(CIDRS))  # cp .2, w1 .3, w2 .4
    nodes.pod_cidrs = dict(CIDRS)
    return nodes


def _info(engine: FakeNodes, *names: str) -> list[NodeInfo]:
    return [engine.containers[n] for n in names]


def test_kubeadm_init_skips_preflight_and_coredns_and_returns_the_ca_hash(
        engine: FakeNodes, tmp_path: Path) -> None:
    config = ClusterConfig("1.20", "tke-1-20-abc123", 3, "v1.20.2-tke.1", tmp_path)
    cp, = _info(engine, "cp")
    assert bootstrap.init_control_plane(engine, config, cp, TOKEN) == CA_HASH
    assert engine.argv_on("cp") == [("kubeadm", "init", f"--config={KUBEADM_FILE}",
                                     "--skip-phases=preflight,addon/coredns", "--v=1")]
    init = next(YAML(typ="safe", pure=True).load_all(engine.files[("cp", KUBEADM_FILE)]))
    assert init["localAPIEndpoint"]["advertiseAddress"] == "172.18.0.2"


def test_kubeadm_init_failure_names_the_node_and_where_its_logs_are(
        engine: FakeNodes, tmp_path: Path) -> None:
    config = ClusterConfig("1.20", "tke-1-20-abc123", 3, "v1.20.2-tke.1", tmp_path)
    engine.fail.add(("cp", "kubeadm"))
    with pytest.raises(ClusterError) as caught:
        bootstrap.init_control_plane(engine, config, engine.containers["cp"], TOKEN)
    assert caught.value.message == "kubeadm init failed on node cp (exit 1)"
    assert caught.value.hint == "logs: docker exec cp tail -50 /var/log/kubelet.log"


def test_every_worker_joins_with_its_own_address_and_the_control_planes_ca_hash(
        engine: FakeNodes) -> None:
    bootstrap.join_workers(engine, _info(engine, "w1", "w2"), "172.18.0.2:6443", TOKEN, CA_HASH)
    for node, address in (("w1", "172.18.0.3"), ("w2", "172.18.0.4")):
        assert engine.argv_on(node) == [("kubeadm", "join", f"--config={KUBEADM_FILE}",
                                         "--skip-phases=preflight", "--v=1")]
        join = next(YAML(typ="safe", pure=True).load_all(engine.files[(node, KUBEADM_FILE)]))
        assert join["nodeRegistration"]["name"] == node
        assert join["nodeRegistration"]["kubeletExtraArgs"]["node-ip"] == address
        assert join["discovery"]["bootstrapToken"] == {
            "apiServerEndpoint": "172.18.0.2:6443", "token": TOKEN, "caCertHashes": [CA_HASH]}
    assert engine.argv_on("cp") == []


def test_a_failed_join_is_raised_after_the_others_finished(engine: FakeNodes) -> None:
    engine.fail.add(("w2", "kubeadm"))
    with pytest.raises(ClusterError, match=r"^kubeadm join failed on node w2 \(exit 1\)$"):
        bootstrap.join_workers(engine, _info(engine, "w1", "w2"), "172.18.0.2:6443", TOKEN,
                               CA_HASH)
    assert engine.argv_on("w1")[0][:2] == ("kubeadm", "join")


def _pod_network_argv(engine: FakeNodes, node: str) -> list[tuple[str, ...]]:
    return [a for a in engine.argv_on(node) if a[0] != "kubectl"]


def test_pod_network_routes_each_node_to_the_others_pods_and_masquerades_in_the_node(
        engine: FakeNodes) -> None:
    bootstrap.pod_network(engine, "cp", _info(engine, "cp", "w1", "w2"))
    masq = [("iptables", "-t", "nat", "-N", "TKEDISTRO-MASQ"),
            ("iptables", "-t", "nat", "-A", "TKEDISTRO-MASQ", "-d", "10.244.0.0/16",
             "-j", "RETURN"),
            ("iptables", "-t", "nat", "-A", "TKEDISTRO-MASQ", "-j", "MASQUERADE"),
            ("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.244.0.0/16",
             "-j", "TKEDISTRO-MASQ")]
    assert _pod_network_argv(engine, "w1") == [
        ("ip", "route", "replace", "10.244.0.0/24", "via", "172.18.0.2"),
        ("ip", "route", "replace", "10.244.2.0/24", "via", "172.18.0.4"), *masq]
    assert _pod_network_argv(engine, "cp") == [
        ("ip", "route", "replace", "10.244.1.0/24", "via", "172.18.0.3"),
        ("ip", "route", "replace", "10.244.2.0/24", "via", "172.18.0.4"), *masq]
    for node, cidr in CIDRS.items():
        conf = json.loads(engine.files[(node, CNI_FILE)])
        assert conf["plugins"][0]["ipam"]["ranges"] == [[{"subnet": cidr}]]
    # kubectl (asking for the pod CIDRs) runs in the control-plane node only
    assert {n for n, a in engine.runs if a[0] == "kubectl"} == {"cp"}


def test_pod_network_a_second_time_adds_no_duplicate_masquerade_rule(engine: FakeNodes) -> None:
    nodes = _info(engine, "cp", "w1", "w2")
    bootstrap.pod_network(engine, "cp", nodes)
    engine.runs.clear()
    bootstrap.pod_network(engine, "cp", nodes)
    iptables = [a for a in engine.argv_on("w1") if a[0] == "iptables"]
    assert iptables == [("iptables", "-t", "nat", "-N", "TKEDISTRO-MASQ")]


def test_a_failed_route_names_the_node(engine: FakeNodes) -> None:
    engine.fail.add(("w1", "ip"))
    with pytest.raises(ClusterError, match=r"^ip route failed on node w1 \(exit 1\)$"):
        bootstrap.pod_network(engine, "cp", _info(engine, "cp", "w1", "w2"))


def test_ready_nodes_reads_the_ready_condition(engine: FakeNodes) -> None:
    engine.ready = {"cp", "w2"}
    assert bootstrap.ready_nodes(engine, "cp") == {"cp", "w2"}
    engine.fail.add(("cp", "kubectl"))  # the API server not answering yet
    assert bootstrap.ready_nodes(engine, "cp") == set()


# --- lifecycle.up's checks and the CLI ----------------------------------------------------
@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "distro" / "releases").mkdir(parents=True)
    return Workspace(root=tmp_path / "distro", cache=tmp_path / "cache")


def test_up_refuses_one_node_before_touching_the_engine(ws: Workspace,
                                                        engine: FakeNodes) -> None:
    before = dict(engine.containers)
    with pytest.raises(ClusterError, match=r"^--nodes 1: a cluster has 2 to 5 nodes$"):
        lifecycle.up(ws, parse_manifest(manifest_text(), ws.manifest_path("1.20"), "1.20.yaml"),
                     ws.root, nodes=1, support=None,  # type: ignore[arg-type]
                     shipped=(), engines=fake_engines(nodes=engine))
    assert engine.containers == before and engine.runs == []


def cli(ws: Workspace, *args: str) -> Result:
    return CliRunner().invoke(app, ["--root", str(ws.root), *args], env={"COLUMNS": "1000"})


def flat(result: Result) -> str:
    return " ".join(re.sub(r"[╭╮╰╯│─]", " ", result.output).split())


def test_cluster_help_lists_up_down_and_status(ws: Workspace) -> None:
    result = cli(ws, "cluster", "--help")
    assert result.exit_code == 0, result.output
    for command in ("up", "down", "status"):
        assert re.search(rf"^\W*{command}\s", result.output, re.M), (command, result.output)


@pytest.mark.parametrize(("nodes", "bound"), [("1", "greater than or equal to 2"),
                                              ("6", "less than or equal to 5")])
def test_cluster_up_refuses_a_node_count_out_of_range(ws: Workspace, nodes: str,
                                                      bound: str) -> None:
    result = cli(ws, "cluster", "up", "1.20", "--nodes", nodes)
    assert result.exit_code == 2, result.output
    # click's wording, or the one of newer typer versions (pyproject allows both)
    assert re.search(rf"Invalid value for '--nodes': ({nodes} is not in the range 2<=x<=5"
                     rf"|Input should be {bound})", flat(result)), flat(result)


@pytest.fixture
def fake_engine(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> FakeNodes:
    return install_fake_nodes(monkeypatch)


def test_cluster_status_and_down_through_the_cli(ws: Workspace, fake_engine: FakeNodes) -> None:
    ours = cluster_name("1.20", ws.root)
    fake_engine.add_cluster(ours, [f"{ours}-control-plane", f"{ours}-worker"])
    fake_engine.add_cluster("tke-1-20-ffffff", ["tke-1-20-ffffff-control-plane"])

    status = cli(ws, "cluster", "status", "1.20", "--json")
    assert status.exit_code == 0, status.output
    data = json.loads(status.stdout)
    assert (data["name"], data["up"]) == (ours, False)  # no cluster.json: never came up
    assert [c["name"] for c in data["containers"]] == [f"{ours}-control-plane",
                                                       f"{ours}-worker"]

    down = cli(ws, "cluster", "down", "1.20")
    assert down.exit_code == 0, down.output
    assert down.stdout.splitlines() == [
        "removed:", f"  container {ours}-control-plane", f"  container {ours}-worker",
        f"  volume {ours}-control-plane-var", f"  volume {ours}-worker-var",
        f"  network {ours}"]
    assert list(fake_engine.containers) == ["tke-1-20-ffffff-control-plane"]
    again = cli(ws, "cluster", "down", "1.20")
    assert again.stdout.strip() == "no cluster to remove"
    text = cli(ws, "cluster", "status", "1.20")
    assert text.stdout.strip() == f"cluster {ours}: down (no node containers)"


def _built(ws: Workspace) -> None:
    (ws.root / "releases" / "1.20.yaml").write_text(cluster_manifest_text())
    bin_dir = ws.root / "_output" / "1.20" / "bin" / "linux" / "amd64"
    bin_dir.mkdir(parents=True)
    for name in lifecycle.NODE_BINARIES:
        (bin_dir / name).write_text("")
    write_shipped_images(ws.root / "_output" / "1.20")


def test_cluster_up_makes_its_support_images_from_the_prepared_tree(
        ws: Workspace, fake_engine: FakeNodes) -> None:
    _built(ws)  # built binaries and images, but no _src/1.20 to build etcd and the DNS from
    result = cli(ws, "cluster", "up", "1.20")
    assert result.exit_code == 16, result.output
    assert ("error: _src/1.20: no Kubernetes source tree to build etcd and the cluster DNS "
            "from") in result.stderr
    assert "hint: prepare it first: tkedistro source 1.20" in result.stderr
    assert fake_engine.containers == {} and fake_engine.runs == []


def test_cluster_up_runs_the_support_images_it_made(ws: Workspace,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _built(ws)
    made = SupportImages(etcd="local/etcd:1", dns="local/dns:1")
    asked: list[tuple[str, str]] = []
    handed: list[SupportImages] = []
    retained: list[bool] = []
    archives: list[list[str]] = []

    def support_images(ws_: Workspace, release: str, manifest: Manifest,
                       engines_: object) -> SupportImages:
        asked.append((release, manifest.release))
        return made

    def up(ws_: Workspace, manifest: Manifest, out: Path, *, nodes: int,
           support: SupportImages, shipped: list[ArchivedImage], registry: object,
           engines: object, merge_kubeconfig: bool, retain: bool) -> str:
        handed.append(support)
        retained.append(retain)
        archives.append([ws_.rel(i.archive) for i in shipped])
        return "state"

    monkeypatch.setattr(clustercmd, "support_images", support_images)
    monkeypatch.setattr(lifecycle, "up", up)
    assert clustercmd.up(ws, "1.20", 2, fake_engines()) == "state"
    assert (asked, handed, retained) == ([("1.20", "1.20")], [made], [False])
    assert archives == [[f"_output/1.20/images/{c}.oci.tar" for c in SHIPPED]]
