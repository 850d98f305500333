"""Atomic publication of ``_output/<release>``.

A build writes into ``_output/.<release>.tmp-XXXX/out`` (with its scratch files in ``work``);
only a complete, checked output is swapped in for the old one. A failed or interrupted build
removes its staging folder and leaves the previous output untouched; its log is kept as
``_output/<release>.failed.log``. Staging folders a killed build left behind are removed by the
next build (callers hold the release's output lock, so none of them is in use).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tkedistro.build.output import LOG_NAME
from tkedistro.core import console

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


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

    On an exception the build log is kept as ``<final>.failed.log``.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(final)
    staging = Staging(Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent)))
    staging.out.mkdir()
    staging.work.mkdir()
    try:
        yield staging
    except BaseException:
        if staging.log.exists():
            os.replace(staging.log, failed_log_path(final))
        raise
    finally:
        shutil.rmtree(staging.root, ignore_errors=True)


def _stale(final: Path) -> list[Path]:
    patterns = (f".{final.name}.tmp-*", f".{final.name}.old-*")
    return sorted(p for pattern in patterns for p in final.parent.glob(pattern) if p.is_dir())


def sweep_stale(final: Path) -> None:
    """Remove staging and old-output folders of earlier builds that were killed."""
    for folder in _stale(final):
        _remove_previous(folder)


def _remove_previous(folder: Path) -> None:
    """Delete a previous output; what cannot be deleted is reported, never fatal: the new
    output is already in place (a mount under the old one, for instance)."""
    try:
        shutil.rmtree(folder)
    except OSError as exc:
        console.warn(f"could not remove {folder}: {exc.strerror or exc} ({exc.filename}); "
                     "the new output is complete; remove the folder when it is free "
                     "(a mount point under it: umount it first)")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with renameat2(RENAME_EXCHANGE); False if unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    rc = libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(rc == 0)


def publish(staged_out: Path, final: Path) -> None:
    """Make ``staged_out`` the content of ``final`` in one step; the old output is deleted."""
    if not final.exists():
        os.rename(staged_out, final)
    elif _exchange(staged_out, final):
        _remove_previous(staged_out)  # now holds the previous output
    else:
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, old)
        os.rename(staged_out, final)
        _remove_previous(old)
    failed_log_path(final).unlink(missing_ok=True)
