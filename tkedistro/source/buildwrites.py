"""What a build writes into ``_src/<release>`` is the build's, not the maintainer's work.

Kubernetes' ``make`` writes into its own tree. Most of it is ignored (``_output/``, generated
files its ``.gitignore`` lists) and so never counts as work in progress, but a build that
stops half-way can leave a file git neither tracks nor ignores: ``hack/generate-bindata.sh``
leaves ``test/e2e/generated/bindata.go.tmp`` when ``gofmt`` is missing. The next ``source``
or ``build`` would then refuse the tree ("holds work in progress").

So the container run happens inside ``build_writes``: it holds the release lock (no
``source``, ``rebase`` or export moves the tree under the compiler), records the tree's
untracked files and the start time in ``build-run.json`` beside ``source.json``, and when the
run is over (finished, failed or Ctrl-C) removes exactly the files that git does not track
or ignore, that were not there before, and that were written since the start — after saving
them to a backup ref, since a file someone made in the tree during the build looks the same;
then it forgets the record. A maintainer's file from before the build is in the record and
stays.

A record left behind means that build was killed (``kill -9``; a live one holds the lock):
the next ``source``/``build`` removes what it may have written the same way, but saves it
to a backup ref first, since files made after the kill cannot be told from the build's.
A record that is not what this tool writes is refused (``DamagedStateError``, exit 17), never
guessed at.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from tkedistro.core import console
from tkedistro.core.errors import UnsafePathError
from tkedistro.core.files import remove, remove_link, write_json
from tkedistro.core.locks import release_lock
from tkedistro.core.statefile import StateFile, kind_of
from tkedistro.core.workspace import ReleasePaths, Workspace
from tkedistro.git.repo import Repo

RECORD_VERSION = 1
# file times are kept at a coarser grain than time.time_ns(): a file the build wrote at once
# may look a little older than the recorded start
_CLOCK_SLACK_NS = 2_000_000_000


@contextmanager
def build_writes(ws: Workspace, release: str, tree_path: Path) -> Iterator[None]:
    """Around a build of ``tree_path`` (``_src/<release>``): remove what the build left."""
    with release_lock(ws, release), writes_removed(ws, release, tree_path, "build"):
        yield


@contextmanager
def writes_removed(ws: Workspace, release: str, tree_path: Path, what: str) -> Iterator[None]:
    """``build_writes`` for a caller that holds the release lock already (``tkedistro
    bisect`` runs its checks under it): the same record, the same removal after ``what``."""
    tree = Repo(tree_path, ws.rel(tree_path))
    record = ws.release(release).build_run
    before = tree.untracked_files()
    started = time.time_ns()
    write_json(record, {"version": RECORD_VERSION, "started_ns": started,
                        "before": sorted(before)})
    try:
        yield
    finally:
        files = written_since(tree, set(before), started)
        # saved first: a file someone made in the tree while the build ran looks the same
        ref = tree.backup(f"tkedistro backup of {tree.shown}: files a {what} wrote") \
            if files else ""
        removed = remove_files(tree, files)
        remove(record)
        if removed:
            console.info(f"removed {_listed(removed)} the {what} wrote into {tree.shown} "
                         f"(not tracked, not ignored; saved to {ref})")


def recover_build_writes(tree: Repo, paths: ReleasePaths) -> None:
    """Clean up after a build that was killed (its record is still there); call under the
    release lock. One stat when there is nothing to do."""
    if not os.path.lexists(paths.build_run):
        return
    started, before = load_record(paths)
    if tree.exists():
        files = written_since(tree, before, started)
        if files:
            ref = tree.backup(f"tkedistro backup of {tree.shown}: files an interrupted "
                              "build may have written")
            removed = remove_files(tree, files)
            console.warn(f"{tree.shown}: a build was interrupted; removed {_listed(removed)} "
                         f"it may have written (saved to {ref})")
    remove(paths.build_run)


def load_record(paths: ReleasePaths) -> tuple[int, set[str]]:
    """The start time and the untracked files before it that ``build-run.json`` records;
    ``DamagedStateError`` (exit 17) for anything this tool does not write there."""
    file = record_file(paths)
    try:
        data = file.read()
    except FileNotFoundError:
        raise file.damaged(["missing"]) from None  # deleted since the check: say so
    file.keys(data, "", ("version", "started_ns", "before"))
    if type(data["version"]) is not int or data["version"] != RECORD_VERSION:
        raise file.damaged([f"version: {kind_of(data['version'])} is not {RECORD_VERSION}, "
                            "the one this tkedistro writes"])
    started = file.value(data, "started_ns", int, expected="a time in nanoseconds")
    if not 0 < started < 2**63:
        raise file.damaged([f"started_ns: {started} is not a time in nanoseconds"])
    before = file.value(data, "before", list, expected="a list of paths")
    for n, name in enumerate(before):
        if problem := _tree_path_problem(name):
            raise file.damaged([f"before[{n}]: {problem}"])
    return started, set(before)


def record_file(paths: ReleasePaths) -> StateFile:
    shown = f"{paths.layout.state}/{paths.build_run.name}"
    src = paths.layout.src
    return StateFile(
        paths.build_run, shown, "the record of an interrupted build",
        recovery=f"delete {shown} and run the command again: files the interrupted build may "
                 f"have written then stay in {src}, where `tkedistro source {paths.name}` "
                 "calls them work in progress (--force saves them to a backup ref first)")


def _tree_path_problem(name: Any) -> str | None:
    """Why ``name`` is no path git lists inside a tree (relative, no ``..``, plain text).
    These names are only compared with git's list, never opened or deleted."""
    if not isinstance(name, str) or not name:
        return f"expected a path inside the tree, got {kind_of(name)}"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return f"{name!r} contains a control character"
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        return f"{name} is not a path inside the tree"
    return None


def written_since(tree: Repo, before: set[str], started_ns: int) -> list[str]:
    """Untracked, not ignored files that were not in ``before`` and were written since
    ``started_ns`` (a file moved in keeps its older time and is not taken)."""
    found = []
    for rel in tree.untracked_files():
        if rel in before:
            continue
        try:
            mtime = os.lstat(tree.path / rel).st_mtime_ns
        except OSError:
            continue
        if mtime >= started_ns - _CLOCK_SLACK_NS:
            found.append(rel)
    return found


def remove_files(tree: Repo, files: list[str]) -> list[str]:
    """Unlink each file (a symlink itself, never its target) inside the tree, never through
    a symlinked folder."""
    removed = []
    for rel in files:
        path = tree.path / rel
        if ".." in PurePosixPath(rel).parts or not os.path.lexists(path):
            continue
        try:
            remove_link(path)
        except (UnsafePathError, IsADirectoryError, NotADirectoryError, PermissionError,
                FileNotFoundError):
            continue
        removed.append(rel)
    if removed:
        tree.forget_untracked_cache()
    return removed


def _listed(files: list[str]) -> str:
    more = " ..." if len(files) > 5 else ""
    return f"{len(files)} file(s) ({', '.join(files[:5])}{more})"
