"""``tkedistro new RELEASE --from OLD --onto TAG``: a new release line from an old one.

``releases/<new>.yaml`` is written from the old manifest's text (comments kept; only the
release name and the patch folder change), the old series is copied into
``patches/<new>/`` under the same names, and the rebase flow takes it onto ``TAG``.
"""

from __future__ import annotations

import re
from pathlib import Path

from tkedistro.core.errors import ManifestError
from tkedistro.core.files import write_atomic
from tkedistro.core.rebasemark import is_rebasing
from tkedistro.core.workspace import ReleaseLayout, Workspace
from tkedistro.model.manifest import load_release, parse_manifest
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
    clash = [e.file for e in old.patches if (folder / _name(e.file)).exists()]
    if clash:
        raise ManifestError([f"{ws.rel(folder / _name(f))}: already exists" for f in clash])
    text = _retarget(old.path.read_text(encoding="utf-8"), from_release, release)
    parse_manifest(text, target, shown)  # never write a manifest that does not load
    made = NewLine(tuple(_name(e.file) for e in old.patches), folder.is_dir())
    try:
        for entry in old.patches:
            write_atomic(folder / _name(entry.file), ws.repo_file(entry.file).read_bytes())
        write_atomic(target, text.encode("utf-8"))
        result = rebase(ws, release, onto, commit=commit, upstream=upstream, new_line=made)
    except BaseException:
        if not is_rebasing(ws.release(release)):  # the rebase never began: leave no half-made line
            _remove(target, folder, made)
        raise
    result.notes.insert(0, f"created {shown} and {ws.rel(folder)}/ ({len(old.patches)} patches) "
                           f"from release {from_release}; check go.version and builder.image "
                           "for the new line")
    return result


def _remove(manifest: Path, folder: Path, made: NewLine) -> None:
    manifest.unlink(missing_ok=True)
    for name in made.files:
        (folder / name).unlink(missing_ok=True)
    if not made.patches_dir_existed and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _name(file: str) -> str:
    return file.rsplit("/", 1)[-1]


def _retarget(text: str, old: str, new: str) -> str:
    """The old manifest's text with the release name and patch folder of ``new``."""
    text = re.sub(rf"^(release:\s*)([\"']?){re.escape(old)}\2", rf"\g<1>\g<2>{new}\g<2>", text,
                  count=1, flags=re.M)
    return re.sub(rf"(\bfile:\s*[\"']?)patches/{re.escape(old)}/", rf"\g<1>patches/{new}/", text)
