"""The entry point of the ``tkedistro`` script, and the full typer app (``app``).

Start-up time is most of what a quick command costs, so this module imports nothing heavy:
``main`` reads the command line once (``line.py``); ``--version`` and the plain ``source``
forms are answered from it without typer (``quick.py``); otherwise ``main`` builds the typer
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


def main() -> NoReturn:
    """Entry point for the ``tkedistro`` script."""
    from tkedistro.cli.line import read_line, typer_needed
    from tkedistro.cli.quick import answer

    line = read_line(sys.argv[1:])
    try:
        code = answer(line)
    except BrokenPipeError:  # stdout closed early (`| head`): as click does, exit 1
        # the flush at exit writes what is left to /dev/null, not to the closed pipe (the
        # Python docs' recipe, signal module); no file is opened for writing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    if code is not None:
        sys.exit(code)
    from tkedistro.cli.root import make_app
    from tkedistro.core import console
    from tkedistro.core.errors import Interrupted

    try:
        make_app(None if typer_needed() else line.known_command)()
    except KeyboardInterrupt:
        console.error("interrupted")
        sys.exit(Interrupted.exit_code)
    sys.exit(0)


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        from tkedistro.cli.root import make_app

        globals()["app"] = made = make_app()
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
