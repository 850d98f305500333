"""What ``tkedistro new`` made for a release line: ``_src/.<release>.tkedistro/new-line.json``.

Written when ``new`` has copied the patch files and written the manifest, and again when the
line's first rebase finishes (``rebase.py``'s finalize rewrites the manifest and the patch
files). It is the proof that a release line is the tool's (``tkedistro drop`` removes nothing
else) and the base drop compares the manifest and patch files with: a file whose sha256
differs, or that is not recorded, is the maintainer's change and is backed up first.

Read back as data: a version, release names, repo paths under the release's own manifest or
patch folder, sha256 values; anything else is ``DamagedStateError`` (exit 17).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tkedistro.core import files
from tkedistro.core.errors import DamagedStateError
from tkedistro.core.workspace import RELEASE_NAME, Workspace, path_problem

RECORD_VERSION = 1
_SHA = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class LineRecord:
    """The release line ``release`` that ``new`` made from ``from_release``."""

    release: str
    from_release: str
    files: dict[str, str]  # repo-relative path -> sha256, the manifest included
    patches_dir_existed: bool
    kept: tuple[str, ...]  # files of the patch folder from before `new` (never touched)

    def to_json(self) -> dict[str, Any]:
        return {"version": RECORD_VERSION, "release": self.release, "from": self.from_release,
                "files": dict(sorted(self.files.items())),
                "patches_dir_existed": self.patches_dir_existed, "kept": list(self.kept)}


def line_files(ws: Workspace, release: str, kept: tuple[str, ...] = ()) -> dict[str, str]:
    """The manifest and every plain file under the release's patch folder (but ``kept``),
    repo-relative, with their sha256 as they are now."""
    paths = ws.release(release)
    found: dict[str, str] = {}
    candidates = [paths.manifest_file]
    folder = paths.patches_dir
    if folder.is_dir() and not files.is_symlink(folder):
        candidates += sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    for path in candidates:
        name = path.relative_to(ws.root).as_posix()
        if name in kept or files.is_symlink(path) or not path.is_file():
            continue
        found[name] = hashlib.sha256(files.read_bytes(path)).hexdigest()
    return found


def write_record(ws: Workspace, record: LineRecord) -> None:
    files.write_json(ws.release(record.release).new_line_record, record.to_json())


def refresh_record(ws: Workspace, release: str) -> None:
    """After the line's rebase rewrote them: record the manifest and patch files as they are
    (nothing when the line has no record: a release the tool did not make)."""
    record = load_record(ws, release)
    if record is not None:
        write_record(ws, LineRecord(release, record.from_release,
                                    line_files(ws, release, record.kept),
                                    record.patches_dir_existed, record.kept))


def load_record(ws: Workspace, release: str) -> LineRecord | None:
    """The record of release line ``release``; None when ``new`` did not make it."""
    paths = ws.release(release)
    shown = f"{paths.layout.state}/{paths.new_line_record.name}"
    try:
        data = json.loads(files.read_text(paths.new_line_record, max_bytes=16 << 20))
    except FileNotFoundError:
        return None
    except ValueError:
        data = None
    record = _parse(ws, release, data)
    if record is None:
        raise DamagedStateError(
            f"{shown}: not a version-{RECORD_VERSION} record of a release line tkedistro new "
            "wrote", hint=f"remove {paths.manifest_name}, {paths.layout.patches}/ and "
                          f"{paths.layout.src} by hand, or delete {shown} to keep the release")
    return record


def _parse(ws: Workspace, release: str, data: object) -> LineRecord | None:
    if not isinstance(data, dict) or data.get("version") != RECORD_VERSION \
            or data.get("release") != release:
        return None
    source, table, existed, kept = (data.get("from"), data.get("files"),
                                    data.get("patches_dir_existed"), data.get("kept"))
    if not (isinstance(source, str) and RELEASE_NAME.fullmatch(source)
            and isinstance(existed, bool) and isinstance(table, dict)
            and isinstance(kept, list) and all(isinstance(k, str) for k in kept)):
        return None
    paths = ws.release(release)
    own = (paths.manifest_name, f"{paths.layout.patches}/")
    for name, sha in table.items():
        if not (isinstance(name, str) and isinstance(sha, str) and len(sha) == 64
                and set(sha) <= _SHA and (name == own[0] or name.startswith(own[1]))
                and ".." not in Path(name).parts
                and path_problem(ws.root, name, must_exist=False) is None):
            return None
    return LineRecord(release, source, dict(table), existed, tuple(kept))
