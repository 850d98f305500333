"""Docker tier: node containers through ``NodeEngine`` (``engine/docker_nodes.py``) on the real
engine, from a busybox image made here: the privileges a Kubernetes node needs without
``--privileged``, its own namespaces, files written into it, and removal of everything the
cluster made (container, volume, network and the cgroup parent) by its label and name alone.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path, PurePosixPath

import pytest

from tests.integration.test_registry import BUSYBOX, _rootfs
from tkedistro.cluster.config import ClusterConfig
from tkedistro.cluster.lifecycle import CGROUP_ROOT, remove_cluster
from tkedistro.engine.docker_nodes import DockerNodes
from tkedistro.engine.engines import docker_engines
from tkedistro.engine.protocols import NodeSpec

pytestmark = [
    pytest.mark.docker,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not BUSYBOX.exists(), reason="needs the host's busybox (busybox-static)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="node containers and their cgroups need root"),
]
CAP_SYS_ADMIN, CAP_SYS_RESOURCE, CAP_NET_ADMIN = 21, 24, 12


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    ref = "tkedistro.test/node-busybox:1"
    docker_engines().images.import_rootfs(_rootfs(tmp_path_factory.mktemp("n") / "rootfs.tar"),
                                         ref)
    return ref


@pytest.fixture
def cluster(tmp_path: Path) -> ClusterConfig:
    name = f"tke-test-{uuid.uuid4().hex[:6]}"
    config = ClusterConfig("1.20", name, 2, "v0.0.0", tmp_path / "_cluster" / "1.20")
    yield config
    remove_cluster(DockerNodes(), config)


def _caps(status: str) -> int:
    line = next(x for x in status.splitlines() if x.startswith("CapEff:"))
    return int(line.split()[1], 16)


def test_a_node_gets_what_a_kubelet_needs_in_namespaces_of_its_own(
        image: str, cluster: ClusterConfig) -> None:
    nodes = DockerNodes()
    net = nodes.create_network(cluster.network, cluster.labels)
    node = nodes.start_node(NodeSpec(
        name=cluster.node_names[0], image=image, network=net.name, labels=cluster.labels,
        cgroup_parent=cluster.cgroup_parent, volume=cluster.volume(cluster.node_names[0]),
        command=("sleep", "600")))
    assert node.running and node.address and nodes.nodes(cluster.labels)[0].name == node.name
    caps = _caps(nodes.exec(node.name, ["cat", "/proc/1/status"]).output)
    assert caps & (1 << CAP_SYS_ADMIN) and caps & (1 << CAP_NET_ADMIN)
    assert not caps & (1 << CAP_SYS_RESOURCE)  # the one this kind of VM cannot grant
    # its own network and PID namespaces, not the host's
    for ns in ("net", "pid", "mnt"):
        inside = nodes.exec(node.name, ["busybox", "readlink", f"/proc/1/ns/{ns}"])
        assert inside.ok and inside.output.strip().startswith(f"{ns}:[")
        assert inside.output.strip() != os.readlink(f"/proc/self/ns/{ns}")
    # /proc/sys is writable (kubelet and kube-proxy set sysctls of the node's namespace)
    assert nodes.exec(node.name, ["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]).ok
    # its cgroup sits under the cluster's parent, and it can make cgroups for pods below it
    own = nodes.exec(node.name, ["cat", "/proc/1/cgroup"]).output
    memory = next(line.split(":", 2)[2] for line in own.splitlines() if ":memory:" in line)
    assert memory.startswith(cluster.cgroup_parent + "/")
    assert nodes.exec(node.name, ["busybox", "mkdir",
                                 f"/sys/fs/cgroup/memory{memory}/kubelet"]).ok
    nodes.put_file(node.name, PurePosixPath("/etc/tkedistro/hello"), b"hi\n")
    assert nodes.exec(node.name, ["cat", "/etc/tkedistro/hello"]).output == "hi\n"


# capability numbers (linux/capability.h) of what a node must not hold
DROPPED = {"DAC_READ_SEARCH": 2, "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_BOOT": 22,
           "SYS_NICE": 23, "SYS_TIME": 25, "MAC_ADMIN": 33, "AUDIT_CONTROL": 30}


def _host_disk() -> tuple[int, int]:
    """Major and minor of a block device of the host (its first disk)."""
    for line in Path("/proc/partitions").read_text().splitlines()[2:]:
        major, minor, _, name = line.split()
        if not name.startswith(("loop", "ram", "zram")):
            return int(major), int(minor)
    pytest.skip("this host lists no disk in /proc/partitions")


def test_a_node_holds_only_its_listed_capabilities_devices_and_sysctls(
        image: str, cluster: ClusterConfig) -> None:
    from tkedistro.engine.docker_nodes import CAPABILITIES

    nodes = DockerNodes()
    net = nodes.create_network(cluster.network, cluster.labels)
    name = cluster.node_names[0]
    nodes.start_node(NodeSpec(name=name, image=image, network=net.name, labels=cluster.labels,
                              cgroup_parent=cluster.cgroup_parent, volume=cluster.volume(name),
                              command=("sleep", "600")))

    def sh(script: str) -> bool:
        return nodes.exec(name, ["sh", "-c", script]).ok

    caps = _caps(nodes.exec(name, ["cat", "/proc/1/status"]).output)
    assert bin(caps).count("1") == len(CAPABILITIES) == 18
    assert not [cap for cap, bit in DROPPED.items() if caps & (1 << bit)]
    # a disk of the host: the node may make its device node, never open it
    major, minor = _host_disk()
    assert sh(f"busybox mknod /dev/host-disk b {major} {minor}")
    opened = nodes.exec(name, ["busybox", "dd", "if=/dev/host-disk", "of=/dev/null", "count=1"])
    assert not opened.ok and "Operation not permitted" in opened.output
    assert sh("busybox dd if=/dev/kmsg of=/dev/null bs=8192 count=1")  # the kubelet's
    assert not sh("echo 1 > /dev/kmsg")  # read-only
    # masked, read-only: the SysRq trigger, the kernel's memory, kernel-wide sysctls
    # (a kernel without them has neither file: the engine is still asked to mask them)
    import docker

    host = docker.from_env().containers.get(name).attrs["HostConfig"]
    assert {"/proc/sysrq-trigger", "/proc/kcore", "/proc/keys"} <= set(host["MaskedPaths"])
    assert not sh("echo h > /proc/sysrq-trigger")
    assert not sh("busybox head -c 1 /proc/kcore | busybox grep -q .")
    for key in ("kernel/panic", "vm/overcommit_memory", "fs/file-max"):
        assert not sh(f"cat /proc/sys/{key} > /tmp/v && cat /tmp/v > /proc/sys/{key}"), key
    assert sh("echo 1 > /proc/sys/net/ipv4/ip_forward")  # the node's own network namespace


def test_removal_takes_exactly_what_carries_the_cluster_name(
        image: str, cluster: ClusterConfig, tmp_path: Path) -> None:
    nodes = DockerNodes()
    other = ClusterConfig("1.20", cluster.name + "x", 2, "v0.0.0", tmp_path / "other")
    try:
        for config in (cluster, other):
            nodes.create_network(config.network, config.labels)
            name = config.node_names[0]
            nodes.start_node(NodeSpec(name=name, image=image, network=config.network,
                                      labels=config.labels, cgroup_parent=config.cgroup_parent,
                                      volume=config.volume(name), command=("sleep", "600")))
            memory = CGROUP_ROOT / "memory" / config.cgroup_parent.strip("/")
            assert memory.is_dir()
        removed = remove_cluster(nodes, cluster)
        assert f"container {cluster.node_names[0]}" in removed
        assert f"volume {cluster.volume(cluster.node_names[0])}" in removed
        assert f"network {cluster.network}" in removed
        assert not (CGROUP_ROOT / "memory" / cluster.cgroup_parent.strip("/")).exists()
        assert nodes.nodes(cluster.labels) == [] and nodes.networks(cluster.labels) == []
        # the other cluster is untouched
        assert [n.name for n in nodes.nodes(other.labels)] == [other.node_names[0]]
        assert (CGROUP_ROOT / "memory" / other.cgroup_parent.strip("/")).is_dir()
    finally:
        remove_cluster(nodes, other)
    assert not (CGROUP_ROOT / "memory" / other.cgroup_parent.strip("/")).exists()
