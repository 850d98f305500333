"""``up``, ``down`` and ``status`` of the local cluster of one release.

``up`` removes what an earlier (killed) run of the same cluster left, builds or reuses the
node image, pushes the release's shipped images (the OCI archives of ``_output/<release>/
images``) with etcd and the DNS responder to the local registry (whose storage every node
serves read-only at ``127.0.0.1:5000``), starts the node containers on a network of
their own, bootstraps them with kubeadm, deploys the cluster DNS and writes the kubeconfig
and ``cluster.json`` under ``_cluster/<release>/``. ``down`` removes exactly what carries the
cluster's label: containers, volumes, the network, and the cgroup parent docker made for it.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from tkedistro.cluster import bootstrap, kubeconfig, logs, pushing
from tkedistro.cluster.cgroups import CgroupLayout, detect_layout
from tkedistro.cluster.config import (
    LABEL,
    MAX_NODES,
    REGISTRY_ROOT,
    RELEASE_LABEL,
    ROLE_LABEL,
    ClusterConfig,
    cluster_name,
    legacy_cluster_name,
    new_token,
)
from tkedistro.cluster.nodeimage import ensure_node_image
from tkedistro.cluster.shippedimages import SHIPPED
from tkedistro.cluster.supportimages import SupportImages
from tkedistro.core import console, files
from tkedistro.core.errors import ClusterError, DamagedStateError, Interrupted, LockedError
from tkedistro.core.files import sha256_file, write_text
from tkedistro.core.locks import exclusive_lock
from tkedistro.core.workspace import Workspace, output_bin
from tkedistro.engine.engines import Engines
from tkedistro.engine.protocols import Mount, NodeEngine, NodeInfo, NodeSpec
from tkedistro.engine.registry import LocalRegistry
from tkedistro.images.push import ArchivedImage
from tkedistro.model.manifest import Manifest

STATE_VERSION: Literal[1] = 1
# what a node image is made of and what its shipped images hold (also what `up` needs built)
NODE_BINARIES = ("kubelet", "kubeadm", "kubectl", "kube-apiserver", "kube-controller-manager",
                 "kube-scheduler", "kube-proxy")
KEEP_ENV = "TKEDISTRO_KEEP_CLUSTER"
CGROUP_ROOT = Path("/sys/fs/cgroup")
DEFAULT_NODES = 2
READY_TIMEOUT_S = 300
API_PORT = 6443  # the API server's port in the control-plane node, published on 127.0.0.1


NodeName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Seconds = Annotated[float, Field(ge=0)]
Address = Annotated[str, AfterValidator(lambda v: str(IPv4Address(v)))]
STATE_HINT = ("`tkedistro cluster down {release}` removes the cluster and this file; "
              "then `tkedistro cluster up {release}` starts a new one")


class StateFile(BaseModel):
    """The schema of ``_cluster/<release>/cluster.json``: anything else is damaged state
    (unknown keys or version, wrong types, NaN or infinite numbers)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    version: Literal[1]
    name: NodeName
    release: Annotated[str, Field(min_length=1, max_length=64)]
    nodes: tuple[NodeName, ...] = Field(min_length=1, max_length=MAX_NODES)
    addresses: tuple[Address, ...]
    node_image: Annotated[str, Field(max_length=512)]
    node_image_id: Annotated[str, Field(max_length=512)]
    kubeconfig: Annotated[str, Field(max_length=4096)]
    dns: Annotated[str, Field(max_length=512)]
    created: Seconds
    seconds: Seconds
    build: Annotated[str, Field(pattern=r"^(sha256:[0-9a-f]{64})?$")] = ""
    api_port: Annotated[int, Field(ge=1, le=65535)]  # https://127.0.0.1:<api_port>
    merged_kubeconfig: Annotated[str, Field(max_length=4096)] = ""  # "": not merged


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
    api_port: int = 0  # the host port of 127.0.0.1 the API server is published on
    merged_kubeconfig: str = ""  # the user's kubeconfig holding context tkedistro-<release>

    def to_json(self) -> dict[str, object]:
        return {"version": STATE_VERSION, "name": self.name, "release": self.release,
                "nodes": list(self.nodes), "addresses": list(self.addresses),
                "node_image": self.node_image, "node_image_id": self.node_image_id,
                "kubeconfig": self.kubeconfig, "dns": self.dns, "created": self.created,
                "seconds": round(self.seconds, 1), "build": self.build,
                "api_port": self.api_port, "merged_kubeconfig": self.merged_kubeconfig}

    @classmethod
    def load(cls, config: ClusterConfig) -> ClusterState | None:
        """The state of ``config``'s cluster; None when there is none, ``DamagedStateError``
        when the file does not hold what ``up`` writes: besides ``StateFile``, its name and
        kubeconfig must be this cluster's own (the suite is handed that path). Read without
        following a symlink (one is refused, exit 3)."""
        path = config.state_file
        try:
            text = files.read_text(path, max_bytes=1 << 20)
        except FileNotFoundError:
            return None
        except (IsADirectoryError, UnicodeDecodeError) as exc:
            raise _damaged(path, config, f"not a UTF-8 text file ({exc})") from None
        except OSError as exc:
            if exc.errno != errno.EFBIG:
                raise
            raise _damaged(path, config, "larger than 1 MiB") from None
        _refuse_legacy(text, path, config)
        try:
            data = StateFile.model_validate_json(text)
        except ValidationError as exc:
            raise _damaged(path, config, _reason(exc)) from None
        if data.name != config.name:
            raise _damaged(path, config, f"name: not this cluster's {config.name}")
        if data.kubeconfig != str(config.kubeconfig):
            raise _damaged(path, config, f"kubeconfig: not this cluster's {config.kubeconfig}")
        if len(data.addresses) != len(data.nodes):
            raise _damaged(path, config, "addresses: not one for each node")
        return cls(**data.model_dump(exclude={"version"}))


def _old_name(config: ClusterConfig) -> str:
    """The cluster's name before names held the exact release (``config.root`` is
    ``<distro root>/_cluster/<release>``)."""
    return legacy_cluster_name(config.release, config.root.parent.parent)


def _refuse_legacy(text: str, path: Path, config: ClusterConfig) -> None:
    """A state file an earlier tkedistro wrote under the cluster's old name: say so."""
    try:
        name = json.loads(text).get("name")
    except (ValueError, AttributeError):
        return
    old = _old_name(config)
    if name == old != config.name:
        raise DamagedStateError(
            f"{path}: cluster {old} was started by an earlier tkedistro, whose cluster names "
            f"did not tell {config.release!r} from similar release names; it is now "
            f"{config.name}",
            hint=STATE_HINT.format(release=config.release)) from None


def _reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _damaged(path: Path, config: ClusterConfig, why: str) -> DamagedStateError:
    return DamagedStateError(f"{path}: not a cluster state tkedistro wrote: {why}",
                             hint=STATE_HINT.format(release=config.release))


def build_digest(bin_dir: Path) -> str:
    """Which build a cluster runs: the digest of the lines of the output's ``SHA256SUMS``
    (in the output folder ``bin_dir``, the host platform's, is in) that name the node's
    binaries and the shipped images' archives, so adding or dropping the conformance tools
    does not make a running cluster look stale; those files' own digests when there is no
    ``SHA256SUMS``."""
    rel = output_bin()
    out = bin_dir.parents[len(rel.parts) - 1]
    sums = out / "SHA256SUMS"
    wanted = {f"{rel}/{name}" for name in NODE_BINARIES}
    wanted |= {f"images/{name}.oci.tar" for name in SHIPPED}
    if sums.is_file():
        lines = sorted(line for line in sums.read_text(encoding="utf-8").splitlines()
                       if line.partition("  ")[2] in wanted)
    else:
        lines = sorted(f"{sha256_file(out / name)}  {name}"
                       for name in wanted if (out / name).is_file())
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


def remove_cluster(engine: NodeEngine, config: ClusterConfig,
                   layout: CgroupLayout | None = None) -> list[str]:
    """Remove everything labelled with this cluster, and the cgroup parent docker made for
    its nodes on this host's ``layout`` (detected when not given), and what an earlier
    tkedistro started for this exact release under the cluster's old name; returns what was
    removed."""
    layout = layout or detect_layout(engine)
    removed = _remove_labelled(engine, config, {LABEL: config.name}, layout)
    old = _old_name(config)
    if old != config.name:
        removed += _remove_legacy(engine, config, old, layout)
    for path in (config.kubeconfig, config.state_file):
        files.remove(path)  # never through a symlink: only the repo's own files go
    return removed


def _parent_cgroups(layout: CgroupLayout, name: str) -> list[str]:
    parent = layout.parent(name)  # "": the systemd driver's nodes have none of their own
    return [f"cgroup {p}" for p in (remove_cgroup_parent(parent) if parent else [])]


def _remove_legacy(engine: NodeEngine, config: ClusterConfig, old: str,
                   layout: CgroupLayout) -> list[str]:
    """The old name was shared by releases such as ``1.0-tke`` and ``1.0-TKE``: only what
    carries this exact release's label goes, and the old network and cgroup parent only
    once no container of the old name is left."""
    removed = _remove_nodes(engine, {LABEL: old, RELEASE_LABEL: config.release})
    if removed and not engine.nodes({LABEL: old}):
        removed += _remove_networks(engine, {LABEL: old}) + _parent_cgroups(layout, old)
    return removed


def _remove_labelled(engine: NodeEngine, config: ClusterConfig,
                     selector: dict[str, str], layout: CgroupLayout) -> list[str]:
    return (_remove_nodes(engine, selector) + _remove_networks(engine, selector)
            + _parent_cgroups(layout, config.name))


def _remove_nodes(engine: NodeEngine, selector: dict[str, str]) -> list[str]:
    """The containers, then the volumes, that carry ``selector``'s labels."""
    removed = []
    for node in engine.nodes(selector):
        engine.remove_node(node.name)
        removed.append(f"container {node.name}")
    for volume in engine.volumes(selector):
        engine.remove_volume(volume)
        removed.append(f"volume {volume}")
    return removed


def _remove_networks(engine: NodeEngine, selector: dict[str, str]) -> list[str]:
    removed = []
    for network in engine.networks(selector):
        engine.remove_network(network)
        removed.append(f"network {network}")
    return removed


def remove_cgroup_parent(parent: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """Remove the (empty) cgroup folders under ``parent``, deepest first: in every hierarchy
    on cgroup v1, in the one tree on v2 (``root`` holds ``cgroup.controllers``).

    Only the cluster's own parent (``/<cluster name>``) is looked at; a folder still holding
    processes cannot be removed by the kernel and is left as it is.
    """
    name = parent.strip("/")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"not a cluster cgroup parent: {parent!r}")
    if (root / "cgroup.controllers").is_file():
        return _remove_tree(root / name)
    removed = []
    for hierarchy in sorted(root.iterdir()) if root.is_dir() else []:
        if not hierarchy.is_symlink():  # ``cpu -> cpu,cpuacct``: the folder is listed too
            removed += _remove_tree(hierarchy / name)
    return removed


def _remove_tree(top: Path) -> list[Path]:
    if top.is_symlink() or not top.is_dir():
        return []
    dirs = sorted((p for p in top.rglob("*") if p.is_dir() and not p.is_symlink()),
                  key=lambda p: -len(p.parts))
    return [d for d in [*dirs, top] if files.remove_empty_dir(d)]


def node_spec(config: ClusterConfig, layout: CgroupLayout, index: int, image: str,
              registry_data: Path) -> NodeSpec:
    """The container of node ``index`` (0: the control plane) on this host's cgroup layout."""
    name = config.node_names[index]
    labels = {**config.labels, RELEASE_LABEL: config.release,
              ROLE_LABEL: "control-plane" if index == 0 else "worker"}
    return NodeSpec(name=name, image=image, network=config.network, labels=labels,
                    cgroup_parent=layout.parent(config.name), volume=config.volume(name),
                    mounts=(Mount(registry_data, REGISTRY_ROOT, read_only=True),),
                    private_cgroupns=layout.private_namespace,
                    host_cgroup_tree=layout.binds_host_tree,
                    published_ports=(API_PORT,) if index == 0 else ())


def _start_nodes(engine: NodeEngine, config: ClusterConfig, image: str,
                 registry_data: Path, layout: CgroupLayout) -> list[NodeInfo]:
    files.check_path(registry_data)  # docker would follow a symlink in a mount's source
    console.info(f"nodes for {layout.describe()}")
    engine.create_network(config.network, config.labels)
    return [engine.start_node(node_spec(config, layout, i, image, registry_data))
            for i in range(len(config.node_names))]


def retained(retain: bool) -> bool:
    """``--retain``, or its older spelling ``TKEDISTRO_KEEP_CLUSTER=1``."""
    return retain or os.environ.get(KEEP_ENV) == "1"


def up(ws: Workspace, manifest: Manifest, bin_dir: Path, *, nodes: int = DEFAULT_NODES,
       support: SupportImages, shipped: Sequence[ArchivedImage],
       registry: LocalRegistry | None = None, engines: Engines,
       merge_kubeconfig: bool = False, retain: bool = False,
       logs_dir: Path | None = None) -> ClusterState:
    """Bring the cluster up from scratch (an earlier one of the same name is removed first).

    ``support``: local etcd and DNS images (``supportimages.support_images``);
    ``shipped``: the release's OCI archives the nodes run (``shippedimages.release_images``);
    ``registry``: the caller's running registry, else one for this call;
    ``merge_kubeconfig``: add context ``tkedistro-<release>`` to the user's kubeconfig (a
    file that is not a kubeconfig is refused before anything starts). When bootstrapping
    fails, the nodes' logs are collected (into ``logs_dir``, else ``_cluster/<release>/
    logs-<time>``), then the cluster is removed unless ``retained(retain)``; the error names
    the logs and ``cluster logs``/``cluster down``.
    """
    if not 2 <= nodes <= 5:
        raise ClusterError(f"--nodes {nodes}: a cluster has 2 to 5 nodes",
                           hint="v1.20 conformance needs at least 2 schedulable nodes")
    release = manifest.release
    config = cluster_config(ws, release, manifest.distro_version, nodes)
    engine, images = engines.nodes, engines.images
    target = _merge_target() if merge_kubeconfig else None
    start = time.monotonic()
    files.ensure_dir(config.root)  # a symlinked _cluster/<release>: refused before any work
    with cluster_lock(ws, config):
        layout = detect_layout(engine)  # refused before anything is built or started
        for item in remove_cluster(engine, config, layout):
            console.info(f"removed leftover {item} of cluster {config.name}")
        work = ws.cache / "cluster" / release
        node_image = ensure_node_image(images, config, bin_dir, work)
        with _registry(ws, registry) as reg:
            dns = pushing.push_cluster_images(config, images, reg, support, shipped).dns
            data = reg.folder / "data"
        try:
            state = _bootstrap(engine, config, node_image.ref, data, dns, layout)
        except BaseException as exc:
            _failed(engine, config, exc, retained(retain), logs_dir, layout)
            raise
    state = dataclasses.replace(state, node_image_id=node_image.id,
                                seconds=time.monotonic() - start, build=build_digest(bin_dir),
                                merged_kubeconfig=str(target[0]) if target else "")
    files.write_json(config.state_file, state.to_json())
    if target is not None:
        kubeconfig.merge(target[0], release, files.read_text(config.kubeconfig), target[1])
    return state


def _merge_target() -> tuple[Path, kubeconfig.InvokingUser | None]:
    """The user's kubeconfig to merge into (checked now) and the ``sudo`` caller."""
    user = kubeconfig.invoking_user()
    path = kubeconfig.user_kubeconfig(user)
    kubeconfig.check(path)
    return path, user


def _failed(engine: NodeEngine, config: ClusterConfig, exc: BaseException, keep: bool,
            logs_dir: Path | None, layout: CgroupLayout | None = None) -> None:
    """The failure path of ``up``: the logs first (not after Ctrl-C), then the removal."""
    failed = isinstance(exc, Exception) and not isinstance(exc, Interrupted)
    collected = logs.collect_after_failure(engine, config, logs_dir) if failed else None
    if not keep:
        remove_cluster(engine, config, layout)
    if failed:
        logs.add_note(exc, logs.failure_note(config.release, collected, keep))


@contextmanager
def _registry(ws: Workspace, given: LocalRegistry | None) -> Iterator[LocalRegistry]:
    if given is not None:
        yield given
        return
    with LocalRegistry(ws.cache / "registry") as reg:
        yield reg


def _bootstrap(engine: NodeEngine, config: ClusterConfig, image: str, registry_data: Path,
               dns: pushing.DnsImage, layout: CgroupLayout) -> ClusterState:
    with console.step("cluster", f"start {config.nodes} node containers ({config.name})"):
        started = _start_nodes(engine, config, image, registry_data, layout)
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
    port = _api_port(control)
    # the admin's credentials, at the published port: the owner's alone from the first byte
    admin = kubeconfig.published(bootstrap.admin_kubeconfig(engine, control.name), port)
    write_text(config.kubeconfig, admin, mode=0o600)
    return ClusterState(name=config.name, release=config.release,
                        nodes=tuple(n.name for n in started),
                        addresses=tuple(n.address for n in started), node_image=image,
                        node_image_id="", kubeconfig=str(config.kubeconfig),
                        dns=dns.description, created=time.time(), seconds=0.0, api_port=port)


def _api_port(control: NodeInfo) -> int:
    port = control.host_ports.get(API_PORT, 0)
    if not 1 <= port <= 65535:
        raise ClusterError(f"the engine published no host port for {API_PORT} of node "
                           f"{control.name}", hint=f"see `docker port {control.name}`")
    return port


def down(ws: Workspace, release: str, engine: NodeEngine) -> list[str]:
    config = cluster_config(ws, release, "")
    files.check_path(config.root)  # a symlinked _cluster/<release>: refused before anything
    with cluster_lock(ws, config):
        merged = _merged_into(config)
        removed = remove_cluster(engine, config)
    return removed + _unmerge(release, merged)


def _merged_into(config: ClusterConfig) -> str:
    """The user's kubeconfig ``up`` merged into ("" when not, or when the state is gone)."""
    try:
        state = ClusterState.load(config)
    except DamagedStateError:
        return ""
    return state.merged_kubeconfig if state is not None else ""


def _unmerge(release: str, merged: str) -> list[str]:
    """Take context ``tkedistro-<release>`` out of the kubeconfig ``up`` merged into and of
    the one kubectl uses now; what was taken, for ``down``'s list."""
    user = kubeconfig.invoking_user()
    name = kubeconfig.context_name(release)
    if merged and not kubeconfig.belongs_to(Path(merged), user):
        console.warn(f"{merged} (named in cluster.json) is not your file: context {name} "
                     "not removed from it")
        merged = ""
    paths = dict.fromkeys(p for p in (merged, str(kubeconfig.user_kubeconfig(user))) if p)
    taken = []
    for path in paths:
        try:
            if kubeconfig.unmerge(Path(path), release, user):
                taken.append(f"kubeconfig context {name} from {path}")
        except (ClusterError, LockedError) as exc:  # the cluster is gone all the same
            console.warn(f"{exc.message} (context {name} not removed from it)")
    return taken


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
    state = ClusterState.load(config)
    ready: set[str] = set()
    running = {c.name for c in containers if c.running}
    if state is not None and state.nodes and state.nodes[0] in running:
        ready = bootstrap.ready_nodes(engine, state.nodes[0])
    return ClusterStatus(config.name, state, containers, tuple(sorted(ready)))
