"""``tkedistro patches import RELEASE --from DIR``: another distro's series into ours.

Plain ``git diff`` files (the tke-k8s-distro layout, ``NNNN-TKE-FIX-….patch``) are taken
in file-name order, given a subject from the file name and the required trailers (filled
from the file's own text where it says more), applied with ``git am --3way`` on top of
``_src/<release>`` to make real commits, and written as ``git format-patch`` files under the
same names in ``patches/<release>/``. A file that cannot be applied as it is (a binary diff
without index lines, a failing hunk, an unparseable file) is reported by name; it is not
added to the series and not silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tkedistro.core import console
from tkedistro.core.errors import PatchApplyError, PatchFormatError
from tkedistro.core.files import write_atomic
from tkedistro.core.workspace import Workspace
from tkedistro.git.mbox import crlf_note, diff_part, failed_hunks, to_mbox
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import Manifest, update_pin
from tkedistro.model.patches import REQUIRED_TRAILERS, PatchFile, parse_patch, subject_from_filename
from tkedistro.series.export import (
    check_work_in_progress,
    locked_release,
    prepared_tree,
    require_manifest,
)

Status = Literal["imported", "imported-3way", "failed"]
_URL = re.compile(r"https://github\.com/kubernetes/kubernetes/(pull|commit)/[0-9a-f]+")


@dataclass(frozen=True)
class ImportEntry:
    source: str
    status: Status
    file: str | None = None
    subject: str = ""
    reason: str = ""


@dataclass
class ImportResult:
    release: str
    from_dir: str
    entries: list[ImportEntry] = field(default_factory=list)

    @property
    def failed(self) -> list[ImportEntry]:
        return [e for e in self.entries if e.status == "failed"]

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release, "from": self.from_dir,
                "patches": [e.__dict__ for e in self.entries],
                "imported": len(self.entries) - len(self.failed),
                "failed": [e.source for e in self.failed]}

    def format_text(self) -> str:
        lines = []
        for e in self.entries:
            if e.status == "failed":
                lines.append(f"NOT IMPORTED  {e.source}: {e.reason}")
            else:
                how = " (3-way)" if e.status == "imported-3way" else ""
                lines.append(f"imported{how}  {e.source} -> {e.file}")
        lines.append(f"{self.release}: {len(self.entries) - len(self.failed)} of "
                     f"{len(self.entries)} patches imported from {self.from_dir}")
        return "\n".join(lines)

    def raise_for_problems(self) -> None:
        if self.failed:
            raise PatchApplyError(
                f"{len(self.failed)} patch(es) could not be imported as they are: "
                + ", ".join(e.source for e in self.failed),
                hint="fix them (e.g. regenerate binary diffs with `git diff --binary "
                "--full-index`) and import them again, or port them by hand in _src "
                f"and run `tkedistro patches export {self.release}`",
            )


def import_series(ws: Workspace, release: str, from_dir: Path) -> ImportResult:
    """Import every ``*.patch``/``*.diff`` of ``from_dir`` (name order) onto ``_src``."""
    require_manifest(ws, release)
    if not from_dir.is_dir():
        what = "no such folder" if not from_dir.exists() else "not a folder"
        raise PatchFormatError([f"{from_dir}: {what}; --from names a folder of patch files"])
    repo = prepared_tree(ws, release, "to import onto")
    with locked_release(ws, release) as manifest:
        return _import_locked(ws, repo, manifest, from_dir)


def _import_locked(ws: Workspace, repo: Repo, manifest: Manifest,
                   from_dir: Path) -> ImportResult:
    """The import, under the release lock, from the manifest read under it."""
    release = manifest.release
    files = sorted(p for p in from_dir.iterdir() if p.suffix in (".patch", ".diff"))
    folder = ws.patches_dir(release)
    ws.repo_file(f"patches/{release}", "patch folder", must_exist=False)  # written into
    clash = [p.name for p in files if (folder / p.name).exists()]
    if clash:
        raise PatchFormatError([f"{ws.rel(folder / n)}: already exists; not importing over it"
                                for n in clash])
    result = ImportResult(release, str(from_dir))
    check_work_in_progress(ws, manifest, repo)
    date = repo.commit_date(manifest.upstream.commit)
    scratch = ws.state_dir(release) / "import.patch"
    for path in files:
        entry = _import_one(ws, repo, path, folder, scratch, date)
        console.info(f"{path.name}: {entry.status} {entry.reason}".rstrip())
        result.entries.append(entry)
    scratch.unlink(missing_ok=True)
    added = [e.file for e in result.entries if e.file]
    if added:
        update_pin(manifest.path, tag=manifest.upstream.tag, commit=manifest.upstream.commit,
                   patch_files=[*(e.file for e in manifest.patches), *added])
    return result


def _import_one(ws: Workspace, repo: Repo, path: Path, folder: Path, scratch: Path,
                date: str) -> ImportEntry:
    try:
        patch = parse_patch(path, path.name)
    except PatchFormatError as exc:
        return ImportEntry(path.name, "failed", reason=exc.message)
    if patch.binary_without_index:
        return ImportEntry(path.name, "failed", reason="binary diff without full index lines "
                           f"(git cannot apply it): {', '.join(patch.binary_without_index)}")
    subject = patch.subject or subject_from_filename(path)
    write_atomic(scratch, mail_of(patch, subject, date).encode("utf-8", "surrogateescape"))
    before = repo.head()
    res = repo.am(scratch, quiet=True)
    if res.returncode != 0:
        if repo.am_in_progress():
            repo.am_abort()
        hunks = failed_hunks(repo.path, scratch)
        reason = "; ".join(hunks) or (res.stderr.strip().splitlines() or ["git am failed"])[0]
        crlf = crlf_note(path, path.name)
        return ImportEntry(path.name, "failed", subject=subject,
                           reason=f"does not apply: {reason}" + (f"; {crlf}" if crlf else ""))
    if repo.head() == before:
        return ImportEntry(path.name, "failed", subject=subject,
                           reason="changes nothing (already in the tree)")
    repo.note_made([repo.head()])
    target = folder / path.name
    write_atomic(target, repo.format_patch("HEAD").encode("utf-8", "surrogateescape"))
    status: Status = "imported-3way" if "3-way" in res.stdout + res.stderr else "imported"
    return ImportEntry(path.name, status, file=ws.rel(target), subject=subject)


def fill_trailers(patch: PatchFile) -> dict[str, str]:
    """The required trailers: the file's own, else what its text says, else defaults."""
    url = _URL.search(patch.body)
    known = {
        "Patch-Kind": "backport" if url else "carry",
        "Upstream-Ref": url.group(0) if url else "none",
        "Upstream-Status": ("merged" if url and url.group(1) == "commit"
                            else "submitted" if url else "not-submitted"),
    }
    return {key: patch.trailers.get(key) or known[key] for key in REQUIRED_TRAILERS}


def mail_of(patch: PatchFile, subject: str, date: str) -> str:
    """A ``git am``-able mail of ``patch`` with ``subject`` and the required trailers."""
    text = patch.path.read_bytes().decode("utf-8", errors="surrogateescape")
    trailers = fill_trailers(patch)
    body_lines = [line for line in patch.body.splitlines()
                  if line.split(":", 1)[0] not in trailers]
    body = "\n".join(body_lines).strip()
    message = (f"{body}\n\n" if body else "") + "\n".join(f"{k}: {v}" for k, v in trailers.items())
    if patch.format == "mbox":
        author = f"{patch.author_name or ''} <{patch.author_email}>"
        return to_mbox(diff_part(text), subject, message, author=author, date=patch.date or date)
    return to_mbox(diff_part(text), subject, message, date=date)
