"""The typer app: parse arguments, call one function per command, map errors to exit codes.

No business logic lives here and nothing else calls ``sys.exit``.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from tkedistro import __version__, console
from tkedistro.errors import Interrupted, TkedistroError
from tkedistro.workspace import Workspace

app = typer.Typer(
    name="tkedistro",
    help="Build a Kubernetes distribution: pinned upstream, patch series, container builds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


@dataclass
class Globals:
    root: Path | None = None
    cache_dir: Path | None = None
    debug: bool = False

    def workspace(self) -> Workspace:
        return Workspace.discover(self.root, self.cache_dir)


G = Globals()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _version_callback(value: bool) -> None:
    if value:
        console.out(f"tkedistro {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    root: Annotated[
        Path | None,
        typer.Option("--root", help="The distro repo (default: nearest folder up with releases/)."),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Cache folder (default: $TKEDISTRO_CACHE or XDG cache)."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show external commands.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = None,
) -> None:
    G.root, G.cache_dir, G.debug = root, cache_dir, debug
    console.configure(verbose=verbose)


def guarded(fn: Callable[..., None]) -> Callable[..., None]:
    """Turn expected errors into one clean message and their documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except KeyboardInterrupt:
            console.error("interrupted")
            raise typer.Exit(Interrupted.exit_code) from None
        except TkedistroError as exc:
            if G.debug:
                traceback.print_exc()
            console.error(exc.render())
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def emit(data: Any, text: str, as_json: bool) -> None:
    """Print ``data`` as JSON or ``text`` for a person."""
    console.out(json.dumps(data, indent=2, sort_keys=False) if as_json else text)


@app.command("list")
@guarded
def list_cmd(as_json: JsonOpt = False) -> None:
    """List the releases of this distro repo."""
    from tkedistro import report

    data = report.list_releases(G.workspace())
    emit(data, report.format_list(data), as_json)


@app.command()
@guarded
def show(release: str, as_json: JsonOpt = False) -> None:
    """Show one release: its pin, components, platforms and patch series."""
    from tkedistro import report

    data = report.show_release(G.workspace(), release)
    emit(data, report.format_show(data), as_json)


@app.command()
@guarded
def validate(
    releases: Annotated[list[str] | None, typer.Argument(help="Releases (default: all).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check manifests and patch files without network."""
    from tkedistro import validation

    result = validation.validate_releases(G.workspace(), releases or [])
    emit(result.to_json(), result.format_text(), as_json)
    result.raise_for_problems()


@app.command()
@guarded
def source(
    release: str,
    upstream: Annotated[
        str | None,
        typer.Option("--upstream", envvar="TKEDISTRO_UPSTREAM", help="Fetch from this mirror URL."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Save work in _src to a backup ref, then re-prepare.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fetch and verify the pinned upstream and apply the patch series into _src/RELEASE."""
    from tkedistro import source as source_mod

    result = source_mod.prepare_source(G.workspace(), release, upstream=upstream, force=force)
    emit(result.to_json(), result.format_text(), as_json)


@app.command()
@guarded
def build(
    release: str,
    component: Annotated[
        list[str] | None, typer.Option("--component", "-c", help="Build only these components.")
    ] = None,
    platform: Annotated[
        list[str] | None, typer.Option("--platform", "-p", help="os/arch, e.g. linux/arm64.")
    ] = None,
    builder_image: Annotated[
        str | None, typer.Option("--builder-image", help="Override the manifest's builder image.")
    ] = None,
    upstream: Annotated[
        str | None,
        typer.Option("--upstream", envvar="TKEDISTRO_UPSTREAM", help="Fetch from this mirror URL."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when up to date.")] = False,
    cpus: Annotated[float | None, typer.Option("--cpus", help="CPU limit for the build.")] = None,
    memory: Annotated[
        str | None, typer.Option("--memory", help="Memory limit for the build, e.g. 8g.")
    ] = None,
    verify_reproducible: Annotated[
        bool,
        typer.Option("--verify-reproducible", help="Build twice and compare SHA256SUMS."),
    ] = False,
    with_conformance_tools: Annotated[
        bool,
        typer.Option("--with-conformance-tools",
                     help="Also build e2e.test and ginkgo (for tkedistro conformance)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build the release's components in the builder container into _output/RELEASE."""
    from tkedistro.build import pipeline

    options = pipeline.BuildOptions(
        components=tuple(component or ()),
        platforms=tuple(platform or ()),
        builder_image=builder_image,
        upstream=upstream,
        force=force,
        cpus=cpus,
        memory=memory,
        verify_reproducible=verify_reproducible,
        conformance_tools=with_conformance_tools,
    )
    result = pipeline.build_release(G.workspace(), release, options)
    emit(result.to_json(), result.format_text(), as_json)


@app.command()
@guarded
def doctor(as_json: JsonOpt = False) -> None:
    """Check git, the Docker engine, builder images, disk and cache; say how to fix each."""
    from tkedistro import doctor as doctor_mod

    report = doctor_mod.run_doctor(G.workspace())
    emit(report.to_json(), report.format_text(), as_json)
    report.raise_for_problems()


@app.command()
@guarded
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
    timeout: Annotated[float, typer.Option("--timeout", help="Overall limit in minutes.")] = 90.0,
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
    upstream: Annotated[
        str | None,
        typer.Option("--upstream", envvar="TKEDISTRO_UPSTREAM",
                     help="For that build: fetch from this mirror URL."),
    ] = None,
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


ci_app = typer.Typer(help="GitHub Actions workflows rendered from packaged templates.")
app.add_typer(ci_app, name="ci")


@ci_app.command("render")
@guarded
def ci_render() -> None:
    """Write .github/workflows/*.yml from the templates and the release manifests."""
    from tkedistro import ci

    ws = G.workspace()
    written = ci.write_workflows(ws)
    console.out("\n".join(f"wrote {ws.rel(p)}" for p in written) or "workflows up to date")


@ci_app.command("check")
@guarded
def ci_check() -> None:
    """Fail (exit 3) when a checked-in workflow differs from its render."""
    from tkedistro import ci

    ci.check_workflows(G.workspace())
    console.out("workflows match their templates")


def _register_maintainer_commands() -> None:
    from tkedistro import cli_maintainer

    cli_maintainer.register(app)


_register_maintainer_commands()


def main() -> NoReturn:
    """Entry point for the ``tkedistro`` script."""
    try:
        app()
    except KeyboardInterrupt:
        console.error("interrupted")
        sys.exit(Interrupted.exit_code)
    sys.exit(0)
