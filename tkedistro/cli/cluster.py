"""``tkedistro cluster up|down|status|prove|logs RELEASE``: the local multi-node cluster."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tkedistro.cli.common import DebianMirrorOpt, G, JsonOpt, debian_source, emit, guarded
from tkedistro.core.workspace import ReleaseLayout

cluster_app = typer.Typer(
    no_args_is_help=True,
    help="A local multi-node cluster of the built release: node containers on the local "
         "Docker engine, bootstrapped by the release's kubeadm.")


def register(app: typer.Typer) -> None:
    cluster_app.command("up")(guarded(cluster_up))
    cluster_app.command("down")(guarded(cluster_down))
    cluster_app.command("status")(guarded(cluster_status))
    cluster_app.command("prove")(guarded(cluster_prove))
    cluster_app.command("logs")(guarded(cluster_logs))
    app.add_typer(cluster_app, name="cluster")


RetainOpt = Annotated[bool, typer.Option(
    "--retain", help="Keep a cluster that failed, for `tkedistro cluster logs` and "
                     "inspection (TKEDISTRO_KEEP_CLUSTER=1 does the same); "
                     "`tkedistro cluster down` removes it.")]


def check_new_folder(value: Path | None) -> Path | None:
    """A folder to make: nothing may be there yet (not even a symlink)."""
    if value is not None and os.path.lexists(value):
        raise typer.BadParameter(f"{value} already exists; the logs go into a new folder")
    return value


def cluster_up(
    release: str,
    nodes: Annotated[int, typer.Option(
        "--nodes", min=2, max=5, help="Node containers: one control plane (schedulable) and "
                                      "N-1 workers.")] = 2,
    merge_kubeconfig: Annotated[bool, typer.Option(
        "--kubeconfig-merge/--no-kubeconfig-merge",
        help="Merge context tkedistro-RELEASE into the file kubectl writes ($KUBECONFIG's "
             "first existing file, else ~/.kube/config; under sudo the invoking user's, owned "
             "by them, 0600) and make it the current context; `cluster down` removes it.")
    ] = True,
    retain: RetainOpt = False,
    debian_mirror: DebianMirrorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start (or restart from scratch) the release's cluster; prints its kubeconfig path.
    When it fails, the nodes' logs are collected into _cluster/RELEASE/logs-<UTC time>/."""
    from tkedistro.cluster import clustercmd

    with debian_source(debian_mirror, (release,)):
        state = clustercmd.up(G.workspace(), release, nodes, G.engines(),
                              merge_kubeconfig=merge_kubeconfig, retain=retain)
    emit(state.to_json(), clustercmd.format_up(state), as_json)


def cluster_down(release: str, as_json: JsonOpt = False) -> None:
    """Remove the release's cluster: its containers, volumes, network and cgroups, and the
    context tkedistro-RELEASE `cluster up` merged into your kubeconfig."""
    from tkedistro.cluster import lifecycle

    removed = lifecycle.down(G.workspace(), release, G.engines().nodes)
    text = "\n".join(["removed:", *[f"  {r}" for r in removed]]) if removed else \
        "no cluster to remove"
    emit({"removed": removed}, text, as_json)


def cluster_status(release: str, as_json: JsonOpt = False) -> None:
    """Whether the cluster is up: its nodes, addresses and readiness, and its kubeconfig."""
    from tkedistro.cluster import clustercmd

    found = clustercmd.status(G.workspace(), release, G.engines().nodes)
    emit(found.to_json(), found.format_text(), as_json)


def cluster_prove(release: str, as_json: JsonOpt = False) -> None:
    """Check each patch of the series on the running cluster; exit 22 when one shows no
    effect."""
    from tkedistro.cluster import proofreport

    report = proofreport.prove(G.workspace(), release, G.engines().nodes)
    emit(report.to_json(), report.format_text(), as_json)
    report.check()


def cluster_logs(
    release: str,
    folder: Annotated[Path | None, typer.Argument(
        metavar="DIR", callback=check_new_folder,
        help=f"The folder to make (default: {ReleaseLayout('RELEASE').cluster}/logs-<UTC time>); "
             "the tarball is written beside it as DIR.tar.gz.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Collect every node's kubelet, containerd, registry, entrypoint and pod logs, kubectl
    dumps and events, and the engine's record of each node, into one folder and a tarball
    (Secrets and kubeconfigs are left out). Works on a failed or half-started cluster."""
    from tkedistro.cluster import clustercmd

    collected = clustercmd.export_logs(G.workspace(), release, G.engines().nodes, folder)
    emit(collected.to_json(), collected.format_text(), as_json)
