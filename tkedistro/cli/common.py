"""What every command module shares: global options, error -> exit code mapping, output.

The one place that turns a ``TkedistroError`` into a message and its exit code.
"""

from __future__ import annotations

import functools
import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from tkedistro.core import console
from tkedistro.core.errors import Interrupted, TkedistroError
from tkedistro.core.workspace import Workspace


@dataclass
class Globals:
    root: Path | None = None
    cache_dir: Path | None = None
    debug: bool = False

    def workspace(self) -> Workspace:
        return Workspace.discover(self.root, self.cache_dir)


G = Globals()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
UpstreamOpt = Annotated[
    str | None,
    typer.Option("--upstream", envvar="TKEDISTRO_UPSTREAM", help="Fetch from this mirror URL."),
]


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


