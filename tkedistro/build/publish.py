"""Atomic publication of ``_output/<release>``.

A build writes into ``_output/.<release>.tmp-XXXX/out`` (with its scratch files in ``work``);
only a complete, checked output is swapped in for the old one. A failed or interrupted build
removes its staging folder and leaves the previous output untouched; its log is kept as
``_output/<release>.failed.log``. Staging folders a killed build left behind are removed by the
next build (callers hold the release's output lock, so none of them is in use).

Every folder and file here is made, swapped and removed by the file layer (``core/files.py``):
a symlink at ``_output``, ``_output/<release>``, its failed log or a staging name is refused
(``UnsafePathError``, exit 3), never followed, replaced or deleted through.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tkedistro.build.output import LOG_NAME
from tkedistro.core import console, files


@dataclass(frozen=True)
class Staging:
    root: Path

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def log(self) -> Path:
        return self.out / LOG_NAME


def failed_log_path(final: Path) -> Path:
    return final.with_name(f"{final.name}.failed.log")


@contextmanager
def staging_for(final: Path) -> Iterator[Staging]:
    """A staging folder next to ``final``; removed on exit whatever happened.

    On an exception the build log is kept as ``<final>.failed.log``. A symlink at ``final``,
    at that log or in their folders is refused (``UnsafePathError``) before anything is made.
    """
    files.ensure_dir(final.parent)
    files.check_path(final)
    files.check_path(failed_log_path(final))
    sweep_stale(final)
    staging = Staging(files.make_temp_dir(final.parent, f".{final.name}.tmp-"))
    ours = -1  # the inode of this build's staging.out
    try:
        files.ensure_dir(staging.out)
        files.ensure_dir(staging.work)
        ours = os.lstat(staging.out).st_ino
        yield staging
    except BaseException:
        # the log of this build, unless it was published (then staging.out holds the old one)
        if os.path.lexists(staging.log) and os.lstat(staging.out).st_ino == ours:
            files.rename(staging.log, failed_log_path(final))
        raise
    finally:
        _remove_quietly(staging.root)


def _remove_quietly(folder: Path) -> None:
    """Remove a staging folder; one that cannot be removed is swept by the next build."""
    try:
        files.remove(folder)
    except OSError:
        pass


def _stale(final: Path) -> list[Path]:
    patterns = (f".{final.name}.tmp-*", f".{final.name}.old-*")
    return sorted(p for pattern in patterns for p in final.parent.glob(pattern)
                  if p.is_dir() or p.is_symlink())


def sweep_stale(final: Path) -> None:
    """Remove staging and old-output folders of earlier builds that were killed (a symlink
    planted under such a name is refused, never followed)."""
    for folder in _stale(final):
        _remove_previous(folder)


def _remove_previous(folder: Path) -> None:
    """Delete a previous output; what cannot be deleted is reported, never fatal: the new
    output is already in place (a mount under the old one, for instance)."""
    try:
        files.remove(folder)
    except OSError as exc:
        console.warn(f"could not remove {folder}: {exc.strerror or exc} ({exc.filename}); "
                     "the new output is complete; remove the folder when it is free "
                     "(a mount point under it: umount it first)")


def publish(staged_out: Path, final: Path) -> None:
    """Make ``staged_out`` the content of ``final`` in one step; the old output is deleted.
    A symlink at ``final`` is refused (``UnsafePathError``), never followed or replaced."""
    files.check_path(final)
    if not os.path.lexists(final):
        files.rename(staged_out, final)
    elif files.exchange(staged_out, final):
        _remove_previous(staged_out)  # now holds the previous output
    else:
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        files.rename(final, old)
        try:
            files.rename(staged_out, final)
        except BaseException:
            if not os.path.lexists(final):
                files.rename(old, final)  # the previous output back in place
            raise
        _remove_previous(old)
    files.remove(failed_log_path(final))
