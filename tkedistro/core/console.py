"""User-facing output: rich on a terminal, plain timestamped lines in CI or when piped.

Every module reports through these functions; nothing else prints. Step names are the
stable snake_case pipeline names (``fetch_source``, ``apply_patches``, ``build``, ...).
rich is loaded at the first line for stderr, not before: a command that prints only its
result (``--version``, an unchanged ``source``) starts without it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class _Settings:
    verbose: bool = False
    plain: bool | None = False  # None: rich's terminal check decides at the first line


_settings = _Settings()
_err: Console | None = None  # rich's console for stderr, made on first use


def configure(*, verbose: bool = False) -> None:
    _settings.verbose = verbose
    _settings.plain = True if os.environ.get("CI") else None


def _stderr() -> Console:
    global _err
    if _err is None:
        from rich.console import Console

        _err = Console(stderr=True, highlight=False, soft_wrap=True)
    return _err


def _plain() -> bool:
    """Plain lines in CI or when stderr is no terminal, as rich sees it (it also reads
    FORCE_COLOR and TTY_COMPATIBLE; without them, a stderr that is no tty is no terminal
    and rich is not needed to say so)."""
    if _settings.plain is None:
        if not any(key in os.environ for key in ("FORCE_COLOR", "TTY_COMPATIBLE")) \
                and not _isatty():
            _settings.plain = True
        else:
            _settings.plain = not _stderr().is_terminal
    return _settings.plain


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # no stream, or a closed one: let rich decide
        return True


def _stamp() -> str:
    return time.strftime("%H:%M:%S")


def info(message: str) -> None:
    """A progress line (stderr, so ``--json`` stdout stays machine-readable)."""
    if _plain():
        print(f"{_stamp()} {message}", file=sys.stderr, flush=True)
    else:
        _stderr().print(message, markup=False)


def verbose(message: str) -> None:
    if _settings.verbose:
        info(message)


def warn(message: str) -> None:
    _labelled("warning", "yellow", message, stamped=True)


def error(message: str) -> None:
    _labelled("error", "bold red", message, stamped=False)


def _labelled(label: str, style: str, message: str, *, stamped: bool) -> None:
    """``label: message`` on stderr; only the label is styled (the message is never markup)."""
    if _plain():
        stamp = f"{_stamp()} " if stamped else ""
        print(f"{stamp}{label}: {message}", file=sys.stderr, flush=True)
    else:
        err = _stderr()
        err.print(f"[{style}]{label}:[/{style}] ", end="")
        err.print(message, markup=False, highlight=False)


def duration(seconds: float) -> str:
    """``45s``, ``12m30s``, ``1h02m03s``: an elapsed time in a progress line."""
    whole = int(max(seconds, 0))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def size(count: int) -> str:
    """``812 B``, ``4.2 KiB``, ``51.3 MiB``, ``1.1 GiB``: a file's size in a progress line."""
    value = float(count)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def out(text: str) -> None:
    """Data for stdout (tables, JSON)."""
    print(text, flush=True)


@contextmanager
def step(name: str, detail: str = "") -> Iterator[None]:
    """Announce a pipeline step and its elapsed time; a spinner on a terminal."""
    start = time.monotonic()
    label = f"{name}" + (f": {detail}" if detail else "")
    if _plain():
        info(f"[{name}] start {detail}".rstrip())
        yield
        info(f"[{name}] done in {time.monotonic() - start:.1f}s")
        return
    from rich.markup import escape

    err = _stderr()
    with err.status(f"[bold]{escape(label)}[/bold]", spinner="dots"):
        yield
    err.print(f"[green]✓[/green] {escape(label)} [dim]({time.monotonic() - start:.1f}s)[/dim]")
