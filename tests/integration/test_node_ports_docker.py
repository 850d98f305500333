"""Docker tier: a node's published port (the control plane's API server, as kind publishes
it) is bound on the host's 127.0.0.1 only, on a port the engine picks, read back into
``NodeInfo.host_ports`` and reachable from the host."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from tests.integration.test_nodes_docker import cluster, image
from tests.integration.test_registry import BUSYBOX
from tkedistro.cluster.config import ClusterConfig
from tkedistro.engine.docker_nodes import DockerNodes
from tkedistro.engine.protocols import NodeSpec

__all__ = ["cluster", "image"]  # the fixtures
pytestmark = [
    pytest.mark.docker,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not BUSYBOX.exists(), reason="needs the host's busybox (busybox-static)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="node containers and their cgroups need root"),
]


def _answer(port: int) -> bytes:
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                return conn.recv(64)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_a_published_port_is_bound_on_loopback_only_and_answers(
        image: str, cluster: ClusterConfig) -> None:
    nodes = DockerNodes()
    net = nodes.create_network(cluster.network, cluster.labels)
    name = cluster.node_names[0]
    node = nodes.start_node(NodeSpec(
        name=name, image=image, network=net.name, labels=cluster.labels,
        cgroup_parent=cluster.cgroup_parent, volume=cluster.volume(name),
        command=("busybox", "httpd", "-f", "-p", "6443"), published_ports=(6443,)))
    port = node.host_ports[6443]
    assert 1 <= port <= 65535 and nodes.nodes(cluster.labels)[0].host_ports == {6443: port}
    bound = subprocess.run(["docker", "port", name, "6443/tcp"], capture_output=True,
                           text=True, check=True).stdout.split()
    assert bound == [f"127.0.0.1:{port}"]  # not 0.0.0.0: other hosts cannot reach it
    assert _answer(port).startswith(b"HTTP/1.")
