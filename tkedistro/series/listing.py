"""Which releases list a patch file: the rule that a command working on one release never
deletes or overwrites a file another release's manifest lists (``patches/common/``, or a line
that points at another line's folder). A manifest that does not load is read as text: a file
whose path appears in it counts as listed, so a broken manifest never lets a shared file go.
"""

from __future__ import annotations

import os

from tkedistro.core.errors import ManifestError, UnsafePathError
from tkedistro.core.files import read_text
from tkedistro.core.workspace import Workspace
from tkedistro.model.manifest import list_release_names, load_release


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
