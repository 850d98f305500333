"""The typer app: global options, the command groups, and the entry point.

Command modules (``release``, ``build``, ``conformance``, ``series``, ``ci``) each register
their commands; no business logic lives in ``cli/`` and nothing else calls ``sys.exit``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from tkedistro import __version__
from tkedistro.cli import build, ci, conformance, release, series
from tkedistro.cli.common import G
from tkedistro.core import console, runner
from tkedistro.core.errors import Interrupted

app = typer.Typer(
    name="tkedistro",
    help="Build a Kubernetes distribution: pinned upstream, patch series, container builds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


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
    runner.clean_process_env()  # once, so GitPython and subprocess see the same environment
    G.root, G.cache_dir, G.debug = root, cache_dir, debug
    console.configure(verbose=verbose)


for _module in (release, build, conformance, ci, series):
    _module.register(app)


def main() -> NoReturn:
    """Entry point for the ``tkedistro`` script."""
    try:
        app()
    except KeyboardInterrupt:
        console.error("interrupted")
        sys.exit(Interrupted.exit_code)
    sys.exit(0)
