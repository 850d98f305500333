"""What the console shows while ``make`` runs in the builder container.

Kubernetes' build says what it does in ``kube::log::status`` lines (``hack/lib/logging.sh``):
``+++ [1202 03:07:58] Building go targets for linux/arm64:`` followed by one indented line per
target, and ``!!! [...]`` for ``kube::log::error``. ``StatusParser`` (pure) turns them into
``Status`` values; ``BuildProgress`` prints each with the time since the build step started
and, when nothing was printed for ``HEARTBEAT_SECONDS``, a "still building" line naming the
last status, so a CI log never looks dead. Every other line (the compiler's, make's recipes)
is only in the build log. ``ticking`` runs the clock in a thread, since ``go build`` of
kubelet can be silent for many minutes.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tkedistro.build.output import LOG_NAME
from tkedistro.build.publish import failed_log_path
from tkedistro.core import console

HEARTBEAT_SECONDS = 60.0  # a "still building" line after this long without one
SETTLE_SECONDS = 1.0  # a status line's indented list follows it at once; wait this long for it
TICK_SECONDS = 1.0
MAX_ITEMS = 6  # targets named in one line; the rest are counted
MAX_COMMAND = 160  # characters of a make command line shown

_STATUS = re.compile(
    r"^(\+\+\+|!!!) (?:\[[0-9]{4} [0-9][0-9]:[0-9][0-9]:[0-9][0-9]\] )?\s*(.*\S)\s*$")
_ITEM = re.compile(r"^    (\S.*?)\s*$")

Clock = Callable[[], float]
Emit = Callable[[str], None]


@dataclass(frozen=True)
class Status:
    """One ``kube::log::status`` (or ``kube::log::error``) message and its indented lines."""

    message: str
    items: tuple[str, ...] = ()
    error: bool = False

    def headline(self) -> str:
        """``building go targets for linux/arm64`` (the message, without its list)."""
        message = self.message.removesuffix(":")
        if len(message) > 1 and message[0].isupper() and message[1].islower():
            message = message[0].lower() + message[1:]
        return "error: " + message if self.error else message

    def text(self) -> str:
        """``building go targets for linux/arm64: cmd/kubectl cmd/kubelet``."""
        if not self.items:
            return self.headline()
        more = len(self.items) - MAX_ITEMS
        return (f"{self.headline()}: {' '.join(self.items[:MAX_ITEMS])}"
                + (f" (+{more} more)" if more > 0 else ""))


class StatusParser:
    """Kubernetes' status lines out of make's output, one line at a time.

    A status is complete when the next line is not one of its indented lines; ``flush``
    completes the one still open (at the end of the output, or when no more lines came)."""

    def __init__(self) -> None:
        self._open: Status | None = None

    @property
    def open(self) -> bool:
        return self._open is not None

    def feed(self, line: str) -> list[Status]:
        """The statuses ``line`` completes (at most one)."""
        if self._open is not None and (item := _ITEM.match(line)):
            self._open = Status(self._open.message, (*self._open.items, item.group(1)),
                                self._open.error)
            return []
        done = self.flush()
        if match := _STATUS.match(line):
            self._open = Status(match.group(2), error=match.group(1) == "!!!")
        return done

    def flush(self) -> list[Status]:
        done, self._open = self._open, None
        return [] if done is None else [done]


def parse_statuses(lines: Sequence[str]) -> list[Status]:
    """Every status in ``lines`` (a whole log)."""
    parser = StatusParser()
    found = [status for line in lines for status in parser.feed(line)]
    return found + parser.flush()


def log_paths_text(staging_log: Path, final: Path) -> str:
    """Where the build log is while make runs and where it will be afterwards."""
    return (f"log: {staging_log} (tail -f it to follow make); kept as {final / LOG_NAME} "
            f"when the build is published, as {failed_log_path(final)} when it fails")


class BuildProgress:
    """Console lines for one build step: statuses with their elapsed time, a heartbeat.

    ``line`` is the ``OnLine`` callback of the make runs; ``tick`` is called every
    ``TICK_SECONDS`` (``ticking``); both may run in different threads."""

    def __init__(self, step: str = "build", *, clock: Clock = time.monotonic,
                 emit: Emit = console.info, heartbeat: float | None = None,
                 settle: float | None = None) -> None:
        self._step, self._clock, self._emit = step, clock, emit
        self._heartbeat = HEARTBEAT_SECONDS if heartbeat is None else heartbeat
        self._settle = SETTLE_SECONDS if settle is None else settle
        self._lock = threading.Lock()
        self._parser = StatusParser()
        self._started = self._printed = clock()
        self._opened = 0.0  # when the parser's open status began
        self._last = ""
        self._run = ""  # " (make run 2 of 3)" when there is more than one

    def begin_run(self, argv: Sequence[str], index: int, total: int) -> None:
        """Make run ``index`` (from 1) of ``total`` starts; named when there are several."""
        with self._lock:
            self._flush()
            self._run = f" (make run {index} of {total})" if total > 1 else ""
            if total > 1:
                command = " ".join(argv)
                if len(command) > MAX_COMMAND:
                    command = command[:MAX_COMMAND - 3] + "..."
                self._say(f"make run {index} of {total}: {command}")

    def end_run(self) -> None:
        with self._lock:
            self._flush()

    def line(self, text: str) -> None:
        with self._lock:
            for status in self._parser.feed(text):
                self._show(status)
            if _STATUS.match(text):
                self._opened = self._clock()

    def tick(self) -> None:
        with self._lock:
            now = self._clock()
            if self._parser.open and now - self._opened >= self._settle:
                self._flush()
            elif now - self._printed >= self._heartbeat:
                last = f", last: {self._last}" if self._last else ""
                self._emit(f"[{self._step}] still building "
                           f"({console.duration(now - self._started)}{last})")
                self._printed = now

    def _flush(self) -> None:
        for status in self._parser.flush():
            self._show(status)

    def _show(self, status: Status) -> None:
        self._last = status.headline()
        self._say(status.text() + self._run)

    def _say(self, text: str) -> None:
        now = self._clock()
        self._emit(f"[{self._step}] {console.duration(now - self._started)} {text}")
        self._printed = now


@contextmanager
def ticking(progress: BuildProgress, every: float | None = None) -> Iterator[None]:
    """Call ``progress.tick()`` every ``every`` seconds (``TICK_SECONDS``) in a thread while
    the block runs."""
    stop = threading.Event()
    period = TICK_SECONDS if every is None else every

    def loop() -> None:
        while not stop.wait(period):
            try:
                progress.tick()
            except (OSError, ValueError):  # stderr closed under us: nothing left to tell
                return

    thread = threading.Thread(target=loop, name="tkedistro-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
