"""``tkedistro new RELEASE --from OLD --onto TAG``: a new release line from an old one.

``releases/<new>.yaml`` is written from the old manifest's text (comments kept; only the
release name and the patch folder change), the old line's own patch files
(``patches/<old>/...``) are copied into ``patches/<new>/`` at the same relative paths, so
two copies never share a path, and the rebase flow takes it onto ``TAG``. A file the old
series lists from elsewhere (``patches/common/...``) is not copied: the new manifest lists
it in place, shared with the old line, and the rebase never deletes or rewrites it. No
existing file is ever overwritten. What it wrote is recorded (``linerecord.py``), so
``tkedistro drop`` (``drop.py``) can take the line away again and tell the maintainer's
later changes from the tool's.
"""

from __future__ import annotations

import re
from pathlib import Path

from tkedistro.core.errors import ManifestError
from tkedistro.core.files import create_exclusive, read_bytes, remove
from tkedistro.core.rebasemark import is_rebasing
from tkedistro.core.workspace import ReleaseLayout, Workspace
from tkedistro.model.manifest import Manifest, load_release, parse_manifest
from tkedistro.series.linerecord import LineRecord, line_files, write_record
from tkedistro.series.rebase import RebaseResult, rebase
from tkedistro.series.state import NewLine


def new_release(ws: Workspace, release: str, from_release: str, onto: str, *,
                commit: str | None = None, upstream: str | None = None) -> RebaseResult:
    """Create release line ``release`` from ``from_release``'s series, rebased onto ``onto``."""
    target = ws.manifest_path(release)  # checks the release name (1.21, 1.21-tke)
    shown = ws.rel(target)
    if target.exists():
        raise ManifestError([f"{shown}: already exists"],
                            hint=f"to move it to a new tag: tkedistro rebase {release} --onto TAG")
    old = load_release(ws, from_release)
    folder = ws.patches_dir(release)
    ws.repo_file(str(ReleaseLayout(release).patches), "patch folder", must_exist=False)
    copies = _copies(old, from_release)
    clash = [name for name in copies.values() if (folder / name).exists()]
    if clash:
        raise ManifestError([f"{ws.rel(folder / name)}: already exists" for name in clash])
    text = _retarget(old.path.read_text(encoding="utf-8"), from_release, release)
    parse_manifest(text, target, shown)  # never write a manifest that does not load
    made = NewLine(tuple(copies.values()), folder.is_dir())
    kept = tuple(line_files(ws, release)) if made.patches_dir_existed else ()
    state_existed = ws.state_dir(release).exists()
    written: list[str] = []  # what this run made, the only files it may take away again
    manifest_made = False
    try:
        for file, name in copies.items():
            _copy_new(ws, file, folder, name)
            written.append(name)
        if not create_exclusive(target, text.encode("utf-8")):
            raise ManifestError([f"{shown}: already exists"])
        manifest_made = True
        write_record(ws, LineRecord(release, from_release, line_files(ws, release, kept),
                                    made.patches_dir_existed, kept))
        result = rebase(ws, release, onto, commit=commit, upstream=upstream, new_line=made)
    except BaseException:
        if not is_rebasing(ws.release(release)):  # the rebase never began: leave no half-made line
            _remove(target if manifest_made else None, folder,
                    NewLine(tuple(written), made.patches_dir_existed))
            remove(ws.release(release).new_line_record)
            if not state_existed:  # the rebase's lock folder: no trace of the line is left
                remove(ws.state_dir(release))
        raise
    result.notes.insert(0, _made_note(ws, shown, folder, from_release, old, copies))
    return result


def _copies(old: Manifest, from_release: str) -> dict[str, str]:
    """Old series file -> its path in the new patch folder, for the old line's own files
    (those ``_retarget`` moves): the same path below the folder, so each copy is distinct."""
    prefix = f"{ReleaseLayout(from_release).patches}/"
    return {e.file: e.file[len(prefix):] for e in old.patches if e.file.startswith(prefix)}


def _copy_new(ws: Workspace, file: str, folder: Path, name: str) -> None:
    """Copy series file ``file`` to ``folder/name``, which must not exist yet."""
    data = read_bytes(ws.repo_file(file))
    if not create_exclusive(folder / name, data):
        raise ManifestError([f"{ws.rel(folder / name)}: already exists"])


def _made_note(ws: Workspace, shown: str, folder: Path, from_release: str, old: Manifest,
               copies: dict[str, str]) -> str:
    note = (f"created {shown} and {ws.rel(folder)}/ ({len(copies)} patches) from release "
            f"{from_release}; check go.version and builder.image for the new line")
    shared = [e.file for e in old.patches if e.file not in copies]
    if shared:
        note += f"; shared with {from_release}, not copied: " + ", ".join(dict.fromkeys(shared))
    return note


def _remove(manifest: Path | None, folder: Path, made: NewLine) -> None:
    if manifest is not None:
        remove(manifest)
    for name in made.files:
        remove(folder / name)
        _prune(folder, (folder / name).parent)
    if not made.patches_dir_existed:
        _prune(folder.parent, folder)


def _prune(top: Path, folder: Path) -> None:
    """Remove ``folder`` and its parents below ``top`` while they are empty."""
    while folder != top and folder.is_relative_to(top) and folder.is_dir() \
            and not any(folder.iterdir()):
        remove(folder)
        folder = folder.parent


def _retarget(text: str, old: str, new: str) -> str:
    """The old manifest's text with the release name and patch folder of ``new``."""
    text = re.sub(rf"^(release:\s*)([\"']?){re.escape(old)}\2", rf"\g<1>\g<2>{new}\g<2>", text,
                  count=1, flags=re.M)
    return re.sub(rf"(\bfile:\s*[\"']?)patches/{re.escape(old)}/", rf"\g<1>patches/{new}/", text)
