"""The command lines the script answers without typer, for start-up time.

typer costs more to load and run than an unchanged ``tkedistro source`` costs to check
(typer, click and, for coercing option values, pydantic). ``--version`` alone, and the plain
forms of ``source`` — the global options in their plain form (``line.py``), then ``source
RELEASE`` with ``--json`` and ``--force`` — and of ``list [--json]`` and ``show RELEASE
[--json]`` are answered here, from the one ``CommandLine``, through the same ``session``
functions as the typer commands (``cli/release.py``). Anything else (``--upstream``,
``TKEDISTRO_UPSTREAM``, ``--opt=value``, a repeated option, help, completion, a value that
looks like an option) is typer's: it parses it, and says what is wrong with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from tkedistro import __version__
from tkedistro.cli.line import CommandLine, typer_needed

_SOURCE_FLAGS = {"--json": "as_json", "--force": "force"}


class SourceLine(NamedTuple):
    release: str
    paths: dict[str, Path]
    flags: set[str]


def source_line(line: CommandLine) -> SourceLine | None:
    """``line`` as one of the plain ``source`` forms; None when typer must read it."""
    if not line.plain or line.command != "source":
        return None
    options = [word for word in line.rest if word.startswith("-")]
    operands = [word for word in line.rest if not word.startswith("-")]
    if len(operands) != 1 or not operands[0] \
            or any(option not in _SOURCE_FLAGS for option in options):
        return None
    return SourceLine(operands[0], dict(line.paths),
                      set(line.flags) | {_SOURCE_FLAGS[o] for o in options})


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


# command -> (operands it takes, the flags it may have)
_REPORTS = {"list": (0, {"--json": "as_json"}), "show": (1, {"--json": "as_json"})}


def report_line(line: CommandLine) -> tuple[str, tuple[str, ...], bool] | None:
    """``line`` as a plain ``list`` or ``show``: (command, operands, as_json); else None."""
    if not line.plain or line.command not in _REPORTS:
        return None
    count, known = _REPORTS[line.command]
    options = [word for word in line.rest if word.startswith("-")]
    operands = tuple(word for word in line.rest if not word.startswith("-"))
    if len(operands) != count or not all(operands) \
            or any(option not in known for option in options):
        return None
    return line.command, operands, "--json" in options


def run_report(line: CommandLine, command: str, operands: tuple[str, ...],
               as_json: bool) -> int:
    """``tkedistro list`` / ``show`` as ``cli/release.py`` runs them; the exit code."""
    from tkedistro.cli.session import outcome, start

    start(line.paths.get("root"), line.paths.get("cache_dir"),
          verbose="verbose" in line.flags, debug="debug" in line.flags)
    if command == "list":
        return outcome(list_releases, as_json=as_json)
    return outcome(show_release, operands[0], as_json=as_json)


def list_releases(as_json: bool) -> None:
    """``tkedistro list``, here and through typer (``cli/release.py``)."""
    from tkedistro.cli.session import G, emit
    from tkedistro.model import report

    data = report.list_releases(G.workspace())
    emit(data, report.format_list(data), as_json)


def show_release(release: str, as_json: bool) -> None:
    """``tkedistro show RELEASE``, here and through typer (``cli/release.py``)."""
    from tkedistro.cli.session import G, emit
    from tkedistro.model import report

    data = report.show_release(G.workspace(), release)
    emit(data, report.format_show(data), as_json)


def answer(line: CommandLine) -> int | None:
    """The exit code of the command line when it is one answered here, else None."""
    if typer_needed():
        return None
    if line.args == ("--version",):
        print(f"tkedistro {__version__}", flush=True)  # what root's --version option prints
        return 0
    source = source_line(line)
    if source:
        return run_source(source)
    report = report_line(line)
    return run_report(line, *report) if report else None
