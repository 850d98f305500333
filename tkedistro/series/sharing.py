"""Patch files several releases list: which release's manifest names a file.

``rebase`` never deletes or overwrites a file another release lists (``listing.py``): it
keeps a dropped one and writes a changed one under a new name in its own folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tkedistro.core.workspace import Workspace, manifest_name
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import Manifest
from tkedistro.series.export import ExportResult, export_commits
from tkedistro.series.listing import listed_elsewhere


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
