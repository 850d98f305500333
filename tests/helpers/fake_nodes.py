"""An in-memory ``NodeEngine``: node containers, volumes and networks of any number of
clusters, the files written into nodes, and every argv run in them.

Commands answer like a small kubeadm cluster would: ``kubeadm init`` prints a join command
with a CA hash, ``kubectl get nodes -o json`` lists the nodes with their pod CIDRs and the
Ready ones, ``iptables -N`` fails for a chain that already exists. ``fail`` makes chosen
commands on chosen nodes fail; ``answers`` gives chosen commands a canned output. For
``cluster logs``: ``node_files`` (and ``node_links``) are what ``copy_out`` finds in a
node, ``outputs`` each node's own output; ``fail`` with ``(node, "inspect")`` or
``(node, "logs")`` makes those calls fail.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from tkedistro.core.errors import ClusterError
from tkedistro.engine.protocols import (
    EngineCgroups,
    NetworkInfo,
    NodeInfo,
    NodeSpec,
    RunResult,
)

CA_HASH = "sha256:" + "ab12" * 16
INIT_OUTPUT = ("Your Kubernetes control-plane has initialized successfully!\n"
               "kubeadm join 172.18.0.2:6443 --token abcdef.0123456789abcdef \\\n"
               f"    --discovery-token-ca-cert-hash {CA_HASH}\n")


@dataclass
class Labelled:
    name: str
    labels: dict[str, str]


def _matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@dataclass
class FakeNodes:
    """What the engine holds, and what ran where: ``runs`` is ``(node, argv)`` in order."""

    name: str = "fake"
    containers: dict[str, NodeInfo] = field(default_factory=dict)
    volume_list: dict[str, Labelled] = field(default_factory=dict)
    network_list: dict[str, Labelled] = field(default_factory=dict)
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    runs: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    pod_cidrs: dict[str, str] = field(default_factory=dict)
    ready: set[str] = field(default_factory=set)
    fail: set[tuple[str, str]] = field(default_factory=set)  # (node, argv[0]) that exit 1
    chains: set[tuple[str, str]] = field(default_factory=set)
    # the first key that is part of the command line (argv joined by spaces) gives its
    # (exit code, output), e.g. {"get pod patch-proof -o json": (0, "{...}")}
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)
    node_files: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (node, path)
    node_links: dict[tuple[str, str], str] = field(default_factory=dict)  # (node, path): target
    outputs: dict[str, str] = field(default_factory=dict)  # the node container's own output
    # what ``docker info`` says: no version (this machine's files decide), cgroupfs driver
    engine_cgroups: EngineCgroups = EngineCgroups("", "cgroupfs")
    specs: list[NodeSpec] = field(default_factory=list)  # every node started, in order

    # --- fixtures' helpers ----------------------------------------------------------------
    def add_cluster(self, cluster: str, nodes: Sequence[str], *, running: bool = True,
                    subnet: str = "172.18.0", release: str = "") -> list[NodeInfo]:
        labels = {"org.tkedistro.cluster": cluster}
        if release:  # what ``up`` puts on its containers and volumes besides the name
            labels["org.tkedistro.release"] = release
        self.network_list[cluster] = Labelled(cluster, {"org.tkedistro.cluster": cluster})
        added = []
        for i, node in enumerate(nodes):
            info = NodeInfo(node, f"id-{node}", running, dict(labels),
                            f"{subnet}.{i + 2}" if running else "")
            self.containers[node] = info
            self.volume_list[f"{node}-var"] = Labelled(f"{node}-var", dict(labels))
            added.append(info)
        return added

    def argv_on(self, node: str) -> list[tuple[str, ...]]:
        return [argv for name, argv in self.runs if name == node]

    # --- NodeEngine -----------------------------------------------------------------------
    def check_available(self) -> None:
        return None

    def cgroups(self) -> EngineCgroups:
        return self.engine_cgroups

    def create_network(self, name: str, labels: Mapping[str, str]) -> NetworkInfo:
        self.network_list[name] = Labelled(name, dict(labels))
        return NetworkInfo(name, "172.18.0.0/16", "172.18.0.1")

    def networks(self, labels: Mapping[str, str]) -> list[str]:
        return sorted(n.name for n in self.network_list.values() if _matches(n.labels, labels))

    def remove_network(self, name: str) -> None:
        self.network_list.pop(name, None)

    def start_node(self, spec: NodeSpec) -> NodeInfo:
        self.specs.append(spec)
        info = NodeInfo(spec.name, f"id-{spec.name}", True, dict(spec.labels),
                        f"172.18.0.{len(self.containers) + 2}",
                        {port: 40000 + i for i, port in enumerate(spec.published_ports)})
        self.containers[spec.name] = info
        self.volume_list[spec.volume] = Labelled(spec.volume, dict(spec.labels))
        return info

    def nodes(self, labels: Mapping[str, str]) -> list[NodeInfo]:
        return sorted((c for c in self.containers.values() if _matches(c.labels, labels)),
                      key=lambda c: c.name)

    def remove_node(self, name: str) -> None:
        self.containers.pop(name, None)

    def volumes(self, labels: Mapping[str, str]) -> list[str]:
        return sorted(v.name for v in self.volume_list.values() if _matches(v.labels, labels))

    def remove_volume(self, name: str) -> None:
        self.volume_list.pop(name, None)

    def exec(self, name: str, argv: Sequence[str]) -> RunResult:
        args = tuple(argv)
        self.runs.append((name, args))
        if name not in self.containers:
            return RunResult(args, 1, f"Error: No such container: {name}")
        if (name, args[0]) in self.fail:
            return RunResult(args, 1, f"{args[0]} failed on {name}")
        line = " ".join(args)
        canned = next((v for k, v in self.answers.items() if k in line), None)
        if canned is not None:
            return RunResult(args, *canned)
        if args[:2] == ("kubeadm", "init"):
            return RunResult(args, 0, INIT_OUTPUT)
        if args[0] == "kubectl" and "get" in args and "nodes" in args:
            items = [self._node_json(n) for n in sorted(self.pod_cidrs)]
            return RunResult(args, 0, json.dumps({"items": items}))
        if args[:4] == ("iptables", "-t", "nat", "-N"):
            if (name, args[4]) in self.chains:
                return RunResult(args, 1, "iptables: Chain already exists.")
            self.chains.add((name, args[4]))
        return RunResult(args, 0, "")

    def _node_json(self, name: str) -> dict[str, object]:
        ready = "True" if name in self.ready else "False"
        return {"metadata": {"name": name}, "spec": {"podCIDR": self.pod_cidrs[name]},
                "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                          {"type": "Ready", "status": ready}]}}

    def put_file(self, name: str, path: PurePosixPath, data: bytes, mode: int = 0o644) -> None:
        self.files[(name, str(path))] = data


    def _known(self, name: str, call: str) -> NodeInfo:
        if name not in self.containers:
            raise ClusterError(f"no node container {name}")
        if (name, call) in self.fail:
            raise ClusterError(f"{call} failed on {name}")
        return self.containers[name]

    def inspect(self, name: str) -> Mapping[str, object]:
        info = self._known(name, "inspect")
        return {"Id": info.id, "Name": f"/{name}", "State": {"Running": info.running},
                "Config": {"Labels": dict(info.labels)}}

    def logs(self, name: str) -> str:
        self._known(name, "logs")
        return self.outputs.get(name, "")

    def copy_out(self, name: str, path: PurePosixPath) -> Iterator[bytes]:
        """A tar of the node's files at or under ``path``, named from ``path``'s own name
        (as ``docker cp`` names them)."""
        self._known(name, "copy_out")
        buf = io.BytesIO()
        found = False
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for (node, where), data in sorted(self.node_files.items()):
                inside = PurePosixPath(where)
                if node == name and (inside == path or path in inside.parents):
                    info = tarfile.TarInfo(str(inside.relative_to(path.parent)))
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                    found = True
            for (node, where), target in sorted(self.node_links.items()):
                inside = PurePosixPath(where)
                if node == name and path in inside.parents:
                    info = tarfile.TarInfo(str(inside.relative_to(path.parent)))
                    info.type, info.linkname = tarfile.SYMTYPE, target
                    tar.addfile(info)
                    found = True
        if not found:
            raise ClusterError(f"no {path} in node {name}")
        data = buf.getvalue()
        yield data[:1000]  # in chunks, as the engine streams it
        yield data[1000:]


def install_fake_nodes(monkeypatch: Any) -> FakeNodes:
    """A ``FakeNodes`` as the CLI's node engine, with no host cgroup folder ever removed."""
    from tests.helpers.engines import use_engines
    from tkedistro.cluster import lifecycle

    nodes = FakeNodes()
    use_engines(monkeypatch, nodes=nodes)
    monkeypatch.setattr(lifecycle, "remove_cgroup_parent", lambda parent: [])
    return nodes
