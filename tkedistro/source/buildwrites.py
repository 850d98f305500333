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
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tkedistro.core import console
from tkedistro.core.files import write_atomic
from tkedistro.core.locks import release_lock
from tkedistro.core.workspace import ReleasePaths, Workspace
from tkedistro.git.repo import Repo

RECORD_VERSION = 1
# file times are kept at a coarser grain than time.time_ns(): a file the build wrote at once
# may look a little older than the recorded start
_CLOCK_SLACK_NS = 2_000_000_000


@contextmanager
def build_writes(ws: Workspace, release: str, tree_path: Path) -> Iterator[None]:
    """Around a build of ``tree_path`` (``_src/<release>``): remove what the build left."""
    tree = Repo(tree_path, ws.rel(tree_path))
    record = ws.release(release).build_run
    with release_lock(ws, release):
        before = tree.untracked_files()
        started = time.time_ns()
        write_atomic(record, (json.dumps({"version": RECORD_VERSION, "started_ns": started,
                                          "before": sorted(before)}) + "\n").encode())
        try:
            yield
        finally:
            files = written_since(tree, set(before), started)
            # saved first: a file someone made in the tree while the build ran looks the same
            ref = tree.backup(f"tkedistro backup of {tree.shown}: files a build wrote") \
                if files else ""
            removed = remove_files(tree, files)
            record.unlink(missing_ok=True)
            if removed:
                console.info(f"removed {_listed(removed)} the build wrote into {tree.shown} "
                             f"(not tracked, not ignored; saved to {ref})")


def recover_build_writes(tree: Repo, paths: ReleasePaths) -> None:
    """Clean up after a build that was killed (its record is still there); call under the
    release lock. One stat when there is nothing to do."""
    record = paths.build_run
    if not record.is_file():
        return
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        started, before = int(data["started_ns"]), set(data["before"])
        known = data.get("version") == RECORD_VERSION
    except (OSError, ValueError, KeyError, TypeError):
        known = False
    if known and tree.exists():
        files = written_since(tree, before, started)
        if files:
            ref = tree.backup(f"tkedistro backup of {tree.shown}: files an interrupted "
                              "build may have written")
            removed = remove_files(tree, files)
            console.warn(f"{tree.shown}: a build was interrupted; removed {_listed(removed)} "
                         f"it may have written (saved to {ref})")
    record.unlink(missing_ok=True)


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
    """Unlink each file (a symlink itself, never its target) inside the tree."""
    root = tree.path.resolve()
    removed = []
    for rel in files:
        path = tree.path / rel
        if not path.parent.resolve().is_relative_to(root):
            continue
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue
        removed.append(rel)
    if removed:
        tree.forget_untracked_cache()
    return removed


def _listed(files: list[str]) -> str:
    more = " ..." if len(files) > 5 else ""
    return f"{len(files)} file(s) ({', '.join(files[:5])}{more})"
