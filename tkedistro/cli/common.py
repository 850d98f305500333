"""What every command module shares: option types and checks, and ``guarded``, which gives
typer the exit code of an expected error (``session.outcome`` prints its message).

``G`` (the global options) and ``emit`` live in ``session.py``, which needs no typer.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from tkedistro.cli.session import G, emit, outcome
from tkedistro.model.refs import COMMIT_PATTERN, TAG_PATTERN, image_problem
from tkedistro.model.url import url_problem

__all__ = ["G", "emit", "guarded"]  # G and emit are session's, here for the command modules

TAG = re.compile(TAG_PATTERN)
COMMIT = re.compile(COMMIT_PATTERN)
# docker-py's units; ASCII only (no other digits, no Kelvin sign for k)
MEMORY = re.compile(r"([0-9]+(?:\.[0-9]+)?)([kmg]?b|[kmg])?", re.IGNORECASE | re.ASCII)


def check_upstream(value: str | None) -> str | None:
    """``--upstream``/``TKEDISTRO_UPSTREAM``: the manifest's URL allow-list (exit 2)."""
    if value is not None and (problem := url_problem(value, local_paths=True)):
        raise typer.BadParameter(problem)  # click names --upstream and TKEDISTRO_UPSTREAM
    return value


def check_tag(value: str | None) -> str | None:
    """An upstream tag given on the command line: ``v1.20.2``-shaped, never an option."""
    if value is not None and not TAG.fullmatch(value):
        raise typer.BadParameter(f"expected an upstream tag like v1.20.2, got {value!r}")
    return value


def check_tags(values: list[str] | None) -> list[str]:
    for value in values or []:
        check_tag(value)
    return list(values or [])  # never None: typer < 0.17 takes len() of what a callback returns


def check_folder(value: Path) -> Path:
    """A folder to read from (our own words: click's differ between versions)."""
    if not value.exists():
        raise typer.BadParameter(f"no such folder: {value}")
    if not value.is_dir():
        raise typer.BadParameter(f"{value} is not a folder")
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


def check_memory(value: str | None) -> str | None:
    """``--memory``: a positive size in docker's units (512m, 8g, 8gb), checked before docker."""
    match = MEMORY.fullmatch(value) if value is not None else None
    if value is not None and (match is None or float(match.group(1)) <= 0):
        raise typer.BadParameter(
            f"expected a memory size like 512m or 8g (a number, then b, k, m or g), "
            f"got {value!r}")
    return value


def check_cpus(value: float | None) -> float | None:
    """``--cpus``: a finite number of CPUs above 0 (0 would silently mean no limit)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"expected a number of CPUs above 0 like 4 or 1.5, got {value}")
    return value


def check_minutes(value: float) -> float:
    """A time limit in minutes: finite and above 0 (0 or less would stop before starting)."""
    if not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"expected a number of minutes above 0 like 90, got {value}")
    return value


JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
UpstreamOpt = Annotated[
    str | None,
    typer.Option("--upstream", envvar="TKEDISTRO_UPSTREAM", callback=check_upstream,
                 help="Fetch from this mirror URL."),
]


def guarded(fn: Callable[..., None]) -> Callable[..., None]:
    """Turn expected errors into one clean message and their documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        if code := outcome(fn, *args, **kwargs):
            raise typer.Exit(code)

    return wrapper
