"""The command line, read once: the global options, then the command and what follows it.

``read_line`` is what the entry point (``app.main``) reads before anything heavy is
imported; from the one ``CommandLine`` it gets whether the line is answered without typer
(``--version``, the plain ``source`` forms: ``quick.py``) and which command module the typer
app needs (``root.make_app``). The tables here are the typer app's: its global options
(``root._main``) and which ``tkedistro.cli`` module registers each command; a test holds
them equal. Everything after the command is typer's to parse, except the plain ``source``
forms, which ``quick.py`` reads from ``rest``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

# the global options (``root._main``): those taking a value, by the name they set, and flags
VALUED = {"--root": "root", "--cache-dir": "cache_dir"}
FLAGS = {"--verbose": "verbose", "-v": "verbose", "--debug": "debug"}

# command (or group) name -> the ``tkedistro.cli`` module that registers it; module order is
# the order of ``--help``
COMMANDS = {
    "list": "release", "show": "release", "validate": "release", "source": "release",
    "build": "build", "doctor": "build", "images": "build", "builder-image": "build",
    "host-setup": "build",
    "conformance": "conformance", "cluster": "cluster", "guest": "guest",
    "ci": "ci", "verify": "verify", "keys": "keys",
    "rebase": "series", "forecast": "series", "new": "series", "drop": "series",
    "patches": "series", "bisect": "bisect",
}
MODULES = ("release", "build", "conformance", "cluster", "guest", "ci", "verify", "keys", "series",
           "bisect")


class CommandLine(NamedTuple):
    """``args`` read up to the command: the global options, the command word, the rest.

    ``plain``: every global option in its simple form (``--root DIR`` with a DIR that does
    not look like an option, each valued option once); any other form is typer's to read.
    (A NamedTuple, not a dataclass: ``--version`` must not pay for importing dataclasses.)
    """

    args: tuple[str, ...]
    command: str | None  # the first word after the global options
    rest: tuple[str, ...]
    paths: Mapping[str, Path]
    flags: frozenset[str]
    plain: bool

    @property
    def known_command(self) -> str | None:
        """The command when it is one the app knows; None for anything else (help, an
        unknown option or command: the full app answers those)."""
        return self.command if self.command in COMMANDS else None


def read_line(args: list[str]) -> CommandLine:
    """``args`` (without the program name) read once, up to the command."""
    paths: dict[str, Path] = {}
    flags: set[str] = set()
    plain = True
    at = 0
    while at < len(args):
        word = args[at]
        if word in VALUED:
            value = args[at + 1] if at + 1 < len(args) else None
            plain = plain and bool(value) and not str(value).startswith("-") \
                and VALUED[word] not in paths
            if value is not None:
                paths.setdefault(VALUED[word], Path(value))
            at += 2
        elif word in FLAGS:
            flags.add(FLAGS[word])
            at += 1
        elif word.startswith(tuple(f"{option}=" for option in VALUED)):
            plain = False
            at += 1
        else:
            return CommandLine(tuple(args), word, tuple(args[at + 1:]), paths,
                               frozenset(flags), plain)
    return CommandLine(tuple(args), None, (), paths, frozenset(flags), False)


def typer_needed() -> bool:
    """The environment changes what typer would read: an upstream, shell completion."""
    return "TKEDISTRO_UPSTREAM" in os.environ or any(
        key.startswith("_") and key.endswith("_COMPLETE") for key in os.environ)
