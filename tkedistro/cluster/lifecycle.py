"""``up``, ``down`` and ``status`` of the local cluster of one release.

``up`` removes what an earlier (killed) run of the same cluster left, builds or reuses the
node image and the component images, pushes them to the local registry (whose storage every
node serves read-only at ``127.0.0.1:5000``), starts the node containers on a network of
their own, bootstraps them with kubeadm, deploys the cluster DNS and writes the kubeconfig
and ``cluster.json`` under ``_cluster/<release>/``. ``down`` removes exactly what carries the
cluster's label: containers, volumes, the network, and the cgroup parent docker made for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tkedistro.cluster import bootstrap, pushing
from tkedistro.cluster.config import (
    LABEL,
    REGISTRY_ROOT,
    RELEASE_LABEL,
    ROLE_LABEL,
    ClusterConfig,
    cluster_name,
    new_token,
)
from tkedistro.cluster.nodeimage import ensure_node_image
from tkedistro.cluster.supportimages import SupportImages
from tkedistro.core import console
from tkedistro.core.errors import ClusterError
from tkedistro.core.files import sha256_file, write_atomic
from tkedistro.core.locks import exclusive_lock
from tkedistro.core.workspace import Workspace, output_bin
from tkedistro.engine.engines import Engines
from tkedistro.engine.protocols import Mount, NodeEngine, NodeInfo, NodeSpec
from tkedistro.engine.registry import LocalRegistry
from tkedistro.model.manifest import Manifest

STATE_VERSION = 1
# what a node image and the component images are made of (also what `up` needs built)
NODE_BINARIES = ("kubelet", "kubeadm", "kubectl", "kube-apiserver", "kube-controller-manager",
                 "kube-scheduler", "kube-proxy")
KEEP_ENV = "TKEDISTRO_KEEP_CLUSTER"
CGROUP_ROOT = Path("/sys/fs/cgroup")
DEFAULT_NODES = 2
READY_TIMEOUT_S = 300


@dataclass(frozen=True)
class ClusterState:
    name: str
    release: str
    nodes: tuple[str, ...]
    addresses: tuple[str, ...]
    node_image: str
    node_image_id: str
    kubeconfig: str
    dns: str
    created: float
    seconds: float
    build: str = ""  # build_digest() of the binaries it runs


    def to_json(self) -> dict[str, object]:
        return {"version": STATE_VERSION, "name": self.name, "release": self.release,
                "nodes": list(self.nodes), "addresses": list(self.addresses),
                "node_image": self.node_image, "node_image_id": self.node_image_id,
                "kubeconfig": self.kubeconfig, "dns": self.dns, "created": self.created,
                "seconds": round(self.seconds, 1), "build": self.build}

    @classmethod
    def load(cls, path: Path) -> ClusterState | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != STATE_VERSION:
                return None
            return cls(str(data["name"]), str(data["release"]), tuple(data["nodes"]),
                       tuple(data["addresses"]), str(data["node_image"]),
                       str(data["node_image_id"]), str(data["kubeconfig"]), str(data["dns"]),
                       float(data["created"]), float(data["seconds"]), str(data.get("build", "")))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def build_digest(bin_dir: Path) -> str:
    """Which binaries a cluster runs: the digest of the lines of the output's ``SHA256SUMS``
    (in the output folder ``bin_dir``, the host platform's, is in) that name the node's
    binaries, so adding or dropping the conformance tools does not make a running cluster look
    stale; the binaries' own digests when there is no ``SHA256SUMS``."""
    rel = output_bin()
    sums = bin_dir.parents[len(rel.parts) - 1] / "SHA256SUMS"
    wanted = {f"{rel}/{name}" for name in NODE_BINARIES}
    if sums.is_file():
        lines = sorted(line for line in sums.read_text(encoding="utf-8").splitlines()
                       if line.partition("  ")[2] in wanted)
    else:
        lines = sorted(f"{sha256_file(bin_dir / n)}  {rel}/{n}"
                       for n in NODE_BINARIES if (bin_dir / n).is_file())
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def runs_current(ws: Workspace, state: ClusterState, bin_dir: Path) -> bool:
    return bool(state.build) and state.build == build_digest(bin_dir)


def cluster_config(ws: Workspace, release: str, version: str,
                   nodes: int = DEFAULT_NODES) -> ClusterConfig:
    return ClusterConfig(release=release, name=cluster_name(release, ws.root), nodes=nodes,
                         version=version, root=ws.cluster_dir(release))


@contextmanager
def cluster_lock(ws: Workspace, config: ClusterConfig) -> Iterator[None]:
    with exclusive_lock(ws.release(config.release).cluster_lock,
                        f"another tkedistro run is changing the cluster {config.name}"):
        yield


def remove_cluster(engine: NodeEngine, config: ClusterConfig) -> list[str]:
    """Remove everything labelled with this cluster; returns what was removed."""
    selector = {LABEL: config.name}
    removed = []
    for node in engine.nodes(selector):
        engine.remove_node(node.name)
        removed.append(f"container {node.name}")
    for volume in engine.volumes(selector):
        engine.remove_volume(volume)
        removed.append(f"volume {volume}")
    for network in engine.networks(selector):
        engine.remove_network(network)
        removed.append(f"network {network}")
    removed += [f"cgroup {p}" for p in remove_cgroup_parent(config.cgroup_parent)]
    for path in (config.kubeconfig, config.state_file):
        path.unlink(missing_ok=True)
    return removed


def remove_cgroup_parent(parent: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """Remove the (empty) cgroup folders under ``parent`` in every hierarchy, deepest first.

    Only the cluster's own parent (``/<cluster name>``) is looked at; a folder still holding
    processes cannot be removed by the kernel and is left as it is.
    """
    removed = []
    name = parent.strip("/")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"not a cluster cgroup parent: {parent!r}")
    for hierarchy in sorted(root.iterdir()) if root.is_dir() else []:
        top = hierarchy / name
        if not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, top]:
            try:
                d.rmdir()
                removed.append(d)
            except OSError:
                pass
    return removed


def _start_nodes(engine: NodeEngine, config: ClusterConfig, image: str,
                 registry_data: Path) -> list[NodeInfo]:
    engine.create_network(config.network, config.labels)
    started = []
    for i, name in enumerate(config.node_names):
        labels = {**config.labels, RELEASE_LABEL: config.release,
                  ROLE_LABEL: "control-plane" if i == 0 else "worker"}
        spec = NodeSpec(name=name, image=image, network=config.network, labels=labels,
                        cgroup_parent=config.cgroup_parent, volume=config.volume(name),
                        mounts=(Mount(registry_data, REGISTRY_ROOT, read_only=True),))
        started.append(engine.start_node(spec))
    return started


def up(ws: Workspace, manifest: Manifest, bin_dir: Path, *, nodes: int = DEFAULT_NODES,
       support: SupportImages, registry: LocalRegistry | None = None,
       engines: Engines) -> ClusterState:
    """Bring the cluster up from scratch (an earlier one of the same name is removed first).

    ``support``: local etcd, pause and DNS images (``supportimages.support_images``);
    ``registry``: the caller's running registry, else one for this call.
    """
    if not 2 <= nodes <= 5:
        raise ClusterError(f"--nodes {nodes}: a cluster has 2 to 5 nodes",
                           hint="v1.20 conformance needs at least 2 schedulable nodes")
    release = manifest.release
    config = cluster_config(ws, release, manifest.distro_version, nodes)
    engine, images = engines.nodes, engines.images
    start = time.monotonic()
    with cluster_lock(ws, config):
        for item in remove_cluster(engine, config):
            console.info(f"removed leftover {item} of cluster {config.name}")
        work = ws.cache / "cluster" / release
        node_image = ensure_node_image(images, config, bin_dir, work)
        with _registry(ws, registry) as reg:
            dns = pushing.push_cluster_images(ws, manifest, config, images, reg, support)
            data = reg.folder / "data"
        try:
            state = _bootstrap(engine, config, node_image.ref, data, dns)
        except BaseException:
            if os.environ.get(KEEP_ENV) != "1":
                remove_cluster(engine, config)
            raise
    state = ClusterState(**{**state.__dict__, "node_image_id": node_image.id,
                            "seconds": time.monotonic() - start,
                            "build": build_digest(bin_dir)})
    write_atomic(config.state_file, (json.dumps(state.to_json(), indent=2) + "\n").encode())
    return state


@contextmanager
def _registry(ws: Workspace, given: LocalRegistry | None) -> Iterator[LocalRegistry]:
    if given is not None:
        yield given
        return
    with LocalRegistry(ws.cache / "registry") as reg:
        yield reg


def _bootstrap(engine: NodeEngine, config: ClusterConfig, image: str, registry_data: Path,
               dns: pushing.DnsImage) -> ClusterState:
    with console.step("cluster", f"start {config.nodes} node containers ({config.name})"):
        started = _start_nodes(engine, config, image, registry_data)
        bootstrap.wait_node_services(engine, started)
    control, workers = started[0], started[1:]
    token = new_token()
    ca_hash = bootstrap.init_control_plane(engine, config, control, token)
    bootstrap.join_workers(engine, workers, f"{control.address}:6443", token, ca_hash)
    bootstrap.pod_network(engine, control.name, started)
    bootstrap.wait_ready(engine, control.name, [n.name for n in started], READY_TIMEOUT_S)
    with console.step("cluster", f"cluster DNS ({dns.description})"):
        bootstrap.apply(engine, control.name, "cluster-dns", dns.manifests)
        bootstrap.wait_rollout(engine, control.name, "kube-system", dns.deployment, 180)
    config.root.mkdir(parents=True, exist_ok=True)
    write_atomic(config.kubeconfig, bootstrap.admin_kubeconfig(engine, control.name).encode())
    os.chmod(config.kubeconfig, 0o600)
    return ClusterState(config.name, config.release, tuple(n.name for n in started),
                        tuple(n.address for n in started), image, "", str(config.kubeconfig),
                        dns.description, time.time(), 0.0)


def down(ws: Workspace, release: str, engine: NodeEngine) -> list[str]:
    config = cluster_config(ws, release, "")
    with cluster_lock(ws, config):
        return remove_cluster(engine, config)


@dataclass(frozen=True)
class ClusterStatus:
    name: str
    state: ClusterState | None
    containers: tuple[NodeInfo, ...]
    ready: tuple[str, ...]

    @property
    def up(self) -> bool:
        return (self.state is not None and bool(self.containers)
                and all(c.running for c in self.containers)
                and set(self.state.nodes) <= set(self.ready))


def status(ws: Workspace, release: str, engine: NodeEngine) -> ClusterStatus:
    config = cluster_config(ws, release, "")
    containers = tuple(engine.nodes({LABEL: config.name}))
    state = ClusterState.load(config.state_file)
    ready: set[str] = set()
    running = {c.name for c in containers if c.running}
    if state is not None and state.nodes and state.nodes[0] in running:
        ready = bootstrap.ready_nodes(engine, state.nodes[0])
    return ClusterStatus(config.name, state, containers, tuple(sorted(ready)))
