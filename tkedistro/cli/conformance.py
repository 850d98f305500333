"""``tkedistro conformance``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tkedistro.cli.common import G, JsonOpt, UpstreamOpt, check_minutes, emit, guarded


def register(app: typer.Typer) -> None:
    app.command("conformance")(guarded(conformance))


def conformance(
    release: str,
    kubeconfig: Annotated[
        Path | None, typer.Option("--kubeconfig", help="Run on this existing cluster.")
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Start a single-node cluster from _output (default).")
    ] = False,
    focus: Annotated[
        str | None, typer.Option("--focus", help="Spec regex (default: every Conformance spec).")
    ] = None,
    skip: Annotated[str, typer.Option("--skip", help="Regex of specs to skip.")] = "",
    quick: Annotated[bool, typer.Option("--quick", help="A small subset, for CI.")] = False,
    timeout: Annotated[float, typer.Option(
        "--timeout", callback=check_minutes, help="Overall limit in minutes.")] = 90.0,
    nodes: Annotated[
        int,
        typer.Option("--nodes", min=1,
                     help="Parallel ginkgo nodes for specs not tagged [Serial] (those run "
                          "after, one by one); 1 runs everything serially."),
    ] = 4,
    build_missing: Annotated[
        bool,
        typer.Option("--build/--no-build",
                     help="Build missing binaries and e2e.test/ginkgo first "
                          "(tkedistro build RELEASE --with-conformance-tools)."),
    ] = True,
    upstream: UpstreamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run Kubernetes conformance on the built binaries (local cluster or --kubeconfig)."""
    from tkedistro.conformance import pipeline as conf

    if local and kubeconfig:
        raise typer.BadParameter("--local and --kubeconfig exclude each other")
    options = conf.ConformanceOptions(
        kubeconfig=kubeconfig, focus=focus, skip=skip, quick=quick, timeout_min=timeout,
        nodes=nodes, build=build_missing, upstream=upstream,
    )
    result = conf.run_conformance(G.workspace(), release, options)
    emit(result.to_json(), result.format_text(), as_json)


