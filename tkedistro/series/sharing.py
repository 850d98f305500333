"""Patch files several releases list: which release's manifest names a file.

A patch file may be listed by more than one release (``patches/common/``, or a line that
points at another line's folder). A command working on one release never deletes or
overwrites such a file: ``rebase`` keeps a dropped one and writes a changed one under a new
name in its own folder. A manifest that does not load is read as text: a file whose path
appears in it counts as listed, so a broken manifest never lets a shared file go.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tkedistro.core.errors import ManifestError, UnsafePathError
from tkedistro.core.files import read_text
from tkedistro.core.workspace import Workspace, manifest_name
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import Manifest, list_release_names, load_release
from tkedistro.series.export import ExportResult, export_commits


def same_file(path: str) -> str:
    """``path`` as compared between manifests (``./patches/x`` and ``patches/x`` agree)."""
    return os.path.normpath(path)


def listed_elsewhere(ws: Workspace, release: str, files: list[str]) -> dict[str, list[str]]:
    """Each of ``files`` (repo-relative) that a release other than ``release`` lists, with
    the names of those releases, in version order."""
    wanted = {same_file(f): f for f in files}
    found: dict[str, list[str]] = {}
    if not wanted or not ws.releases_dir.is_dir():
        return found
    for other in list_release_names(ws.releases_dir):
        if other == release:
            continue
        for name in _listed_by(ws, other, wanted):
            found.setdefault(wanted[name], []).append(other)
    return found


def _listed_by(ws: Workspace, release: str, wanted: dict[str, str]) -> list[str]:
    """The keys of ``wanted`` that ``release``'s manifest lists."""
    try:
        listed = {same_file(e.file) for e in load_release(ws, release).patches}
    except ManifestError:  # unreadable: any mention counts, so nothing shared is lost
        try:
            text = read_text(ws.releases_dir / f"{release}.yaml")
        except (OSError, UnicodeDecodeError, UnsafePathError):
            return list(wanted)
        return [name for name, file in wanted.items() if file in text or name in text]
    return [name for name in wanted if name in listed]


@dataclass
class SharedExport:
    """What writing a series back did, and what it left alone because others list it."""

    result: ExportResult
    notes: list[str] = field(default_factory=list)


def export_keeping_shared(ws: Workspace, manifest: Manifest, repo: Repo,
                          base: str) -> SharedExport:
    """``export_commits`` that never deletes or rewrites a file another release lists.

    A listed file the series drops stays where it is; one whose commit changed is left as
    it is and the commit is written as a new file of this release (``export_commits`` sees
    a manifest without those entries, so it cannot touch them).
    """
    shared = listed_elsewhere(ws, manifest.release, [e.file for e in manifest.patches])
    if not shared:
        return SharedExport(export_commits(ws, manifest, repo, base))
    plan = export_commits(ws, manifest, repo, base, dry_run=True)
    held = {e.file: e for e in plan.entries
            if e.file in shared and e.action in ("removed", "rewritten")}
    if not held:
        return SharedExport(export_commits(ws, manifest, repo, base))
    kept = manifest.model_copy(
        update={"patches": tuple(e for e in manifest.patches if e.file not in held)})
    result = export_commits(ws, kept, repo, base)
    written = {e.commit: e.file for e in result.entries if e.commit}
    notes = []
    for file, entry in held.items():
        others = ", ".join(manifest_name(r) for r in shared[file])
        if entry.action == "removed":
            notes.append(f"{file} left the series of {manifest.release} but is kept: "
                         f"{others} lists it too")
        else:
            notes.append(f"{file} is kept as it was ({others} lists it too); the new version "
                         f"for {manifest.release} is {written.get(entry.commit, '?')}")
    return SharedExport(result, notes)
