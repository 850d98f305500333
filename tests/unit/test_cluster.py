"""The local multi-node cluster without Docker: kubeadm's configuration, names, the cgroup
cleanup (on a fake cgroup tree), the persisted state, and ``remove_cluster``/``status`` against
an in-memory ``NodeEngine`` holding two clusters. Bootstrap and the CLI: test_cluster_bootstrap.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.helpers.fake_nodes import CA_HASH, FakeNodes
from tkedistro.cluster import config as cfg
from tkedistro.cluster import lifecycle
from tkedistro.cluster.clustercmd import StatusReport
from tkedistro.cluster.config import ClusterConfig, cluster_name
from tkedistro.cluster.lifecycle import ClusterState, remove_cgroup_parent
from tkedistro.core.errors import DamagedStateError, UnsafePathError
from tkedistro.core.workspace import Workspace

TOKEN = "abcdef.0123456789abcdef"
ADDRESS = "172.18.0.2"


def _docs(text: str) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in YAML(typ="safe", pure=True).load_all(text)}


def _config(tmp_path: Path, nodes: int = 2, name: str = "tke-1-20-abc123") -> ClusterConfig:
    return ClusterConfig(release="1.20", name=name, nodes=nodes, version="v1.20.2-tke.1",
                         root=tmp_path / "_cluster" / "1.20")


# --- names -------------------------------------------------------------------------------
def test_cluster_name_is_stable_per_root_and_differs_between_roots(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    (tmp_path / "link").symlink_to(one)
    name = cluster_name("1.20", one)
    assert re.fullmatch(r"tke-1-20-[0-9a-f]{8}", name), name
    assert cluster_name("1.20", one) == name == cluster_name("1.20", tmp_path / "link")
    assert cluster_name("1.20", two) != name
    assert cluster_name("1.21", one) != name


def test_node_names_volumes_and_cgroup_parent(tmp_path: Path) -> None:
    config = _config(tmp_path, nodes=3)
    assert config.node_names == ["tke-1-20-abc123-control-plane", "tke-1-20-abc123-worker",
                                 "tke-1-20-abc123-worker2"]
    assert _config(tmp_path, nodes=2).node_names == ["tke-1-20-abc123-control-plane",
                                                     "tke-1-20-abc123-worker"]
    assert config.volume("tke-1-20-abc123-worker") == "tke-1-20-abc123-worker-var"
    assert config.cgroup_parent == "/tke-1-20-abc123"
    assert config.labels == {"org.tkedistro.cluster": "tke-1-20-abc123"}
    assert config.kubeconfig == tmp_path / "_cluster/1.20/kubeconfig"


def test_bootstrap_tokens_have_kubeadms_shape_and_differ() -> None:
    tokens = {cfg.new_token() for _ in range(20)}
    assert len(tokens) == 20
    assert all(re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", t) for t in tokens)


# --- kubeadm configuration ---------------------------------------------------------------
def test_init_config_carries_the_node_ip_token_and_an_untainted_control_plane(
        tmp_path: Path) -> None:
    docs = _docs(cfg.init_config(_config(tmp_path), "cp", ADDRESS, TOKEN))
    assert sorted(docs) == ["ClusterConfiguration", "InitConfiguration",
                            "KubeProxyConfiguration", "KubeletConfiguration"]
    init = docs["InitConfiguration"]
    assert init["bootstrapTokens"][0]["token"] == TOKEN
    assert init["localAPIEndpoint"]["advertiseAddress"] == ADDRESS
    reg = init["nodeRegistration"]
    assert (reg["name"], reg["taints"]) == ("cp", [])  # schedulable: conformance needs 2 nodes
    assert reg["kubeletExtraArgs"]["node-ip"] == ADDRESS
    assert reg["criSocket"] == "unix:///run/containerd/containerd.sock"
    cluster = docs["ClusterConfiguration"]
    assert cluster["kubernetesVersion"] == "v1.20.2-tke.1"
    assert cluster["controlPlaneEndpoint"] == f"{ADDRESS}:6443"
    assert cluster["imageRepository"] == "127.0.0.1:5000/tkedistro"
    assert cluster["networking"] == {"podSubnet": "10.244.0.0/16",
                                     "serviceSubnet": "10.96.0.0/16",
                                     "dnsDomain": "cluster.local"}
    assert ADDRESS in cluster["apiServer"]["certSANs"]
    kubelet = docs["KubeletConfiguration"]
    assert kubelet["cgroupDriver"] == "cgroupfs"
    assert (kubelet["clusterDNS"], kubelet["clusterDomain"]) == (["10.96.0.10"], "cluster.local")
    assert docs["KubeProxyConfiguration"]["conntrack"]["maxPerCore"] == 0


def test_join_config_carries_endpoint_token_ca_hash_and_node_ip() -> None:
    (kind, doc), = _docs(cfg.join_config("w1", "172.18.0.3", f"{ADDRESS}:6443", TOKEN,
                                         CA_HASH)).items()
    assert kind == "JoinConfiguration"
    assert doc["discovery"]["bootstrapToken"] == {
        "apiServerEndpoint": f"{ADDRESS}:6443", "token": TOKEN, "caCertHashes": [CA_HASH]}
    reg = doc["nodeRegistration"]
    assert (reg["name"], reg["taints"]) == ("w1", [])
    assert reg["kubeletExtraArgs"] == {"node-ip": "172.18.0.3", "fail-swap-on": "false"}


@pytest.mark.parametrize("address", ["172.18.0.300", "", "fe80::1", "1.2.3.4\nkind: Evil"])
def test_an_address_that_is_no_ipv4_never_reaches_the_yaml(tmp_path: Path, address: str) -> None:
    with pytest.raises(ValueError):
        cfg.init_config(_config(tmp_path), "cp", address, TOKEN)
    with pytest.raises(ValueError):
        cfg.join_config("w1", address, f"{ADDRESS}:6443", TOKEN, CA_HASH)


@pytest.mark.parametrize("ca_hash", ["", "sha256:abc", "md5:" + "0" * 64,
                                     "sha256:" + "A" * 64, CA_HASH + "\nkind: Evil"])
def test_a_ca_hash_of_the_wrong_shape_is_refused(ca_hash: str) -> None:
    with pytest.raises(ValueError, match="not a CA public key hash"):
        cfg.join_config("w1", "172.18.0.3", f"{ADDRESS}:6443", TOKEN, ca_hash)


def test_cni_config_is_a_bridge_on_the_nodes_pod_cidr() -> None:
    conf = json.loads(cfg.cni_config("10.244.1.0/24"))
    bridge, portmap = conf["plugins"]
    assert (bridge["type"], bridge["bridge"], bridge["hairpinMode"]) == ("bridge", "tke0", True)
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}}
    with pytest.raises(ValueError):
        cfg.cni_config("10.244.1.0/33")


# --- cgroups -----------------------------------------------------------------------------
NAME = "tke-1-20-abc123"


def _cgroup_tree(root: Path) -> None:
    for hierarchy in ("cpu,cpuacct", "memory", "pids"):
        for sub in (f"{NAME}/c1/kubelet/kubepods/burstable/pod1/ctr", f"{NAME}/c2/kubelet",
                    "kubepods/besteffort/podhost", f"{NAME}-other/c3", "docker/c4", "user.slice"):
            (root / hierarchy / sub).mkdir(parents=True)
    (root / "cpu").symlink_to("cpu,cpuacct")  # as on the host: cpu -> cpu,cpuacct


def _dirs(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()
            and not p.is_symlink()}


def test_remove_cgroup_parent_removes_only_the_clusters_subtrees_deepest_first(
        tmp_path: Path) -> None:
    _cgroup_tree(tmp_path)
    before = _dirs(tmp_path)
    removed = remove_cgroup_parent(f"/{NAME}", root=tmp_path)
    assert _dirs(tmp_path) == {d for d in before if d.split("/")[1:2] != [NAME]}
    assert {h.name for h in tmp_path.iterdir()} == {"cpu", "cpu,cpuacct", "memory", "pids"}
    assert len(removed) == len(before - _dirs(tmp_path))
    for i, path in enumerate(removed):  # a folder only after everything below it
        assert not any(p.is_relative_to(path) for p in removed[i + 1:]), path


def test_a_cgroup_still_in_use_is_left_with_its_parents(tmp_path: Path) -> None:
    _cgroup_tree(tmp_path)
    busy = tmp_path / "memory" / NAME / "c1" / "kubelet"
    (busy / "cgroup.procs").write_text("4242\n")  # rmdir fails on it, as the kernel's would
    remove_cgroup_parent(NAME, root=tmp_path)
    assert busy.is_dir() and (tmp_path / "memory" / NAME).is_dir()
    assert not (busy / "kubepods").exists()
    assert not (tmp_path / "memory" / NAME / "c2").exists()
    assert not (tmp_path / "pids" / NAME).exists()


@pytest.mark.parametrize("parent", ["", "/", "a/b", "/a/b", "..", "/..", ".hidden"])
def test_remove_cgroup_parent_refuses_anything_but_one_folder_name(tmp_path: Path,
                                                                     parent: str) -> None:
    _cgroup_tree(tmp_path)
    before = _dirs(tmp_path)
    with pytest.raises(ValueError, match="not a cluster cgroup parent"):
        remove_cgroup_parent(parent, root=tmp_path)
    assert _dirs(tmp_path) == before


def test_no_cgroup_tree_means_nothing_removed(tmp_path: Path) -> None:
    assert remove_cgroup_parent(NAME, root=tmp_path / "absent") == []


# --- persisted state ---------------------------------------------------------------------
BUILD = "sha256:" + "b" * 64


def _state(name: str = NAME, kubeconfig: str = "/d/_cluster/1.20/kubeconfig") -> ClusterState:
    return ClusterState(name, "1.20", (f"{name}-control-plane", f"{name}-worker"),
                        ("172.18.0.2", "172.18.0.3"), "tkedistro.local/node:v1.20.2-tke.1",
                        "sha256:node", kubeconfig,
                        "tkedistro dns-responder (CoreDNS records)", 1700000000.0, 74.5, BUILD,
                        api_port=40000)


def _state_config(tmp_path: Path) -> ClusterConfig:
    return _config(tmp_path, name=NAME)


def test_cluster_state_round_trips(tmp_path: Path) -> None:
    config = _state_config(tmp_path)
    state = _state(kubeconfig=str(config.kubeconfig))
    config.root.mkdir(parents=True)
    config.state_file.write_text(json.dumps(state.to_json()))
    assert ClusterState.load(config) == state
    assert ClusterState.load(_config(tmp_path / "none")) is None  # no file: no cluster


DAMAGED = [
    ({"version": 2}, "version: Input should be 1"),
    ({"version": None}, "version: Input should be 1"),
    ({"nodes": []}, "nodes: Tuple should have at least 1 item after validation, not 0"),
    ({"nodes": "abc"}, "nodes: Input should be a valid array"),
    ({"seconds": "1e400"}, "seconds: Input should be a finite number"),
    ({"created": "NaN"}, "created: Input should be a finite number"),
    ({"created": "\"1\""}, "created: Input should be a valid number"),
    ({"addresses": ["300.1.1.1", "172.18.0.3"]}, "addresses.0: Value error"),
    ({"extra": 1}, "extra: Extra inputs are not permitted"),
    ({"build": "sha256:x"}, "build: String should match pattern"),
    ({"name": "tke-1-20-ffffff"}, f"name: not this cluster's {NAME}"),
    ({"kubeconfig": "/etc/shadow"}, "kubeconfig: not this cluster's "),
    ({"addresses": ["172.18.0.2"]}, "addresses: not one for each node"),
    ({"api_port": 0}, "api_port: Input should be greater than or equal to 1"),
    ({"api_port": 65536}, "api_port: Input should be less than or equal to 65535"),
    ({"api_port": "6443"}, "api_port: Input should be a valid integer"),
]


@pytest.mark.parametrize(("change", "why"), DAMAGED)
def test_a_damaged_state_file_is_exit_17_naming_the_file_the_key_and_the_way_out(
        tmp_path: Path, change: dict[str, object], why: str) -> None:
    config = _state_config(tmp_path)
    config.root.mkdir(parents=True)
    data = {**_state(kubeconfig=str(config.kubeconfig)).to_json()}
    raw = {k: v for k, v in change.items() if isinstance(v, str) and k in ("seconds", "created")}
    data.update({k: v for k, v in change.items() if k not in raw})
    text = json.dumps(data)
    for key, literal in raw.items():  # numbers JSON writers refuse: put in by hand
        text = re.sub(rf'"{key}": [0-9.e+]+', f'"{key}": {literal}', text)
    config.state_file.write_text(text)
    with pytest.raises(DamagedStateError) as caught:
        ClusterState.load(config)
    assert caught.value.exit_code == 17
    assert caught.value.message.startswith(
        f"{config.state_file}: not a cluster state tkedistro wrote: {why}")
    assert caught.value.hint == ("`tkedistro cluster down 1.20` removes the cluster and this "
                                 "file; then `tkedistro cluster up 1.20` starts a new one")


@pytest.mark.parametrize("content", [b"{not json", b"[]", b"\xff\xfe", b""])
def test_a_state_file_that_is_not_a_json_object_is_damaged(tmp_path: Path,
                                                            content: bytes) -> None:
    config = _state_config(tmp_path)
    config.root.mkdir(parents=True)
    config.state_file.write_bytes(content)
    with pytest.raises(DamagedStateError, match="not a cluster state tkedistro wrote"):
        ClusterState.load(config)


def test_a_symlinked_state_file_is_refused_not_read(tmp_path: Path) -> None:
    config = _state_config(tmp_path)
    config.root.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(_state(kubeconfig=str(config.kubeconfig)).to_json()))
    config.state_file.symlink_to(elsewhere)
    with pytest.raises(UnsafePathError) as caught:
        ClusterState.load(config)
    assert caught.value.exit_code == 3 and str(config.state_file) in caught.value.message


# --- remove_cluster and status against a fake engine -------------------------------------
@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "distro"
    (root / "releases").mkdir(parents=True)
    return Workspace(root=root, cache=tmp_path / "cache")


@pytest.fixture
def cgroups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cgroup"
    real = lifecycle.remove_cgroup_parent
    monkeypatch.setattr(lifecycle, "remove_cgroup_parent",
                        lambda parent: real(parent, root=root))
    return root


def _two_clusters(ws: Workspace) -> tuple[str, FakeNodes]:
    ours = cluster_name("1.20", ws.root)
    engine = FakeNodes()
    engine.add_cluster(ours, [f"{ours}-control-plane", f"{ours}-worker"])
    engine.add_cluster("tke-1-20-ffffff", ["tke-1-20-ffffff-control-plane",
                                           "tke-1-20-ffffff-worker"], subnet="172.19.0")
    return ours, engine


def test_remove_cluster_removes_only_what_carries_its_label(ws: Workspace, cgroups: Path) -> None:
    ours, engine = _two_clusters(ws)
    (cgroups / "memory" / ours / "c1").mkdir(parents=True)
    (cgroups / "memory" / "tke-1-20-ffffff" / "c2").mkdir(parents=True)
    config = lifecycle.cluster_config(ws, "1.20", "v1.20.2-tke.1")
    config.root.mkdir(parents=True)
    config.kubeconfig.write_text("apiVersion: v1\n")
    config.state_file.write_text(json.dumps(_state(ours, str(config.kubeconfig)).to_json()))

    removed = lifecycle.remove_cluster(engine, config)

    assert removed == [f"container {ours}-control-plane", f"container {ours}-worker",
                       f"volume {ours}-control-plane-var", f"volume {ours}-worker-var",
                       f"network {ours}", f"cgroup {cgroups}/memory/{ours}/c1",
                       f"cgroup {cgroups}/memory/{ours}"]
    assert sorted(engine.containers) == ["tke-1-20-ffffff-control-plane",
                                         "tke-1-20-ffffff-worker"]
    assert sorted(engine.volume_list) == ["tke-1-20-ffffff-control-plane-var",
                                          "tke-1-20-ffffff-worker-var"]
    assert sorted(engine.network_list) == ["tke-1-20-ffffff"]
    assert (cgroups / "memory" / "tke-1-20-ffffff" / "c2").is_dir()
    assert not config.kubeconfig.exists() and not config.state_file.exists()
    assert lifecycle.remove_cluster(engine, config) == []  # a second down finds nothing


def _up_cluster(ws: Workspace, engine: FakeNodes, ours: str) -> None:
    config = lifecycle.cluster_config(ws, "1.20", "")
    config.root.mkdir(parents=True)
    config.state_file.write_text(json.dumps(_state(ours, str(config.kubeconfig)).to_json()))
    engine.pod_cidrs = {f"{ours}-control-plane": "10.244.0.0/24",
                        f"{ours}-worker": "10.244.1.0/24"}


def test_status_of_a_running_cluster_says_up_in_text_and_json(ws: Workspace) -> None:
    ours, engine = _two_clusters(ws)
    _up_cluster(ws, engine, ours)
    engine.ready = {f"{ours}-control-plane", f"{ours}-worker"}
    report = StatusReport(lifecycle.status(ws, "1.20", engine=engine))
    assert report.format_text() == "\n".join([
        f"cluster {ours}: up",
        f"  {ours}-control-plane  172.18.0.2  running, Ready",
        f"  {ours}-worker  172.18.0.3  running, Ready",
        f"  kubeconfig: {ws.root}/_cluster/1.20/kubeconfig"])
    data = report.to_json()
    assert (data["name"], data["up"], data["ready"]) == (
        ours, True, [f"{ours}-control-plane", f"{ours}-worker"])
    assert data["containers"] == [
        {"name": f"{ours}-control-plane", "running": True, "address": "172.18.0.2"},
        {"name": f"{ours}-worker", "running": True, "address": "172.18.0.3"}]
    assert data["state"] == _state(ours, f"{ws.root}/_cluster/1.20/kubeconfig").to_json()
    # kubectl ran inside the control-plane node, never on the other cluster
    assert {node for node, _ in engine.runs} == {f"{ours}-control-plane"}


def test_status_with_a_node_not_ready_is_not_healthy(ws: Workspace) -> None:
    ours, engine = _two_clusters(ws)
    _up_cluster(ws, engine, ours)
    engine.ready = {f"{ours}-control-plane"}
    report = StatusReport(lifecycle.status(ws, "1.20", engine=engine))
    assert report.status.up is False and report.to_json()["up"] is False
    assert report.format_text().splitlines()[:3] == [
        f"cluster {ours}: not healthy",
        f"  {ours}-control-plane  172.18.0.2  running, Ready",
        f"  {ours}-worker  172.18.0.3  running, not Ready"]


def test_status_of_stopped_leftovers_is_not_healthy_and_asks_no_node(ws: Workspace) -> None:
    ours = cluster_name("1.20", ws.root)
    engine = FakeNodes()
    engine.add_cluster(ours, [f"{ours}-control-plane", f"{ours}-worker"], running=False)
    report = StatusReport(lifecycle.status(ws, "1.20", engine=engine))
    assert report.format_text() == "\n".join([
        f"cluster {ours}: not healthy",
        f"  {ours}-control-plane  -  stopped, not Ready",
        f"  {ours}-worker  -  stopped, not Ready"])
    assert engine.runs == []


def test_status_without_containers_says_down(ws: Workspace) -> None:
    _, engine = _two_clusters(ws)
    ours = cluster_name("1.20", ws.root)
    engine.containers = {k: v for k, v in engine.containers.items() if not k.startswith(ours)}
    report = StatusReport(lifecycle.status(ws, "1.20", engine=engine))
    assert report.format_text() == f"cluster {ours}: down (no node containers)"
    assert report.to_json() == {"name": ours, "up": False, "state": None, "containers": [],
                                "ready": []}


# --- which build a cluster runs ------------------------------------------------------------
@pytest.mark.parametrize(("machine", "platform"), [("x86_64", "linux/amd64"),
                                                   ("aarch64", "linux/arm64")])
def test_the_build_a_cluster_runs_is_read_for_this_host_s_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, machine: str, platform: str
) -> None:
    from tkedistro.core import host

    monkeypatch.setattr(host.host, "machine", lambda: machine)
    bins = Workspace(tmp_path, tmp_path / "cache").release("1.20").bin_dir()
    assert bins.relative_to(tmp_path).as_posix() == f"_output/1.20/bin/{platform}"
    bins.mkdir(parents=True)
    for name in lifecycle.NODE_BINARIES:
        (bins / name).write_text(name)
    from_files = lifecycle.build_digest(bins)  # no SHA256SUMS: the binaries' own digests
    sums = [f"{'0' * 64}  bin/{platform}/{name}" for name in lifecycle.NODE_BINARIES]
    (bins.parents[2] / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    from_sums = lifecycle.build_digest(bins)
    assert from_sums != from_files
    # a line for another platform or a tool the nodes do not run leaves the digest alone
    other = [f"{'1' * 64}  bin/linux/s390x/kubelet", f"{'2' * 64}  bin/{platform}/e2e.test"]
    (bins.parents[2] / "SHA256SUMS").write_text("\n".join(sums + other) + "\n")
    assert lifecycle.build_digest(bins) == from_sums
    # the nodes run the shipped images too: a changed archive is another build
    image = [f"{'3' * 64}  images/kube-proxy.oci.tar"]
    (bins.parents[2] / "SHA256SUMS").write_text("\n".join(sums + other + image) + "\n")
    with_image = lifecycle.build_digest(bins)
    assert with_image != from_sums
    image = [f"{'4' * 64}  images/kube-proxy.oci.tar"]
    (bins.parents[2] / "SHA256SUMS").write_text("\n".join(sums + other + image) + "\n")
    assert lifecycle.build_digest(bins) not in (with_image, from_sums)
