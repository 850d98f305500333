"""Docker tier: ``cluster logs`` from real node containers (busybox, as in
test_nodes_docker.py): the engine's record of each node, its own output, log files and pod logs
copied out of it (a stopped node too), commands run in it, and what busybox lacks (kubectl,
ctr) named in errors.txt; the tarball beside the folder holds the same files."""

from __future__ import annotations

import json
import os
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_nodes_docker import image  # noqa: F401 - the node image fixture
from tests.integration.test_registry import BUSYBOX
from tkedistro.cluster import logs
from tkedistro.cluster.config import RELEASE_LABEL, ROLE_LABEL, ClusterConfig
from tkedistro.cluster.lifecycle import remove_cluster
from tkedistro.engine.docker_nodes import DockerNodes
from tkedistro.engine.protocols import NodeSpec

pytestmark = [
    pytest.mark.docker,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not BUSYBOX.exists(), reason="needs the host's busybox (busybox-static)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="node containers and their cgroups need root"),
]
POD_LOG = "/var/log/pods/kube-system_etcd-cp_0123/etcd/0.log"
# what a node's entrypoint leaves: its own output, the services' logs, a static pod's log
# and the /var/log/containers link to it
SCRIPT = f"""busybox --install -s /bin
echo "[tkedistro-node] entrypoint says hi"
mkdir -p /var/log/containers {POD_LOG.rsplit("/", 1)[0]}
echo "I1207 kubelet started" > /var/log/kubelet.log
echo "containerd started" > /var/log/containerd.log
echo "etcd serving" > {POD_LOG}
ln -s {POD_LOG} /var/log/containers/etcd-cp_kube-system_etcd-1.log
exec sleep 600
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterConfig]:
    name = f"tke-test-{uuid.uuid4().hex[:6]}"
    config = ClusterConfig("1.20", name, 2, "v0.0.0", tmp_path / "_cluster" / "1.20")
    yield config
    remove_cluster(DockerNodes(), config)


def _start(nodes: DockerNodes, config: ClusterConfig, ref: str) -> list[str]:
    net = nodes.create_network(config.network, config.labels)
    for i, name in enumerate(config.node_names):
        labels = {**config.labels, RELEASE_LABEL: config.release,
                  ROLE_LABEL: "control-plane" if i == 0 else "worker"}
        nodes.start_node(NodeSpec(name=name, image=ref, network=net.name, labels=labels,
                                  cgroup_parent=config.cgroup_parent, volume=config.volume(name),
                                  command=("sh", "-c", SCRIPT)))
    for name in config.node_names:  # the script has written its files
        for _ in range(50):
            if nodes.exec(name, ["cat", POD_LOG]).ok:
                break
    return config.node_names


def test_logs_of_real_node_containers_one_of_them_stopped(
        image: str, cluster: ClusterConfig, tmp_path: Path) -> None:  # noqa: F811
    nodes = DockerNodes()
    cp, worker = _start(nodes, cluster, image)
    nodes.exec(worker, ["kill", "1"])  # the worker's entrypoint ends: a stopped node
    for _ in range(50):
        if not next(n for n in nodes.nodes(cluster.labels) if n.name == worker).running:
            break
    got = logs.collect(nodes, cluster, tmp_path / "out" / "logs")
    folder = got.folder
    for node in (cp, worker):
        record = json.loads((folder / node / "inspect.json").read_text())
        assert record["Name"] == f"/{node}" and record["Config"]["Labels"][ROLE_LABEL]
        assert "entrypoint says hi" in (folder / node / "entrypoint.log").read_text()
        assert (folder / node / "var/log/kubelet.log").read_text() == "I1207 kubelet started\n"
        assert (folder / node / POD_LOG.removeprefix("/")).read_text() == "etcd serving\n"
        assert (folder / node / "var/log/containers-links.txt").read_text() == (
            f"containers/etcd-cp_kube-system_etcd-1.log -> {POD_LOG}\n")
    assert "sleep 600" in (folder / cp / "processes.txt").read_text()
    errors = (folder / "errors.txt").read_text()
    assert f"{cp}/var/log/registry.log: no /var/log/registry.log in node {cp}" in errors
    assert f"{cp}/ctr-containers.txt: ctr is not available in the node (exit 127)" in errors
    assert f"{worker}/processes.txt: node {worker} is not running" in errors
    # busybox has no kubectl: the dumps are named, not written
    assert "kubernetes/nodes.txt: kubectl is not available in the node (exit 127)" in errors
    assert not (folder / "kubernetes").exists()
    with tarfile.open(got.tarball) as tar:
        members = sorted(m.name for m in tar.getmembers() if m.isfile())
    tree = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert members == [f"logs/{f}" for f in tree]
