"""``tkedistro patches import RELEASE --from DIR``: another distro's series into ours.

Plain ``git diff`` files (the tke-k8s-distro layout, ``NNNN-TKE-FIX-….patch``) are taken
in file-name order, given a subject from the file name and the required trailers (stated
by the file, inferred from its name and message, or defaulted and then listed in a
``Trailer-Defaulted`` trailer: ``series/importplan.py``), applied with ``git am --3way`` on
top of ``_src/<release>`` to make real commits, and written as ``git format-patch`` files
under the same names in ``patches/<release>/``. A file that cannot be applied as it is (a
binary diff without index lines, a failing hunk, an unparseable file) is reported by name,
with the earlier skipped patch it builds on when there is one; it is not added to the series
and not silently dropped. ``--text-only`` imports the text part of a patch whose binary diffs
lack index lines and records the files left out in a ``Binary-Omitted`` trailer. What the
import applied is recorded as ``tkedistro source`` records it, so the next ``source`` run
applies nothing again. The new files, the manifest and that record are written as one series
transaction (``series/transaction.py``): an interrupted import leaves the series as before
(and ``_src`` reset to where it started) or as after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tkedistro.core import console, files
from tkedistro.core.errors import ImportExistsError, PatchApplyError, PatchFormatError
from tkedistro.core.workspace import ReleaseLayout, Workspace, manifest_name
from tkedistro.git.mbox import crlf_note, diff_part, to_mbox, without_files
from tkedistro.git.patching import Patcher
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import Manifest
from tkedistro.model.patches import (
    OMITTED_TRAILER,
    PatchFile,
    message_with_trailers,
    parse_patch,
    subject_from_filename,
)
from tkedistro.series import transaction
from tkedistro.series.export import (
    check_work_in_progress,
    locked_release,
    prepared_tree,
    require_manifest,
)
from tkedistro.series.importplan import (
    Trailer,
    infer_trailers,
    marker_lines,
    needed_results,
    number_of,
)
from tkedistro.series.importstate import ImportRecord, recordable
from tkedistro.series.transaction import SeriesChange

Status = Literal["imported", "imported-3way", "failed"]


@dataclass(frozen=True)
class ImportEntry:
    source: str
    status: Status
    file: str | None = None
    subject: str = ""
    reason: str = ""
    trailers: tuple[Trailer, ...] = ()
    omitted: tuple[str, ...] = ()  # binary files left out (--text-only)
    needs: tuple[str, ...] = ()  # earlier patches, not imported, whose result it builds on
    commit: str = ""

    @property
    def defaulted(self) -> list[str]:
        return [t.key for t in self.trailers if t.how == "defaulted"]

    @property
    def unconfirmed(self) -> list[str]:
        """The trailers import inferred or defaulted, each with how (for the report)."""
        return [f"{t.key} ({t.how})" for t in self.trailers if t.how != "stated"]

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "status": self.status, "file": self.file,
                "subject": self.subject, "reason": self.reason,
                "trailers": [t.__dict__ for t in self.trailers],
                "defaulted": self.defaulted, "omitted": list(self.omitted),
                "needs": list(self.needs)}

    def format_text(self) -> list[str]:
        if self.status == "failed":
            return [f"NOT IMPORTED  {self.source}: {self.reason}"]
        how = " (3-way)" if self.status == "imported-3way" else ""
        lines = [f"imported{how}  {self.source} -> {self.file}",
                 "  " + "; ".join(t.describe() for t in self.trailers)]
        if self.omitted:
            lines.append(f"  text only: left out {len(self.omitted)} binary file(s): "
                         + ", ".join(self.omitted))
        return lines


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
                "patches": [e.to_json() for e in self.entries],
                "imported": len(self.entries) - len(self.failed),
                "failed": [e.source for e in self.failed],
                "defaulted": {e.file: e.defaulted for e in self.entries if e.defaulted},
                "omitted": {e.file: list(e.omitted) for e in self.entries if e.omitted}}

    def format_text(self) -> str:
        lines = [line for e in self.entries for line in e.format_text()]
        lines.append(f"{self.release}: {len(self.entries) - len(self.failed)} of "
                     f"{len(self.entries)} patches imported from {self.from_dir}")
        guessed = [e for e in self.entries if e.unconfirmed]
        if guessed:
            lines.append(f"{len(guessed)} patch(es) have trailers import inferred or defaulted "
                         "(listed in their Trailer-Inferred and Trailer-Defaulted trailers); "
                         "check each value (fix it in the patch file if wrong), then run "
                         f"`tkedistro patches confirm {self.release}`; `tkedistro validate` "
                         "warns until then:")
            lines += [f"  {e.file}: {', '.join(e.unconfirmed)}" for e in guessed]
        return "\n".join(lines)

    def raise_for_problems(self) -> None:
        if not self.failed:
            return
        needs = [f"{number_of(e.source)} needs the result of "
                 f"{', '.join(number_of(n) for n in e.needs)} (not imported)"
                 for e in self.failed if e.needs]
        raise PatchApplyError(
            f"{len(self.failed)} patch(es) could not be imported as they are: "
            + ", ".join(e.source for e in self.failed)
            + "".join(f"\n  {line}" for line in needs),
            hint="a patch whose binary diffs lack index lines: import its text part with "
            "--text-only; one that needs an earlier patch: import that one first; else port "
            f"them by hand in _src, commit them and run `tkedistro patches export "
            f"{self.release} --kind K --upstream-ref URL|none --upstream-status S` (the "
            "trailers a commit's message lacks)",
        )


def import_series(ws: Workspace, release: str, from_dir: Path, *,
                  text_only: bool = False) -> ImportResult:
    """Import every ``*.patch``/``*.diff`` of ``from_dir`` (name order) onto ``_src``."""
    require_manifest(ws, release)
    if not from_dir.is_dir():
        what = "no such folder" if not from_dir.exists() else "not a folder"
        raise PatchFormatError([f"{from_dir}: {what}; --from names a folder of patch files"])
    repo = prepared_tree(ws, release, "to import onto")
    with locked_release(ws, release) as manifest:
        return _import_locked(ws, repo, manifest, from_dir, text_only)


def _refuse_existing(ws: Workspace, manifest: Manifest, files: list[Path]) -> None:
    """A file of ``--from`` already in the patch folder or the series (under its name, or
    renumbered by ``patches reorder``: the same name after the ``NNNN-``): exit 21."""
    folder = ws.patches_dir(manifest.release)
    listed = {Path(e.file).name: i for i, e in enumerate(manifest.patches)}
    unnumbered = {_unnumbered(name): i for name, i in listed.items()}
    yaml = manifest_name(manifest.release)
    clash = []
    for path in files:
        where = ws.rel(folder / path.name)
        if path.name in listed:
            clash.append(f"{where}: already in the series ({yaml} patches[{listed[path.name]}]);"
                         " not importing over it")
        elif (folder / path.name).exists():
            clash.append(f"{where}: already exists; not importing over it")
        elif (index := unnumbered.get(_unnumbered(path.name))) is not None:
            clash.append(f"{path.name}: already in the series as {manifest.patches[index].file} "
                         f"({yaml} patches[{index}]); not importing it again")
    if clash:
        raise ImportExistsError(
            "\n".join(clash),
            hint="import only the files not imported yet (move the others out of the --from "
            "folder); to import one again, delete its patch file and manifest entry first",
        )


def _unnumbered(name: str) -> str:
    """``0013-TKE-FIX-x.patch`` -> ``TKE-FIX-x.patch`` (what ``patches reorder`` keeps)."""
    return re.sub(r"^[0-9]+-", "", name)


def _import_locked(ws: Workspace, repo: Repo, manifest: Manifest, from_dir: Path,
                   text_only: bool) -> ImportResult:
    """The import, under the release lock, from the manifest read under it."""
    release = manifest.release
    sources = sorted(p for p in from_dir.iterdir() if p.suffix in (".patch", ".diff"))
    folder = ws.patches_dir(release)
    ws.repo_file(str(ReleaseLayout(release).patches), "patch folder", must_exist=False)
    _refuse_existing(ws, manifest, sources)
    result = ImportResult(release, str(from_dir))
    check_work_in_progress(ws, manifest, repo)
    start = repo.head()
    record = recordable(ws, manifest, start)  # read before anything changes
    date = repo.commit_date(manifest.upstream.commit)
    run = _Run(ws, repo, folder, ws.release(release).import_patch, date, text_only)
    try:
        with transaction.staging(ws, release, start=start):
            for path in sources:
                entry = run.one(path)
                console.info(f"{path.name}: {entry.status} {entry.reason}".rstrip())
                result.entries.append(entry)
            _commit(ws, manifest, result, run, start if record else None)
    finally:
        files.remove(run.scratch)
    return result


def _commit(ws: Workspace, manifest: Manifest, result: ImportResult, run: _Run,
            start: str | None) -> None:
    """Swap the imported files in with the manifest listing them, and (``start``: when
    ``source.json`` described the tree the import started from) the record of their commits."""
    added = [e for e in result.entries if e.file]
    if not added:
        return
    record = None if start is None else ImportRecord(
        start, run.repo.head(), tuple((e.subject, e.status, e.commit) for e in added))
    change = SeriesChange(writes={e.file: run.staged[e.file] for e in added if e.file},
                          series=[*(e.file for e in manifest.patches),
                                  *(e.file for e in added if e.file)],
                          record=record)
    transaction.commit(ws, manifest, change, "patches import")


@dataclass
class _Run:
    """One import's patches, applied in order; remembers the ones not imported."""

    ws: Workspace
    repo: Repo
    folder: Path
    scratch: Path
    date: str
    text_only: bool
    skipped: list[tuple[str, str]] = field(default_factory=list)  # name, diff text
    staged: dict[str, bytes] = field(default_factory=dict)  # the new patch files' bytes
    diff: str = ""  # the diff of the patch being imported, once it parsed

    def one(self, path: Path) -> ImportEntry:
        self.diff = ""
        entry = self._apply(path)
        if entry.status == "failed" and self.diff:
            self.skipped.append((path.name, self.diff))
        return entry

    def _apply(self, path: Path) -> ImportEntry:
        try:
            patch = parse_patch(path, path.name)
        except PatchFormatError as exc:
            return ImportEntry(path.name, "failed", reason=exc.message)
        diff = diff_part(path.read_bytes().decode("utf-8", errors="surrogateescape"))
        self.diff = diff
        omitted = patch.binary_without_index
        if omitted and not self.text_only:
            return ImportEntry(path.name, "failed", reason="binary diff without full index "
                               f"lines (git cannot apply it): {', '.join(omitted)}; "
                               "--text-only imports the rest")
        if omitted:
            diff = without_files(diff, set(omitted))
            if "diff --git " not in diff:
                return ImportEntry(path.name, "failed", reason="only binary diffs without "
                                   f"full index lines: {', '.join(omitted)}; nothing to import")
        subject = patch.subject or subject_from_filename(path)
        trailers = infer_trailers(patch, path.name)
        mail = mail_of(patch, subject, self.date, trailers, diff, omitted)
        files.write_atomic(self.scratch, mail.encode("utf-8", "surrogateescape"))
        return self._am(path, subject, tuple(trailers), diff, omitted)

    def _am(self, path: Path, subject: str, trailers: tuple[Trailer, ...], diff: str,
            omitted: tuple[str, ...]) -> ImportEntry:
        repo, before, patcher = self.repo, self.repo.head(), Patcher(self.repo)
        entered = patcher.apply(self.scratch, quiet=True)
        res = entered.result
        if not entered.ok:
            if patcher.in_progress():
                patcher.abort()
            return self._failed(path, subject, res.stderr, diff)
        if repo.head() == before:
            return ImportEntry(path.name, "failed", subject=subject,
                               reason="changes nothing (already in the tree)")
        repo.note_made([repo.head()])
        target = self.ws.rel(self.folder / path.name)
        self.staged[target] = repo.format_patch("HEAD").encode("utf-8", "surrogateescape")
        status: Status = "imported-3way" if entered.three_way else "imported"
        return ImportEntry(path.name, status, file=target, subject=subject,
                           trailers=trailers, omitted=omitted, commit=repo.head())

    def _failed(self, path: Path, subject: str, stderr: str, diff: str) -> ImportEntry:
        hunks = Patcher(self.repo).failed_hunks(self.scratch)
        reason = "; ".join(hunks) or (stderr.strip().splitlines() or ["git am failed"])[0]
        if crlf := crlf_note(path, path.name):
            reason += f"; {crlf}"
        needs = needed_results(self.repo.path, diff, self.skipped)
        if needs:
            reason += (f"; {number_of(path.name)} needs the result of "
                       f"{', '.join(number_of(n) for n in needs)} (not imported)")
        return ImportEntry(path.name, "failed", subject=subject, reason=f"does not apply: {reason}",
                           needs=tuple(needs))


def mail_of(patch: PatchFile, subject: str, date: str, trailers: list[Trailer], diff: str,
            omitted: tuple[str, ...] = ()) -> str:
    """A ``git am``-able mail of ``patch`` with ``subject`` and ``trailers`` (plus the
    ``Binary-Omitted``, ``Trailer-Inferred`` and ``Trailer-Defaulted`` ones that apply)
    around ``diff``."""
    lines = [(t.key, t.value) for t in trailers]
    if omitted:
        lines.append((OMITTED_TRAILER, ", ".join(omitted)))
    lines += [(marker.key, marker.value) for marker in marker_lines(trailers)]
    message = message_with_trailers(patch.body, lines)
    if patch.format == "mbox":
        author = f"{patch.author_name or ''} <{patch.author_email}>"
        return to_mbox(diff, subject, message, author=author, date=patch.date or date)
    return to_mbox(diff, subject, message, date=date)
