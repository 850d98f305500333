"""User-facing output: rich on a terminal, plain timestamped lines in CI or when piped.

Every module reports through these functions; nothing else prints. Step names are the
stable snake_case pipeline names (``fetch_source``, ``apply_patches``, ``build``, ...).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape


@dataclass
class _Settings:
    verbose: bool = False
    plain: bool = False


_settings = _Settings()
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def configure(*, verbose: bool = False) -> None:
    _settings.verbose = verbose
    _settings.plain = bool(os.environ.get("CI")) or not _err.is_terminal


def _stamp() -> str:
    return time.strftime("%H:%M:%S")


def info(message: str) -> None:
    """A progress line (stderr, so ``--json`` stdout stays machine-readable)."""
    if _settings.plain:
        print(f"{_stamp()} {message}", file=sys.stderr, flush=True)
    else:
        _err.print(message, markup=False)


def verbose(message: str) -> None:
    if _settings.verbose:
        info(message)


def warn(message: str) -> None:
    _labelled("warning", "yellow", message, stamped=True)


def error(message: str) -> None:
    _labelled("error", "bold red", message, stamped=False)


def _labelled(label: str, style: str, message: str, *, stamped: bool) -> None:
    """``label: message`` on stderr; only the label is styled (the message is never markup)."""
    if _settings.plain:
        stamp = f"{_stamp()} " if stamped else ""
        print(f"{stamp}{label}: {message}", file=sys.stderr, flush=True)
    else:
        _err.print(f"[{style}]{label}:[/{style}] ", end="")
        _err.print(message, markup=False, highlight=False)


def out(text: str) -> None:
    """Data for stdout (tables, JSON)."""
    print(text, flush=True)


@contextmanager
def step(name: str, detail: str = "") -> Iterator[None]:
    """Announce a pipeline step and its elapsed time; a spinner on a terminal."""
    start = time.monotonic()
    label = f"{name}" + (f": {detail}" if detail else "")
    if _settings.plain:
        info(f"[{name}] start {detail}".rstrip())
        yield
        info(f"[{name}] done in {time.monotonic() - start:.1f}s")
        return
    with _err.status(f"[bold]{escape(label)}[/bold]", spinner="dots"):
        yield
    _err.print(f"[green]✓[/green] {escape(label)} [dim]({time.monotonic() - start:.1f}s)[/dim]")
