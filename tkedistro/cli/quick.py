"""The command lines the script answers without typer, for start-up time.

typer costs more to load and run than an unchanged ``tkedistro source`` costs to check
(typer, click and, for coercing option values, pydantic). The plain forms of ``source`` —
global ``--root DIR``, ``--cache-dir DIR``, ``--verbose``/``-v``, ``--debug``, then
``source RELEASE`` with ``--json`` and ``--force`` — are read here and run through the same
``session`` functions as the typer command (``cli/release.py``'s ``source``). Anything else
(``--upstream``, ``TKEDISTRO_UPSTREAM``, ``--opt=value``, a repeated option, help,
completion, a value that looks like an option) returns None: typer parses it, and says
what is wrong with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tkedistro import __version__

_VALUED = {"--root": "root", "--cache-dir": "cache_dir"}
_GLOBAL_FLAGS = {"--verbose": "verbose", "-v": "verbose", "--debug": "debug"}
_SOURCE_FLAGS = {"--json": "as_json", "--force": "force"}


@dataclass
class SourceLine:
    release: str
    paths: dict[str, Path] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)


def read_source_line(args: list[str]) -> SourceLine | None:
    """``args`` as one of the plain ``source`` forms; None when typer must read them."""
    paths: dict[str, Path] = {}
    flags: set[str] = set()
    at = 0
    while at < len(args) and args[at] != "source":
        word = args[at]
        if word in _VALUED and at + 1 < len(args) and _plain(args[at + 1]) \
                and _VALUED[word] not in paths:
            paths[_VALUED[word]] = Path(args[at + 1])
            at += 2
        elif word in _GLOBAL_FLAGS:
            flags.add(_GLOBAL_FLAGS[word])
            at += 1
        else:
            return None
    rest = args[at + 1:]
    options = [word for word in rest if word.startswith("-")]
    operands = [word for word in rest if not word.startswith("-")]
    if at == len(args) or len(operands) != 1 or not operands[0] \
            or any(option not in _SOURCE_FLAGS for option in options):
        return None
    return SourceLine(operands[0], paths, flags | {_SOURCE_FLAGS[o] for o in options})


def _plain(value: str) -> bool:
    return bool(value) and not value.startswith("-")


def typer_needed() -> bool:
    """The environment changes what typer would read: an upstream, shell completion."""
    return "TKEDISTRO_UPSTREAM" in os.environ or any(
        key.startswith("_") and key.endswith("_COMPLETE") for key in os.environ)


def run_source(line: SourceLine) -> int:
    """``tkedistro source`` as ``cli/release.py`` runs it; the exit code."""
    from tkedistro.cli.session import outcome, start

    start(line.paths.get("root"), line.paths.get("cache_dir"),
          verbose="verbose" in line.flags, debug="debug" in line.flags)
    return outcome(_source, line.release, force="force" in line.flags,
                   as_json="as_json" in line.flags)


def _source(release: str, force: bool, as_json: bool) -> None:
    from tkedistro.cli.session import G, emit
    from tkedistro.source import prepare as source_mod

    result = source_mod.prepare_source(G.workspace(), release, upstream=None, force=force)
    emit(result.to_json(), result.format_text(), as_json)


def answer(args: list[str]) -> int | None:
    """The exit code of the command line when it is one answered here, else None."""
    if typer_needed():
        return None
    if args == ["--version"]:
        print(f"tkedistro {__version__}", flush=True)  # what root's --version option prints
        return 0
    line = read_source_line(args)
    return run_source(line) if line else None
