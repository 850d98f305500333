"""What a command run shares, without typer: the global options, the result on stdout, and
the one place that turns a ``TkedistroError`` into its message and exit code.

``common.py`` wraps these for typer (``guarded``); ``quick.py`` uses them directly for the
command lines it answers without typer, so both print and exit alike.
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tkedistro.core import console, runner
from tkedistro.core.errors import Interrupted, TkedistroError
from tkedistro.core.workspace import Workspace
from tkedistro.model.url import redact_urls

if TYPE_CHECKING:
    from tkedistro.engine.engines import Engines


@dataclass
class Globals:
    root: Path | None = None
    cache_dir: Path | None = None
    debug: bool = False
    emitted: bool = False  # a command printed its result (JSON or text) on stdout
    made: Engines | None = None

    def workspace(self) -> Workspace:
        return Workspace.discover(self.root, self.cache_dir)

    def engines(self) -> Engines:
        """The run's engines, made here once, on the first command that needs one (the one
        place that picks the adapters; features are given them)."""
        if self.made is None:
            from tkedistro.engine.engines import docker_engines

            self.made = docker_engines()
        return self.made

    def settled(self, release: str) -> Workspace:
        """The workspace, once a series change of ``release`` that a killed ``patches
        export/reorder/import`` committed is finished: every command that reads a series
        takes it from here (one stat when there is none)."""
        ws = self.workspace()
        paths = ws.release(release)
        if os.path.lexists(paths.series_journal) or os.path.lexists(paths.series_stage):
            from tkedistro.series.transaction import settle

            settle(ws, release)
        return ws


G = Globals()


def start(root: Path | None, cache_dir: Path | None, *, verbose: bool, debug: bool) -> None:
    """The global options, once per run, before the command."""
    runner.clean_process_env()  # once, so GitPython and subprocess see the same environment
    G.root, G.cache_dir, G.debug = root, cache_dir, debug
    G.made = None
    console.configure(verbose=verbose)


def outcome(fn: Callable[..., None], *args: Any, **kwargs: Any) -> int:
    """Run a command: 0, or the documented exit code of the expected error it raised (whose
    message is printed, with the JSON error document under ``--json``)."""
    G.emitted = False
    try:
        fn(*args, **kwargs)
    except KeyboardInterrupt:
        console.error("interrupted")
        return Interrupted.exit_code
    except TkedistroError as exc:
        if G.debug:
            traceback.print_exc()
        console.error(redact_urls(exc.render()))
        if kwargs.get("as_json") and not G.emitted:
            _emit_error(exc)
        return exc.exit_code
    return 0


def _emit_error(exc: TkedistroError) -> None:
    """With ``--json``, a failed command still prints one JSON document on stdout."""
    error = {"exit_code": exc.exit_code, "type": type(exc).__name__, "message": exc.message,
             "hint": exc.hint}
    console.out(redact_urls(json.dumps({"ok": False, "error": error}, indent=2)))


def emit(data: Any, text: str, as_json: bool) -> None:
    """Print ``data`` as JSON or ``text`` for a person; never a URL's password or token (the
    features leave them out; this is the last guard)."""
    G.emitted = True
    console.out(redact_urls(json.dumps(data, indent=2, sort_keys=False) if as_json else text))
