"""``tkedistro --help`` and ``tkedistro COMMAND --help`` without loading typer, when the
help that typer printed last time is still the one it would print.

typer, click and rich are most of what a help line costs. The help stays typer's: a help
line is run through the typer app as before, and what it printed is kept
(``core/startcache.py``) under a key of everything it was made from: the code's stamp (this
package's files, typer's, click's, rich's), the line, the program name, the terminal (which
standard streams are one, and their size; stdout's encoding) and the environment variables
that choose colours and width. The next run with the same key prints those characters. Any
change (an edited docstring, a command another module adds, a resized terminal, NO_COLOR)
is a miss, and typer prints (and keeps) the help again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from tkedistro.cli.line import COMMANDS, CommandLine, typer_needed

# environment variables (exact names, or prefixes ending in "_") that rich, typer or click
# read to pick colours, width, encoding or the terminal
_EXACT = ("TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "PY_COLORS", "CLICOLOR",
          "CLICOLOR_FORCE", "COLUMNS", "LINES", "TERMINAL_WIDTH", "GITHUB_ACTIONS", "LANG")
_PREFIXES = ("TTY_", "_TYPER_", "TYPER_", "JUPYTER_", "PYTHON", "LC_", "TKEDISTRO_")


class KeptHelp(NamedTuple):
    """A help line: the name its help is kept as (in the cache folder ``cache``), the key,
    and the text kept under that key (None when there is none)."""

    name: str
    cache: Path
    key: list[Any]
    text: str | None

    def show(self) -> int | None:
        """Print the kept help: 0; None when there is none for this key."""
        if self.text is None:
            return None
        sys.stdout.write(self.text)
        sys.stdout.flush()
        return 0


def help_name(line: CommandLine) -> str | None:
    """``help`` for ``--help``, ``help-COMMAND`` for ``COMMAND --help``; else None."""
    if line.args == ("--help",):
        return "help"
    if len(line.args) == 2 and line.args[1] == "--help" and line.args[0] in COMMANDS:
        return f"help-{line.args[0]}"
    return None


def kept_help(line: CommandLine) -> KeptHelp | None:
    """The help line ``line`` is, with the help kept for it; None for any other line."""
    name = help_name(line)
    if name is None or typer_needed():
        return None
    from tkedistro.core import startcache
    from tkedistro.core.workspace import default_cache_dir

    try:
        cache = default_cache_dir()
    except (OSError, RuntimeError):  # no home folder: typer prints the help, nothing is kept
        return None
    key = [startcache.code_stamp(), list(line.args), *_surroundings()]
    text = startcache.recall(cache, name, key)
    return KeptHelp(name, cache, key, text if isinstance(text, str) else None)


def _surroundings() -> list[Any]:
    """What, besides the code and the line, the printed help depends on."""
    main = sys.modules.get("__main__")
    env = sorted((name, value) for name, value in os.environ.items()
                 if name in _EXACT or name.startswith(_PREFIXES))
    return [sys.argv[0], getattr(main, "__package__", None), _terminal(),
            getattr(sys.stdout, "encoding", None), env]


def _terminal() -> list[Any]:
    found = []
    for fd in (0, 1, 2):
        try:
            size = list(os.get_terminal_size(fd))
        except (OSError, ValueError):
            size = None
        found.append([os.isatty(fd), size])
    return found


class _Copying:
    """``sys.stdout`` while typer prints a help: written through, and copied."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.copy: list[str] = []

    def write(self, text: str) -> int:
        written: int = self.stream.write(text)
        self.copy.append(text)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextmanager
def recording(kept: KeptHelp | None) -> Iterator[None]:
    """Run typer; for a help line, keep what it printed once it exits with 0."""
    if kept is None:
        yield
        return
    stream = sys.stdout
    copying = _Copying(stream)
    sys.stdout = copying
    try:
        yield
    except SystemExit as exit:
        if exit.code in (0, None) and copying.copy:
            from tkedistro.core import startcache

            startcache.remember(kept.cache, kept.name, kept.key, "".join(copying.copy))
        raise
    finally:
        sys.stdout = stream
