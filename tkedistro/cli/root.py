"""The typer app: global options and the command groups, with all commands or only one's.

Command modules (``release``, ``build``, ``conformance``, ``series``, ``ci``) each register
their commands; no business logic lives in ``cli/`` and nothing else calls ``sys.exit``.
Turning a command into a click command (signature, annotations) costs start-up time, so the
entry point (``tkedistro.cli.app.main``) builds only the module of the command it was given;
with no known command (``--help``, a typo) it builds them all, as ``tkedistro.cli.app.app`` is.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from tkedistro import __version__
from tkedistro.cli.line import COMMANDS, MODULES
from tkedistro.cli.session import start
from tkedistro.core import console


def _version_callback(value: bool) -> None:
    if value:
        console.out(f"tkedistro {__version__}")
        raise typer.Exit()


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
    start(root, cache_dir, verbose=verbose, debug=debug)


def make_app(command: str | None = None) -> typer.Typer:
    """The app with every command, or only with those of ``command``'s module (a name of
    ``COMMANDS``): what that command parses, prints and does is the same either way."""
    app = typer.Typer(
        name="tkedistro",
        help="Build a Kubernetes distribution: pinned upstream, patch series, container builds.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=True,
    )
    app.callback()(_main)
    for name in [COMMANDS[command]] if command else MODULES:
        importlib.import_module(f"tkedistro.cli.{name}").register(app)
    return app
