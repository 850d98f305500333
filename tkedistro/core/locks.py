"""The per-release locks.

``release_lock`` guards ``_src/<release>`` (source, rebase, import); ``output_lock`` guards
``_output/<release>`` (a build publishing it, a local conformance cluster running from it).

``exclusive_lock`` is the one file-lock helper (fail at once, or wait a while first): an
``flock`` on the lock file, which stays in place (the ``filelock`` package locks the same
way; its import costs more than ``tkedistro source``'s up-to-date check, so it is not used).
The holder writes its PID into the file while it holds the lock (and clears it after);
another run's busy message names it, and it is used for nothing else.
Cheap to import (no pydantic, no git): ``tkedistro source``'s up-to-date path uses it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tkedistro.core import console, files
from tkedistro.core.errors import LockedError
from tkedistro.core.workspace import Workspace

LOCK_HINT = "wait for it to finish; the lock is freed when that process exits"


@contextmanager
def exclusive_lock(path: Path, busy: str, *, wait: float = 0, waiting: str = "",
                   hint: str = LOCK_HINT) -> Iterator[None]:
    """Hold ``path``'s file lock for the ``with`` block.

    Another holder makes it a ``LockedError`` saying ``busy`` (exit 13): at once, or with
    ``wait`` seconds after printing ``waiting`` and waiting that long for the lock.
    """
    fd = files.open_lock_file(path)
    held = False
    try:
        if not _locked(fd):
            if wait <= 0:
                raise LockedError(_busy(busy, fd), hint=hint)
            if waiting:
                console.info(waiting)
            deadline = time.monotonic() + wait
            while not _locked(fd):
                if time.monotonic() >= deadline:
                    raise LockedError(_busy(busy, fd), hint=hint)
                time.sleep(0.05)
        files.note_in_lock_file(fd, f"{os.getpid()}\n")
        held = True
        yield
    finally:
        if held:  # no stale PID for the next holder's rival to read
            files.note_in_lock_file(fd, "")
        os.close(fd)  # lets go of the lock


def _busy(busy: str, fd: int) -> str:
    """``busy`` with the holder's PID, as the holder wrote it in the lock file (read only
    for the message: digits, or nothing is said)."""
    pid = files.read_lock_note(fd).strip()
    return f"{busy}; held by process {pid}" if pid.isdigit() and len(pid) <= 10 else busy


def _locked(fd: int) -> bool:
    """Took the lock (False: another open file holds it)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN, errno.EWOULDBLOCK):
            return False
        raise
    return True


@contextmanager
def release_lock(ws: Workspace, release: str) -> Iterator[None]:
    """Exclusive use of ``_src/<release>``; a second run fails at once (exit 13)."""
    paths = ws.release(release)
    path = paths.source_lock
    with exclusive_lock(path, f"another tkedistro run is working on {paths.layout.src} "
                              f"(lock {path})"):
        yield


@contextmanager
def output_lock(ws: Workspace, release: str, doing: str) -> Iterator[None]:
    """Exclusive use of ``_output/<release>``; a second run fails at once (exit 13)."""
    paths = ws.release(release)
    path = paths.output_lock
    with exclusive_lock(path, f"another tkedistro run is using {paths.layout.output} "
                              f"(lock {path}); cannot {doing} now"):
        yield
