"""The command lines the script answers without typer, for start-up time.

typer costs more to load and run than an unchanged ``tkedistro source`` costs to check
(typer, click and, for coercing option values, pydantic). ``--version`` alone, and the plain
forms of ``source`` — the global options in their plain form (``line.py``), then ``source
RELEASE`` with ``--json`` and ``--force`` — and of ``list [--json]`` and ``show RELEASE
[--json]`` are answered here, from the one ``CommandLine``, through the same ``session``
functions as the typer commands (``cli/release.py``). Anything else (``--upstream``,
``TKEDISTRO_UPSTREAM``, ``--opt=value``, a repeated option, help, completion, a value that
looks like an option) is typer's: it parses it, and says what is wrong with it.

For ``source``, the ``git status`` of ``_src/<release>`` starts before anything else is
loaded (``StatusProbe``): on two cores git reads the tree while Python imports the code that
needs its answer, and an unchanged re-run costs about one ``git status`` plus Python's own
start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from tkedistro import __version__
from tkedistro.cli.line import CommandLine, typer_needed

if TYPE_CHECKING:
    from tkedistro.git.probe import StatusProbe

# command -> how many operands it takes, and its flags (option -> the name it sets)
_PLAIN = {
    "source": (1, {"--json": "as_json", "--force": "force"}),
    "list": (0, {"--json": "as_json"}),
    "show": (1, {"--json": "as_json"}),
}


class QuickLine(NamedTuple):
    command: str
    operands: tuple[str, ...]
    paths: dict[str, Path]
    flags: set[str]  # the global flags and the command's

    @property
    def release(self) -> str:
        return self.operands[0]


def quick_line(line: CommandLine) -> QuickLine | None:
    """``line`` as a plain form of ``source``, ``list`` or ``show``; None when typer must
    read it."""
    if not line.plain or line.command not in _PLAIN:
        return None
    count, known = _PLAIN[line.command]
    options = [word for word in line.rest if word.startswith("-")]
    operands = tuple(word for word in line.rest if not word.startswith("-"))
    if len(operands) != count or not all(operands) \
            or any(option not in known for option in options):
        return None
    return QuickLine(line.command, operands, dict(line.paths),
                     set(line.flags) | {known[o] for o in options})


def source_line(line: CommandLine) -> QuickLine | None:
    """``line`` as one of the plain ``source`` forms; None when typer must read it."""
    quick = quick_line(line)
    return quick if quick and quick.command == "source" else None


def run_quick(line: QuickLine) -> int:
    """The command as ``cli/release.py`` runs it, through the same session; the exit code."""
    if line.command == "source" and "verbose" not in line.flags:  # --verbose: each git
        probe = _early_status(line)  # command is shown as it runs, none starts early
        try:
            return _run(line, probe)
        finally:
            if probe is not None:
                probe.close()
    return _run(line, None)


def _early_status(line: QuickLine) -> StatusProbe | None:
    """The ``git status`` of ``_src/<release>``, started before the rest of the code loads,
    when the inputs look unchanged (only the unchanged re-run reads it); else None."""
    from tkedistro.core.errors import TkedistroError
    from tkedistro.core.workspace import Workspace
    from tkedistro.git.probe import StatusProbe
    from tkedistro.source.digest import inputs_unchanged

    try:
        paths = Workspace.discover(line.paths.get("root"), line.paths.get("cache_dir")) \
            .release(line.release)
    except TkedistroError:
        return None  # the command says what is wrong
    return StatusProbe.start(paths.src) if inputs_unchanged(paths) else None


def _run(line: QuickLine, probe: StatusProbe | None) -> int:
    from tkedistro.cli.session import outcome, start

    start(line.paths.get("root"), line.paths.get("cache_dir"),
          verbose="verbose" in line.flags, debug="debug" in line.flags)
    as_json = "as_json" in line.flags
    if line.command == "source":
        return outcome(_source, line.release, force="force" in line.flags, as_json=as_json,
                       probe=probe)
    if line.command == "show":
        return outcome(show_release, line.release, as_json=as_json)
    return outcome(list_releases, as_json=as_json)


def _source(release: str, force: bool, as_json: bool, probe: StatusProbe | None) -> None:
    from tkedistro.cli.session import G, emit
    from tkedistro.source import prepare as source_mod

    result = source_mod.prepare_source(G.settled(release), release, upstream=None, force=force,
                                       probe=probe)
    emit(result.to_json(), result.format_text(), as_json)


def list_releases(as_json: bool) -> None:
    """``tkedistro list``, here and through typer (``cli/release.py``)."""
    from tkedistro.cli.session import G, emit
    from tkedistro.model import releaselist

    data = releaselist.list_releases(G.workspace())
    emit(data, releaselist.format_list(data), as_json)


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
    quick = quick_line(line)
    return run_quick(quick) if quick else None
