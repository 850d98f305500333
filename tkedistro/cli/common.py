"""What every command module shares: option types and checks, and ``guarded``, which gives
typer the exit code of an expected error (``session.outcome`` prints its message).

``G`` (the global options) and ``emit`` live in ``session.py``, which needs no typer.
"""

from __future__ import annotations

import functools
import math
import os
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tkedistro.cli.session import G, emit, outcome
from tkedistro.core.workspace import shorten
from tkedistro.model.refs import COMMIT_PATTERN, image_problem, tag_problem
from tkedistro.model.url import debian_mirror_problem, url_problem

if TYPE_CHECKING:
    from tkedistro.debian.source import DebianSource
    from tkedistro.model.manifest import Manifest

__all__ = ["G", "emit", "guarded"]  # G and emit are session's, here for the command modules

COMMIT = re.compile(COMMIT_PATTERN)
# docker-py's units; ASCII only (no other digits, no Kelvin sign for k)
MEMORY = re.compile(r"([0-9]+(?:\.[0-9]+)?)([kmg]?b|[kmg])?", re.IGNORECASE | re.ASCII)
UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}

# The ranges of the numeric options (each message names its option, value and range):
MAX_MINUTES = 7 * 24 * 60  # a week; a timer of 1e300 s overflows and the run has no limit
MAX_CPUS = 1024.0
MIN_MEMORY, MAX_MEMORY = 6 * 2**20, 64 * 2**40  # docker's smallest limit (6m); 64 TiB
MAX_GINKGO_NODES = 64  # parallel ginkgo nodes of a conformance run
MAX_REGEX_CHARS = 4096
# what Python compiles but ginkgo's Go regular expressions (RE2) do not have: lookaround
# and backreferences
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\(\?P=|\\[1-9]")


def check_upstream(value: str | None) -> str | None:
    """``--upstream``/``TKEDISTRO_UPSTREAM``: the manifest's URL allow-list (exit 2)."""
    if value is not None and (problem := url_problem(value, local_paths=True)):
        raise typer.BadParameter(problem)  # click names --upstream and TKEDISTRO_UPSTREAM
    return value


def check_tag(value: str | None) -> str | None:
    """An upstream tag given on the command line: ``v1.20.2``-shaped, never an option."""
    if value is not None and (problem := tag_problem(value)):
        raise typer.BadParameter(problem)
    return value


def check_tags(values: list[str] | None) -> list[str]:
    for value in values or []:
        check_tag(value)
    return list(values or [])  # never None: typer < 0.17 takes len() of what a callback returns


def check_folder(value: Path) -> Path:
    """A folder to read from (our own words: click's differ between versions)."""
    if not stat.S_ISDIR(_mode(value, "folder")):
        raise typer.BadParameter(f"{value} is not a folder")
    return value


def check_file(value: Path | None) -> Path | None:
    """A file to read (``--kubeconfig``, ``--repo-list``): there, a regular file, readable."""
    if value is None:
        return None
    mode = _mode(value, "file")
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a FIFO or device?)"
        raise typer.BadParameter(f"{value} is {kind}; expected a regular file")
    if not os.access(value, os.R_OK):
        raise typer.BadParameter(f"cannot read {value}: permission denied")
    return value


def _mode(value: Path, kind: str) -> int:
    """``value``'s file mode (symlinks followed), or the option's usage error."""
    try:
        return os.stat(value).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise typer.BadParameter(f"no such {kind}: {_shown(value)}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise typer.BadParameter(f"cannot use {_shown(value)}: {reason}") from None


def _shown(path: Path) -> str:
    """A path for a message: as given, or cut when it is too long to read."""
    text = str(path)
    return text if len(text) <= 200 else shorten(text)


def check_regex(value: str | None) -> str | None:
    """``--focus``/``--skip``: a regular expression ginkgo can compile, before anything runs."""
    if value is None:
        return None
    if len(value) > MAX_REGEX_CHARS:
        raise typer.BadParameter(f"expected a regular expression of at most {MAX_REGEX_CHARS} "
                                 f"characters, got {len(value)}")
    try:
        re.compile(value)
    except re.error as exc:
        raise typer.BadParameter(f"{value!r} is not a regular expression: {exc}") from None
    if _NOT_RE2.search(value):
        raise typer.BadParameter(f"{value!r} uses lookaround or a backreference, which "
                                 "ginkgo's regular expressions (Go's RE2) do not have")
    return value


def check_commit(value: str | None) -> str | None:
    if value is not None and not COMMIT.fullmatch(value):
        raise typer.BadParameter(
            f"expected a full 40-character lowercase hex commit SHA, got {value!r}")
    return value


def check_registry(value: str | None) -> str | None:
    """``--push``: a registry host[:port][/path], before anything is built."""
    from tkedistro.model.refs import registry_problem

    if value is not None and (problem := registry_problem(value)):
        raise typer.BadParameter(problem)
    return value


def check_image(value: str | None) -> str | None:
    """``--builder-image``: a Docker image reference (the manifest's rule), before docker."""
    if value is not None and (problem := image_problem(value)):
        raise typer.BadParameter(problem)
    return value


def check_debian_mirror(value: str | None) -> str | None:
    """``--debian-mirror``: an http(s) Debian mirror URL, no credentials (the manifest's rule)."""
    if value is not None and (problem := debian_mirror_problem(value)):
        raise typer.BadParameter(problem)
    return value


@contextmanager
def debian_source(option: str | None, releases: tuple[str, ...],
                  loaded: tuple[Manifest, ...] = ()) -> Iterator[DebianSource]:
    """The Debian mirror of a command on ``releases`` (default: every release; ``loaded``:
    their manifests, when the command has them already), chosen for everything run inside:
    ``--debian-mirror``, else their manifests' ``debian.mirror``, else ``DEBIAN_MIRROR``, else
    deb.debian.org; failed debootstrap logs go to the cache's ``logs/``."""
    from tkedistro.debian import source
    from tkedistro.model.manifest import list_release_names, load_release

    ws = G.workspace()
    if not option and not loaded:
        names = releases or tuple(list_release_names(ws.releases_dir))
        loaded = tuple(load_release(ws, name) for name in names)
    mirrors = {f"releases/{ws.manifest_path(m.release).name}": m.debian_mirror for m in loaded}
    with source.chosen(source.resolve(option, mirrors, ws.cache / "logs")) as found:
        yield found


def check_memory(value: str | None) -> str | None:
    """``--memory``: a size in docker's units (512m, 8g, 8gb) from 6m (docker's least) to
    64 TiB, checked before docker."""
    if value is None:
        return None
    match = MEMORY.fullmatch(value)
    if match is None or float(match.group(1)) <= 0:
        raise typer.BadParameter(
            f"expected a memory size like 512m or 8g (a number, then b, k, m or g), "
            f"got {shorten(value)}")
    size = float(match.group(1)) * UNITS[(match.group(2) or "")[:1].lower()]
    if not MIN_MEMORY <= size <= MAX_MEMORY:
        raise typer.BadParameter(f"expected a memory size from 6m to {MAX_MEMORY // 2**30}g, "
                                 f"got {shorten(value)}")
    return value


def check_cpus(value: float | None) -> float | None:
    """``--cpus``: a finite number of CPUs above 0 (0 would silently mean no limit)."""
    if value is not None and not (math.isfinite(value) and 0 < value <= MAX_CPUS):
        raise typer.BadParameter(f"expected a number of CPUs above 0 and at most "
                                 f"{MAX_CPUS:g}, like 4 or 1.5, got {value}")
    return value


def check_minutes(value: float) -> float:
    """A time limit in minutes: above 0 (0 or less would stop before starting) and at most
    a week (a timer of 1e300 s overflows, and the run would have no limit at all)."""
    if not (math.isfinite(value) and 0 < value <= MAX_MINUTES):
        raise typer.BadParameter(f"expected a number of minutes above 0 and at most "
                                 f"{MAX_MINUTES} (a week), like 90, got {value}")
    return value


JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
UpstreamOpt = Annotated[
    str | None,
    typer.Option("--upstream", envvar="TKEDISTRO_UPSTREAM", callback=check_upstream,
                 help="Fetch from this mirror URL (a user name or token in it reaches git "
                      "only: never a message, --json or a state file)."),
]


DebianMirrorOpt = Annotated[
    str | None,
    typer.Option("--debian-mirror", metavar="URL", callback=check_debian_mirror,
                 help="Debootstrap from this Debian mirror (over the manifest's debian.mirror "
                      "and DEBIAN_MIRROR); e.g. http://archive.debian.org/debian for an "
                      "end-of-life suite."),
]

SignKeyOpt = Annotated[
    Path | None,
    typer.Option("--sign-key", metavar="PATH",
                 help="Sign with this cosign key (over TKEDISTRO_SIGNING_KEY, a path, and "
                      "TKEDISTRO_SIGNING_KEY_PEM, its text); passphrase from "
                      "TKEDISTRO_SIGNING_PASSPHRASE_FILE or TKEDISTRO_SIGNING_PASSPHRASE. "
                      "None of them: unsigned."),
]


def guarded(fn: Callable[..., None]) -> Callable[..., None]:
    """Turn expected errors into one clean message and their documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        if code := outcome(fn, *args, **kwargs):
            raise typer.Exit(code)

    return wrapper
