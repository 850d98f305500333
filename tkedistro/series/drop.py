"""``tkedistro drop RELEASE`` (and ``tkedistro new RELEASE --abort``): take away a release line
``tkedistro new`` made, whether its rebase finished or stopped at a conflict.

Only a line with ``new``'s record (``linerecord.py``) is dropped. First what the maintainer
did since is saved where the removal cannot reach, ``_src/.<release>.dropped/<UTC time>/``:
edits in ``_src/<release>`` (changed, staged and untracked files, commits the tool did not
make; mid-conflict only what changed after the conflict) as branch ``edits`` of a small bare
repository there (``edits.git``, borrowing the mirror's objects as ``_src`` does), and the
manifest and patch files when any differs from what ``new`` (or the line's first rebase)
wrote, copied under ``files/`` at their repo paths. The commands that bring them back are
printed. Then ``_src/<release>``, the patch files ``new`` copied or the maintainer added (not
files the folder held before ``new``), the manifest and the state folder
``_src/.<release>.tkedistro/`` (rebase state, locks, the record: last, so an interrupted
drop can be run again) are removed. ``_output``, ``_results`` and ``_cluster`` of the
release are never made by ``new``: a build or a cluster of the line is kept and named.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tkedistro.core import console, files
from tkedistro.core.errors import ManifestError
from tkedistro.core.locks import release_lock
from tkedistro.core.rebasemark import is_rebasing
from tkedistro.core.workspace import ReleasePaths, Workspace
from tkedistro.git.repo import Repo
from tkedistro.series.leftovers import edits_to_keep
from tkedistro.series.linerecord import LineRecord, line_files, load_record
from tkedistro.series.state import load_state
from tkedistro.series.transaction import refuse_shared

EDITS_BRANCH = "edits"


@dataclass
class DropResult:
    release: str
    removed: list[str] = field(default_factory=list)
    backup: str | None = None  # the folder the edits were saved to, repo-relative
    saved: list[str] = field(default_factory=list)  # what was saved there
    restore: list[str] = field(default_factory=list)  # the commands that bring it back
    kept: list[str] = field(default_factory=list)  # the line's build/results, left in place

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release, "status": "dropped", "removed": self.removed,
                "backup": self.backup, "saved": self.saved, "restore": self.restore,
                "kept": self.kept}

    def format_text(self) -> str:
        lines = [f"dropped release {self.release}: removed " + ", ".join(self.removed)]
        if self.backup:
            listed = ", ".join(self.saved[:10]) + (" ..." if len(self.saved) > 10 else "")
            lines.append(f"edits saved to {self.backup}/: {listed}")
            lines += [f"get them back with: {command}" for command in self.restore]
        lines += [f"kept {kept} (not made by tkedistro new); delete it when you no longer "
                  "need it" for kept in self.kept]
        return "\n".join(lines)


def drop_release(ws: Workspace, release: str, *, doing: str = "drop") -> DropResult:
    """``tkedistro drop``: the line ``release`` removed, under its release lock (a release
    without ``new``'s record is refused first: taking its lock would make its state folder)."""
    _record(ws, ws.release(release), doing)
    with release_lock(ws, release):
        return drop_line(ws, release, doing=doing)


def drop_line(ws: Workspace, release: str, *, doing: str = "drop") -> DropResult:
    """Remove release line ``release`` (the caller holds its release lock), saving edits
    first; ``ManifestError`` (exit 3) for a release ``tkedistro new`` did not make."""
    paths = ws.release(release)
    record = _record(ws, paths, doing)
    ours = line_files(ws, release, record.kept)
    refuse_shared(ws, release, [n for n in ours if n != paths.manifest_name],
                  f"tkedistro {doing}")
    result = DropResult(release)
    _save(ws, paths, record, ours, result)
    _remove(ws, paths, record, ours, result)
    result.kept = [str(getattr(paths.layout, name)) for name in ("output", "results", "cluster")
                   if files.is_symlink(getattr(paths, name)) or getattr(paths, name).exists()]
    return result


def _record(ws: Workspace, paths: ReleasePaths, doing: str) -> LineRecord:
    record = load_record(ws, paths.name)
    if record is not None:
        return record
    shown = f"{paths.layout.state}/{paths.new_line_record.name}"
    if paths.manifest_file.exists():
        why = (f"release {paths.name} was not made by `tkedistro new` ({paths.manifest_name} "
               f"exists, but {shown}, the record new writes, does not)")
    else:
        why = f"release {paths.name}: no release line made by `tkedistro new` ({shown} is missing)"
    raise ManifestError(
        [f"tkedistro {doing} {paths.name}: refused: {why}"],
        hint=f"tkedistro {doing} removes only release lines `tkedistro new` made; "
             "remove any other release by hand (git rm its manifest and patch folder)")


def _save(ws: Workspace, paths: ReleasePaths, record: LineRecord, ours: dict[str, str],
          result: DropResult) -> None:
    """Back up the edits in ``_src`` and the changed manifest and patch files, if any."""
    folder: Path | None = None
    repo = Repo(paths.src, str(paths.layout.src)) if paths.src.exists() else None
    state = load_state(ws, paths.name) if is_rebasing(paths) else None
    found = edits_to_keep(repo, state) if repo is not None else None
    if repo is not None and found is not None:
        folder = _new_backup(paths)
        tree, edited = found
        _save_tree(repo, tree, folder / "edits.git", paths.name)
        result.saved += [f"{paths.layout.src}: {name}" for name in edited]
        result.restore.append(f"git clone -q -b {EDITS_BRANCH} "
                              f"{shlex.quote(ws.rel(folder / 'edits.git'))} {paths.layout.src}")
    changed = [name for name, sha in ours.items() if record.files.get(name) != sha]
    if changed:
        folder = folder or _new_backup(paths)
        for name in ours:  # the whole line, so what comes back is consistent
            files.copy_file(ws.root / name, folder / "files" / name)
        result.saved += changed
        result.restore.append(f"cp -R {shlex.quote(ws.rel(folder / 'files'))}/. .")
    if folder is not None:
        result.backup = ws.rel(folder)
        console.warn(f"edits to release line {paths.name} were saved to {result.backup}/; "
                     "get them back with: " + " && ".join(result.restore))


def _new_backup(paths: ReleasePaths) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder, n = paths.dropped / stamp, 1
    while folder.exists():
        n += 1
        folder = paths.dropped / f"{stamp}-{n}"
    files.ensure_dir(folder)
    return folder


def _save_tree(repo: Repo, tree: str, dest: Path, release: str) -> None:
    """``tree`` as a commit on HEAD, on branch ``edits`` of a new bare repository ``dest``
    that borrows the objects ``repo`` borrows (the mirror's), so only the new ones are copied."""
    Repo.init_bare(dest, {})
    borrowed = "".join(f"{path}\n" for path in repo.borrowed_objects())
    if borrowed:
        files.write_text(dest / "objects" / "info" / "alternates", borrowed)
    commit = repo.commit_tree(tree, f"tkedistro: edits left in {repo.shown} when release line "
                                    f"{release} was dropped")
    repo.push_commit(dest, commit, f"refs/heads/{EDITS_BRANCH}")
    repo.close()


def _remove(ws: Workspace, paths: ReleasePaths, record: LineRecord, ours: dict[str, str],
            result: DropResult) -> None:
    """The tree, the patch files, the manifest, then the state folder (the record last)."""
    if paths.src.exists() or files.is_symlink(paths.src):
        files.remove(files.check_path(paths.src))
        result.removed.append(str(paths.layout.src))
    files.remove(paths.src.with_name(f".{paths.name}.creating"))  # a tree half made
    patches = [name for name in ours if name != paths.manifest_name]
    for name in patches:
        files.remove(ws.root / name)
        _prune(paths.patches_dir, (ws.root / name).parent)
    folder = paths.patches_dir
    if not record.patches_dir_existed and folder.is_dir() and not any(folder.iterdir()):
        files.remove(folder)
    if patches:
        result.removed.append(f"{paths.layout.patches}/ ({len(patches)} files)")
    if paths.manifest_name in ours:
        files.remove(paths.manifest_file)
        result.removed.insert(0, paths.manifest_name)
    files.remove(paths.state_dir)
    result.removed.append(f"{paths.layout.state}/")


def _prune(top: Path, folder: Path) -> None:
    """Remove ``folder`` and its parents below ``top`` while they are empty."""
    while folder != top and folder.is_relative_to(top) and folder.is_dir() \
            and not any(folder.iterdir()):
        files.remove(folder)
        folder = folder.parent
