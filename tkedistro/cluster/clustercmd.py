"""What ``tkedistro cluster up|status`` do and print, around ``lifecycle``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tkedistro.cluster import lifecycle, logs
from tkedistro.cluster.kubeconfig import context_name
from tkedistro.cluster.lifecycle import NODE_BINARIES, ClusterState, ClusterStatus
from tkedistro.cluster.shippedimages import release_images
from tkedistro.cluster.supportimages import support_images
from tkedistro.core.errors import ClusterError
from tkedistro.core.locks import output_lock
from tkedistro.core.workspace import Workspace
from tkedistro.engine.engines import Engines
from tkedistro.engine.protocols import NodeEngine
from tkedistro.engine.registry import LocalRegistry


def bin_dir_of(ws: Workspace, release: str) -> Path:
    out = ws.release(release).bin_dir()  # the nodes run this host's platform
    missing = [b for b in NODE_BINARIES if not (out / b).is_file()]
    if missing:
        raise ClusterError(f"not built in {ws.rel(out)}: {', '.join(missing)}",
                           hint=f"build the release first: tkedistro build {release}")
    return out


def up(ws: Workspace, release: str, nodes: int, engines: Engines,
       registry: LocalRegistry | None = None, *, merge_kubeconfig: bool = True,
       retain: bool = False) -> ClusterState:
    from tkedistro.model.manifest import load_release

    manifest = load_release(ws, release)
    out = bin_dir_of(ws, release)
    release_images(ws, manifest)  # refused before anything is built
    images = support_images(ws, release, manifest, engines)
    # the node image copies the binaries and the nodes run the shipped images: a build must
    # not swap them meanwhile
    with output_lock(ws, release, f"start the cluster of {release}"):
        return lifecycle.up(ws, manifest, out, nodes=nodes, support=images,
                            shipped=release_images(ws, manifest), registry=registry,
                            engines=engines, merge_kubeconfig=merge_kubeconfig,
                            retain=retain)


def format_up(state: ClusterState) -> str:
    lines = [f"cluster {state.name} is up: {len(state.nodes)} nodes in {state.seconds:.0f}s"]
    lines += [f"  {n}  {a}" for n, a in zip(state.nodes, state.addresses, strict=True)]
    lines += [f"  DNS: {state.dns}", f"  API server: https://127.0.0.1:{state.api_port}",
              f"  kubeconfig: {state.kubeconfig}"]
    if state.merged_kubeconfig:
        context = context_name(state.release)
        lines += [f"  context {context} merged into {state.merged_kubeconfig} "
                  "(current context; `tkedistro cluster down` removes it)",
                  f"  try: kubectl --context {context} get nodes"]
    else:
        lines.append(f"  try: kubectl --kubeconfig {state.kubeconfig} get nodes")
    return "\n".join(lines)


@dataclass(frozen=True)
class StatusReport:
    status: ClusterStatus

    def to_json(self) -> dict[str, object]:
        s = self.status
        return {"name": s.name, "up": s.up, "state": s.state.to_json() if s.state else None,
                "containers": [{"name": c.name, "running": c.running, "address": c.address}
                               for c in s.containers],
                "ready": list(s.ready)}

    def format_text(self) -> str:
        s = self.status
        if not s.containers:
            return f"cluster {s.name}: down (no node containers)"
        head = "up" if s.up else "not healthy"
        lines = [f"cluster {s.name}: {head}"]
        for c in s.containers:
            ready = "Ready" if c.name in s.ready else "not Ready"
            lines.append(f"  {c.name}  {c.address or '-'}  "
                         f"{'running' if c.running else 'stopped'}, {ready}")
        if s.state:
            lines.append(f"  kubeconfig: {s.state.kubeconfig}")
        return "\n".join(lines)


def status(ws: Workspace, release: str, engine: NodeEngine) -> StatusReport:
    return StatusReport(lifecycle.status(ws, release, engine))


def export_logs(ws: Workspace, release: str, engine: NodeEngine,
                folder: Path | None = None) -> logs.CollectedLogs:
    """``tkedistro cluster logs``: found by the cluster's label, never through its state."""
    return logs.collect(engine, lifecycle.cluster_config(ws, release, ""),
                        folder.absolute() if folder else None)
