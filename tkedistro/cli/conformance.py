"""``tkedistro conformance [run] RELEASE`` and ``tkedistro conformance images RELEASE``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from tkedistro.cli.common import (
    MAX_GINKGO_NODES,
    DebianMirrorOpt,
    G,
    JsonOpt,
    UpstreamOpt,
    check_file,
    check_minutes,
    check_regex,
    check_registry,
    debian_source,
    emit,
    guarded,
)


class RunByDefault(TyperGroup):
    """``tkedistro conformance 1.20`` means ``tkedistro conformance run 1.20``.

    (``ctx`` is click's Context, which newer typer versions vendor: typed loosely for both.)"""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: Any) -> list[str]:
        return ["run", "images"]


conformance_app = typer.Typer(
    cls=RunByDefault, no_args_is_help=True,
    help="Run Kubernetes conformance (run, the default) or make its images (images).")


def register(app: typer.Typer) -> None:
    conformance_app.command("run")(guarded(conformance))
    conformance_app.command("images")(guarded(conformance_images))
    app.add_typer(conformance_app, name="conformance")


def conformance_images(
    release: str,
    push: Annotated[str | None, typer.Option(
        "--push", callback=check_registry, metavar="REGISTRY",
        help="Push to this registry (host:port, optionally with a path) instead of a "
             "local one.")] = None,
    serve: Annotated[bool, typer.Option(
        "--serve", help="Keep the local registry running after the push, until Ctrl-C.")] = False,
    debian_mirror: DebianMirrorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build (or reuse) every image the conformance specs pull, from the release's tree and
    Debian packages; push them and write the KUBE_TEST_REPO_LIST file for --repo-list."""
    if push and serve:
        raise typer.BadParameter("--serve keeps the local registry up; it excludes --push")
    from tkedistro.conformance import imagecmd

    ws = G.settled(release)
    with debian_source(debian_mirror, (release,)):
        result = imagecmd.conformance_images(ws, release, G.engines(), push=push, serve=serve,
                                             on_ready=lambda r: emit(r.to_json(),
                                                                     r.format_text(), as_json))
    if not G.emitted:
        emit(result.to_json(), result.format_text(), as_json)


def conformance(
    release: str,
    kubeconfig: Annotated[
        Path | None, typer.Option("--kubeconfig", callback=check_file,
                                  help="Run on this existing cluster (default: the first "
                                       "file of $KUBECONFIG when it is set).")
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Run on the release's local cluster (the default "
                                          "when $KUBECONFIG is not set): the one `tkedistro "
                                          "cluster up` started, else one made for the run.")
    ] = False,
    cluster_nodes: Annotated[int, typer.Option(
        "--cluster-nodes", min=2, max=5,
        help="Node containers of a cluster made for the run.")] = 2,
    keep_cluster: Annotated[bool, typer.Option(
        "--keep-cluster", help="Leave a cluster made for the run up afterwards.")] = False,
    retain: Annotated[bool, typer.Option(
        "--retain", help="Keep the local cluster when the run fails, for `tkedistro cluster "
                         "logs` and inspection (TKEDISTRO_KEEP_CLUSTER=1 does the same); "
                         "`tkedistro cluster down` removes it. Its logs are collected into "
                         "the results folder's cluster-logs/ either way.")] = False,
    debian_mirror: DebianMirrorOpt = None,
    focus: Annotated[
        str | None, typer.Option("--focus", callback=check_regex,
                                 help="Spec regex (default: every Conformance spec).")
    ] = None,
    skip: Annotated[str, typer.Option("--skip", callback=check_regex,
                                      help="Regex of specs to skip.")] = "",
    quick: Annotated[bool, typer.Option(
        "--quick", help="A small subset, for CI: 7 specs (CRDs, and two pulling agnhost and "
                        "httpd).")] = False,
    smoke: Annotated[bool, typer.Option(
        "--smoke", help="--quick's specs plus one cluster DNS spec and one [Serial] spec "
                        "that needs two nodes (the real_k8s tier's subset).")] = False,
    timeout: Annotated[float, typer.Option(
        "--timeout", callback=check_minutes, help="Overall limit in minutes.")] = 90.0,
    nodes: Annotated[
        int,
        typer.Option("--nodes", min=1, max=MAX_GINKGO_NODES,
                     help="Parallel ginkgo nodes for specs not tagged [Serial] (those run "
                          "after, one by one); 1 runs everything serially."),
    ] = 4,
    build_missing: Annotated[
        bool,
        typer.Option("--build/--no-build",
                     help="Build missing binaries and e2e.test/ginkgo first "
                          "(tkedistro build RELEASE --with-conformance-tools)."),
    ] = True,
    repo_list: Annotated[Path | None, typer.Option(
        "--repo-list", callback=check_file,
        help="KUBE_TEST_REPO_LIST file for --kubeconfig runs (from `conformance images`).")
    ] = None,
    upstream: UpstreamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run Kubernetes conformance on the built binaries (local cluster or --kubeconfig).

    Results go to _results/RELEASE/conformance/<UTC time>-<distro version>/ (latest: the last
    run), where a rebuild of _output/RELEASE leaves them."""
    if local and kubeconfig:
        raise typer.BadParameter("--local and --kubeconfig exclude each other")
    from_env = kubeconfig is None and not local and bool(os.environ.get("KUBECONFIG"))
    if from_env:
        kubeconfig = _env_kubeconfig(os.environ["KUBECONFIG"])
    if sum((focus is not None, quick, smoke)) > 1:
        raise typer.BadParameter("--focus, --quick and --smoke each choose the specs; give one")
    if retain and kubeconfig:
        where = "$KUBECONFIG is set, so" if from_env else "with --kubeconfig"
        raise typer.BadParameter(f"--retain keeps the local cluster, and {where} the run tests "
                                 "an existing cluster, which is never removed; add --local to "
                                 "test (and keep) the release's local cluster")
    if repo_list and not kubeconfig:
        raise typer.BadParameter("--repo-list is for --kubeconfig runs; the local cluster "
                                 "makes its own")
    from tkedistro.conformance import pipeline as conf

    options = conf.ConformanceOptions(
        kubeconfig=kubeconfig, kubeconfig_from="$KUBECONFIG" if from_env else "--kubeconfig",
        focus=focus, skip=skip, quick=quick, smoke=smoke,
        timeout_min=timeout, nodes=nodes, build=build_missing, upstream=upstream,
        repo_list=repo_list, cluster_nodes=cluster_nodes, keep_cluster=keep_cluster,
        retain=retain,
    )

    ws = G.settled(release)
    with debian_source(debian_mirror, (release,)):
        result = conf.run_conformance(ws, release, options, G.engines())
    emit(result.to_json(), result.format_text(), as_json)




def _env_kubeconfig(value: str) -> Path:
    """The first file of ``$KUBECONFIG`` (e2e.test reads one file), as sonobuoy and
    hydrophone take it."""
    for path in (Path(p) for p in value.split(os.pathsep) if p):
        if path.is_file():
            return check_file(path) or path
    raise typer.BadParameter(
        f"KUBECONFIG={value!r} names no file; pass --local for the release's local cluster, "
        "--kubeconfig PATH for another, or unset KUBECONFIG", param_hint="KUBECONFIG")
