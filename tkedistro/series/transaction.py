"""Series writes as transactions: ``patches export``, ``reorder`` and ``import`` change a
release's patch files and manifest all at once or not at all.

A transaction stages every new file, and the new manifest, in the release's state folder
(``_src/.<release>.tkedistro/series-tx/``), then writes its journal (``series-tx.json``,
atomically: which file gets which staged content, by sha256; which files go; what an import
adds to ``source.json``). Writing the journal is the commit point. Applying it renames each
staged file into place, then the manifest, then deletes the files the series no longer
lists, then writes the import record, and removes the journal last.

- Ctrl-C before the commit point: the staging is deleted, the series is as before (an
  import's commits in ``_src`` are reset to where it started by the next series command).
- Ctrl-C after it: the rest of the journal is applied before the interrupt goes on, the
  series is as after.
- A run killed (``kill -9``) after it leaves the journal: the next export, reorder or
  import finishes it first, under the release lock (roll forward); one killed before it
  leaves staging without a journal, which the next run deletes (roll back).

Also here: the rule that a series write never overwrites or deletes a patch file another
release's manifest lists (``refuse_shared``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tkedistro.core import console, files
from tkedistro.core.errors import DamagedStateError, ManifestError
from tkedistro.core.files import rename as move
from tkedistro.core.locks import release_lock
from tkedistro.core.workspace import (
    ReleasePaths,
    Workspace,
    manifest_name,
    path_problem,
)
from tkedistro.git.patching import Patcher
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import Manifest, update_pin
from tkedistro.series.importstate import ImportRecord, record_import
from tkedistro.series.listing import listed_elsewhere

JOURNAL_VERSION = 1
_MANIFEST = "manifest.yaml"  # the staged manifest's name in the stage folder
_BEGUN = "begun.json"  # where an import started (for the roll back)
_SHA = re.compile(r"[0-9a-f]{64}")
_STAGED = re.compile(r"[0-9]{1,6}")
_COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


@dataclass
class SeriesChange:
    """A new state of one release's series: files to write (repo-relative name -> bytes),
    files to delete, the manifest's new series (and how its entries were renamed), and what
    an import adds to ``source.json``."""

    writes: dict[str, bytes] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    series: list[str] | None = None
    renamed: dict[str, str] = field(default_factory=dict)  # new file -> the entry it continues
    record: ImportRecord | None = None


@contextmanager
def staging(ws: Workspace, release: str, *, start: str | None = None) -> Iterator[None]:
    """A fresh stage for one transaction (``commit`` in the block); whatever stops the
    block before the commit point drops it (``discard``). ``start``: the ``_src`` HEAD an
    import starts from, which ``_src`` is reset to when the import does not commit."""
    paths = ws.release(release)
    try:
        files.ensure_dir(paths.series_stage, mode=0o700)
        if start is not None:
            files.write_json(paths.series_stage / _BEGUN, {"start": start})
        yield
    except BaseException:
        if _read_journal(paths) is None:
            discard(ws, release)
        raise
    discard(ws, release)  # nothing committed (nothing to change), or committed and applied


def commit(ws: Workspace, manifest: Manifest, change: SeriesChange, operation: str) -> None:
    """Stage ``change`` to ``manifest``'s series, commit it (the journal) and apply it; see
    the module's docstring for what an interrupt at any point leaves. ``operation`` (e.g.
    ``patches export``) names it in messages."""
    release, paths = manifest.release, ws.release(manifest.release)
    names = [*change.writes, *change.deletes]
    if bad := [name for name in names if not _writable(ws, name)]:
        raise ManifestError([f"{name}: not a patch file `{operation}` may write or delete "
                             "(the releases folder and the tool's own folders are not)"
                             for name in bad])
    refuse_shared(ws, release, names, operation)
    try:
        journal = _stage(paths, manifest, change)
        files.write_json(paths.series_journal, journal)
    except BaseException:
        if _read_journal(paths) is not None:
            _apply_now(ws, paths)  # the interrupt came after the commit point
        raise
    _apply_now(ws, paths)


def _apply_now(ws: Workspace, paths: ReleasePaths) -> None:
    journal = _load(ws, paths)
    try:
        _apply(ws, paths, journal)
    except KeyboardInterrupt:
        _apply(ws, paths, journal)  # what is committed is applied before the interrupt goes on
        raise


def discard(ws: Workspace, release: str) -> None:
    """Drop an uncommitted transaction: its staging, and an import's commits in ``_src``."""
    paths = ws.release(release)
    start = _begun(paths)
    if start is not None:
        _reset_import(ws, release, start)
    files.remove(paths.series_stage)


def settle(ws: Workspace, release: str) -> None:
    """``finish_pending`` under the release lock: what a command that reads the series
    (source, build, rebase, new, ...) runs first when a transaction was left behind."""
    with release_lock(ws, release):
        finish_pending(ws, release)


def finish_pending(ws: Workspace, release: str) -> None:
    """Complete a committed transaction a killed run left (roll forward), or drop an
    uncommitted one (roll back). Call under the release lock."""
    paths = ws.release(release)
    if _read_journal(paths) is not None:
        journal = _load(ws, paths)
        console.warn(f"{paths.layout.state}: finishing the series change an interrupted run "
                     "committed")
        _apply(ws, paths, journal)
    else:
        discard(ws, release)


def _stage(paths: ReleasePaths, manifest: Manifest, change: SeriesChange) -> dict[str, Any]:
    stage = paths.series_stage
    writes = []
    for number, (name, data) in enumerate(change.writes.items()):
        files.write_atomic(stage / str(number), data)
        writes.append({"file": name, "staged": str(number),
                       "sha256": hashlib.sha256(data).hexdigest()})
    staged_manifest = None
    if change.series is not None:  # update_pin on a copy keeps the manifest's comments
        files.write_atomic(stage / _MANIFEST, paths.manifest_file.read_bytes())
        pin = manifest.upstream
        update_pin(stage / _MANIFEST, tag=pin.tag, commit=pin.commit,
                   patch_files=change.series, renamed=change.renamed)
        staged_manifest = hashlib.sha256(files.read_bytes(stage / _MANIFEST)).hexdigest()
    record = change.record
    return {"version": JOURNAL_VERSION, "writes": writes, "manifest": staged_manifest,
            "deletes": list(change.deletes),
            "record": None if record is None else {
                "start": record.start, "head": record.head,
                "added": [list(added) for added in record.added]}}


def _apply(ws: Workspace, paths: ReleasePaths, journal: dict[str, Any]) -> None:
    """Apply a committed journal; each step finds whether a run before it did it already."""
    stage = paths.series_stage
    for write in journal["writes"]:
        _put(stage / write["staged"], ws.root / write["file"], write["sha256"], paths)
    if journal["manifest"] is not None:
        _put(stage / _MANIFEST, paths.manifest_file, journal["manifest"], paths)
    for name in journal["deletes"]:
        _delete(ws.root / name)
    if (record := journal["record"]) is not None:
        record_import(ws, paths.name, ImportRecord(
            record["start"], record["head"], tuple(tuple(a) for a in record["added"])))
    files.remove(paths.series_journal)
    files.remove(stage)


def _put(staged: Path, target: Path, sha256: str, paths: ReleasePaths) -> None:
    """Move ``staged`` over ``target``; a staged file already gone was moved by the run
    this one finishes (``target`` then holds its bytes)."""
    if not os.path.lexists(staged):
        try:
            done = hashlib.sha256(files.read_bytes(target)).hexdigest() == sha256
        except FileNotFoundError:
            done = False
        if not done:
            raise _damaged(paths, f"{target.name} is neither staged nor in place")
        return
    if files.is_symlink(target):  # a patch file linked inside the repo: replaced, not followed
        files.remove_link(target)
    try:
        move(staged, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        files.write_atomic(target, files.read_bytes(staged))  # _src is on another file system
        files.remove(staged)


def _delete(path: Path) -> None:
    if files.is_symlink(path):
        files.remove_link(path)
    else:
        files.remove(path)


def _begun(paths: ReleasePaths) -> str | None:
    try:
        data = json.loads(files.read_text(paths.series_stage / _BEGUN, max_bytes=4096))
    except (FileNotFoundError, ValueError):
        return None
    start = data.get("start") if isinstance(data, dict) else None
    return start if isinstance(start, str) and _COMMIT.fullmatch(start) else None


def _reset_import(ws: Workspace, release: str, start: str) -> None:
    """Put ``_src`` back where an import that did not commit started, when everything
    above ``start`` is commits the tool made and nothing is changed by hand."""
    repo = Repo(ws.src_dir(release), ws.rel(ws.src_dir(release)))
    if not repo.exists() or not repo.has_commit(start):
        return
    if (patcher := Patcher(repo)).in_progress():
        patcher.abort()
    head = repo.head()
    if head == start or repo.tracked_changes() or not repo.is_ancestor(start, head):
        return
    if set(repo.commits(start)) <= repo.made():
        repo.reset_hard(start)
        console.warn(f"{repo.shown}: reset to {start[:12]}, where the interrupted import "
                     "started (its commits were not in the series)")


def _load(ws: Workspace, paths: ReleasePaths) -> dict[str, Any]:
    """The journal, checked: a version, and every path through the repo's path policy."""
    try:
        data = json.loads(_read_journal(paths) or b"")
        ok = data["version"] == JOURNAL_VERSION and _valid(ws, data)
    except (KeyError, TypeError, ValueError, IndexError):
        ok = False
    if not ok:
        raise _damaged(paths, f"not a version-{JOURNAL_VERSION} series journal tkedistro wrote")
    return dict(data)


def _read_journal(paths: ReleasePaths) -> bytes | None:
    try:
        return files.read_bytes(paths.series_journal, max_bytes=16 << 20)
    except FileNotFoundError:
        return None


def _valid(ws: Workspace, data: dict[str, Any]) -> bool:
    writes, deletes, record = data["writes"], data["deletes"], data["record"]
    if not all(_writable(ws, name) for name in [*(w["file"] for w in writes), *deletes]):
        return False
    if not all(_STAGED.fullmatch(w["staged"]) and _SHA.fullmatch(w["sha256"]) for w in writes):
        return False
    if data["manifest"] is not None and not _SHA.fullmatch(data["manifest"]):
        return False
    if record is None:
        return True
    commits = [record["start"], record["head"], *(a[2] for a in record["added"])]
    return all(isinstance(c, str) and _COMMIT.fullmatch(c) for c in commits) and all(
        len(a) == 3 and all(isinstance(x, str) for x in a) for a in record["added"])


def _writable(ws: Workspace, name: object) -> bool:
    """A series may write or delete ``name``: the repo's path policy, and never in the
    releases folder, a dot folder (``.git``) or the tool's own ``_`` folders."""
    if not isinstance(name, str) or path_problem(ws.root, name, must_exist=False):
        return False
    first = Path(name).parts[0] if Path(name).parts else ""
    return not first.startswith((".", "_")) and ws.root / first != ws.releases_dir


def _damaged(paths: ReleasePaths, what: str) -> DamagedStateError:
    shown = f"{paths.layout.state}/{paths.series_journal.name}"
    return DamagedStateError(
        f"{shown}: {what}; tkedistro cannot finish the interrupted series change it describes",
        hint=f"delete {shown} and {paths.layout.state}/{paths.series_stage.name}/ to drop it, "
             f"then check {paths.manifest_name} and the patch files (git status) and re-run",
    )


def refuse_shared(ws: Workspace, release: str, names: list[str], operation: str) -> None:
    """``ManifestError`` (exit 3) when ``operation`` of ``release`` would overwrite or
    delete a file (``names``, repo-relative) that another release lists."""
    if not names:
        return
    others = listed_elsewhere(ws, release, names)
    clash = [(name, releases[0]) for name, releases in others.items()]
    if clash:
        raise ManifestError(
            [f"{name}: listed by {manifest_name(other)} too; `{operation} {release}` would "
             f"overwrite or delete it, and release {other} still needs it"
             for name, other in clash],
            hint=f"give release {release} its own copy (copy the file under "
                 f"{ws.release(release).layout.patches}/ and list the copy in "
                 f"{manifest_name(release)}), then re-run",
        )
