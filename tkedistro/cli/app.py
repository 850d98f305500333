"""The entry point of the ``tkedistro`` script, and the full typer app (``app``).

Start-up time is most of what a quick command costs, so this module imports nothing heavy:
``main`` reads the command line once (``line.py``); ``--version`` and the plain ``source``,
``list`` and ``show`` forms are answered from it without typer (``quick.py``), and a help
line with the help typer printed for it last time, when nothing it depends on changed
(``fasthelp.py``); otherwise ``main`` builds the typer
app (``root.py``) with only the module of the command given (all of them when none is known,
e.g. for ``--help``). ``app``, the app with every command (for tests and
``typer.testing.CliRunner``), is made on first access.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import typer

    from tkedistro.cli.fasthelp import KeptHelp
    from tkedistro.cli.line import CommandLine


def main() -> NoReturn:
    """Entry point for the ``tkedistro`` script."""
    from tkedistro.cli.line import read_line, typer_needed
    from tkedistro.cli.quick import answer

    line = read_line(sys.argv[1:])
    kept = _kept_help(line)
    try:
        code = answer(line) if kept is None else kept.show()
    except BrokenPipeError:  # stdout closed early (`| head`): as click does, exit 1
        # the flush at exit writes what is left to /dev/null, not to the closed pipe (the
        # Python docs' recipe, signal module); no file is opened for writing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    if code is not None:
        sys.exit(code)
    from tkedistro.cli.fasthelp import recording
    from tkedistro.cli.root import make_app
    from tkedistro.core import console
    from tkedistro.core.errors import Interrupted

    try:
        with recording(kept):
            make_app(None if typer_needed() else line.known_command)()
    except KeyboardInterrupt:
        console.error("interrupted")
        sys.exit(Interrupted.exit_code)
    sys.exit(0)


def _kept_help(line: CommandLine) -> KeptHelp | None:
    """For a help line, the help kept from the last run (``fasthelp.py``); else None."""
    if "--help" not in line.args:
        return None
    from tkedistro.cli.fasthelp import kept_help

    return kept_help(line)


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        from tkedistro.cli.root import make_app

        globals()["app"] = made = make_app()
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
