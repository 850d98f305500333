"""``tkedistro patches import RELEASE --from DIR``: another distro's series into ours.

Plain ``git diff`` files (the tke-k8s-distro layout, ``NNNN-TKE-FIX-….patch``) are taken
in file-name order, given a subject from the file name and the required trailers (stated
by the file, inferred from its name and message, or defaulted and then listed in a
``Trailer-Defaulted`` trailer: ``series/importplan.py``), applied with ``git am --3way`` on
top of ``_src/<release>`` to make real commits, and written as ``git format-patch`` files
under the same names in ``patches/<release>/``. A file that cannot be applied as it is (a
binary diff without index lines, a failing hunk, an unparseable file) is reported by name,
with the earlier skipped patch it builds on when there is one; it is not added to the series
and not silently dropped.

Running the import again resumes it: a file already in the series (under its name, its name
renumbered by ``patches reorder``, or the same change by ``git patch-id``) is reported as
already imported and skipped; each missing one is inserted where it belongs
(``importplan.placement``: after the file before it in the folder, or where its number
falls among the series' numbers), and ``_src`` is rebuilt from the first inserted position:
reset to the commit of the patch before it, then the new patches and the listed ones after
them applied in the new order (the commits before it are kept). A listed patch that no
longer applies after an inserted one stops the import with nothing changed.

``--text-only`` imports the text part of a patch whose binary diffs lack index lines and
records the files left out in a ``Binary-Omitted`` trailer. What the import applied is
recorded as ``tkedistro source`` records it, so the next ``source`` run applies nothing
again. The new files, the manifest and that record are written as one series transaction
(``series/transaction.py``): an interrupted import leaves the series as before (and ``_src``
reset to where it started) or as after.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tkedistro.core import console, files
from tkedistro.core.errors import (
    ImportExistsError,
    PatchApplyError,
    PatchFormatError,
    WorkInProgressError,
)
from tkedistro.core.workspace import MAX_PATCH_BYTES, ReleaseLayout, Workspace, manifest_name
from tkedistro.git.mbox import crlf_note, diff_part, to_mbox, without_files
from tkedistro.git.patching import Patcher
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import Manifest, load_release
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
    placement,
)
from tkedistro.series.importstate import ImportRecord, recordable
from tkedistro.series.transaction import SeriesChange

Status = Literal["imported", "imported-3way", "failed", "already-imported"]


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
        if self.status == "already-imported":
            return [f"already imported  {self.source} (in the series as {self.file})"]
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

    @property
    def already(self) -> list[ImportEntry]:
        return [e for e in self.entries if e.status == "already-imported"]

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release, "from": self.from_dir,
                "patches": [e.to_json() for e in self.entries],
                "imported": len(self.entries) - len(self.failed) - len(self.already),
                "failed": [e.source for e in self.failed],
                "already_imported": {e.source: e.file for e in self.already},
                "defaulted": {e.file: e.defaulted for e in self.entries if e.defaulted},
                "omitted": {e.file: list(e.omitted) for e in self.entries if e.omitted}}

    def format_text(self) -> str:
        lines = [line for e in self.entries for line in e.format_text()]
        tried = len(self.entries) - len(self.already)
        if self.already and not tried:
            lines.append(f"{self.release}: all {len(self.already)} patch(es) of {self.from_dir} "
                         "are in the series already; nothing imported")
        else:
            lines.append(f"{self.release}: {tried - len(self.failed)} of {tried} patches "
                         f"imported from {self.from_dir}" + (
                             f"; {len(self.already)} already in the series" if self.already
                             else ""))
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


def _present(ws: Workspace, repo: Repo, manifest: Manifest,
             sources: list[Path]) -> dict[str, str]:
    """The files of ``--from`` already in the series (source name -> listed file): under
    their name, renumbered by ``patches reorder`` (the same name after the ``NNNN-``) or
    renamed with the same change (patch-id). A file of the patch folder the series does not
    list is in the way of one of the same name: exit 21."""
    folder = ws.patches_dir(manifest.release)
    listed = {Path(e.file).name: e.file for e in manifest.patches}
    unnumbered = {_unnumbered(name): file for name, file in listed.items()}
    found: dict[str, str] = {}
    clash = []
    for path in sources:
        if path.name in listed:
            found[path.name] = listed[path.name]
        elif (folder / path.name).exists():
            clash.append(f"{ws.rel(folder / path.name)}: already exists; not importing over it")
        elif (file := unnumbered.get(_unnumbered(path.name))) is not None:
            found[path.name] = file
    if clash:
        raise ImportExistsError(
            "\n".join(clash),
            hint="the series does not list it: move it out of the patch folder (or delete "
            "it), then import again",
        )
    return found | _same_change(ws, repo, [p for p in sources if p.name not in found],
                                [f for f in listed.values() if f not in found.values()])


def _same_change(ws: Workspace, repo: Repo, sources: list[Path],
                 files: list[str]) -> dict[str, str]:
    """Source name -> the listed file that holds the same change (by ``git patch-id``)."""
    if not sources or not files:
        return {}
    ids = {pid: file for file in files
           if (text := _text(ws.root / file)) and (pid := repo.patch_id(text)) is not None}
    return {path.name: ids[pid] for path in sources
            if (text := _text(path)) and (pid := repo.patch_id(text)) is not None
            and pid in ids}


def _text(path: Path) -> str:
    """A patch file's text; "" for what is no regular file of a patch's size (a FIFO, a
    device: never opened; the import reports it as ``parse_patch`` does)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_PATCH_BYTES:
            return ""
        return path.read_bytes().decode("utf-8", errors="surrogateescape")
    except OSError:
        return ""


def _unnumbered(name: str) -> str:
    """``0013a-TKE-FIX-x.patch`` -> ``TKE-FIX-x.patch`` (what ``patches reorder`` keeps)."""
    return re.sub(r"^[0-9]+[a-z]*-", "", name)


def _import_locked(ws: Workspace, repo: Repo, manifest: Manifest, from_dir: Path,
                   text_only: bool) -> ImportResult:
    """The import, under the release lock, from the manifest read under it: the files not
    in the series yet, each where it belongs (``placement``), ``_src`` rebuilt from the
    first of them."""
    release = manifest.release
    sources = sorted(p for p in from_dir.iterdir() if p.suffix in (".patch", ".diff"))
    folder = ws.patches_dir(release)
    ws.repo_file(str(ReleaseLayout(release).patches), "patch folder", must_exist=False)
    present = _present(ws, repo, manifest, sources)
    check_work_in_progress(ws, manifest, repo)
    order = placement([e.file for e in manifest.patches], [p.name for p in sources], present)
    entries = {name: ImportEntry(name, "already-imported", file=file)
               for name, file in present.items()}
    start = repo.head()
    record = recordable(ws, manifest, start)  # read before anything changes
    date = repo.commit_date(manifest.upstream.commit)
    run = _Run(ws, repo, folder, ws.release(release).import_patch, date, text_only)
    try:
        with transaction.staging(ws, release, start=start):
            run.rebuild(manifest, order, {p.name: p for p in sources if p.name not in present},
                        entries)
            result = ImportResult(release, str(from_dir), [entries[p.name] for p in sources])
            _commit(ws, manifest, result, run, order, start if record else None)
    except BaseException:
        _undo_rebuild(ws, repo, manifest, start)
        raise
    finally:
        files.remove(run.scratch)
    return result


def _undo_rebuild(ws: Workspace, repo: Repo, manifest: Manifest, start: str) -> None:
    """Put ``_src`` back at ``start`` after an import that rebuilt it from an earlier
    position and stopped before its series change committed (the manifest still lists the
    old series); an appending import is reset by the transaction (``staging``)."""
    if repo.head() == start or repo.is_ancestor(start, repo.head()):
        return
    if [e.file for e in load_release(ws, manifest.release).patches] != \
            [e.file for e in manifest.patches]:
        return  # committed: the series is the new one, and so is _src
    Patcher(repo).discard()
    repo.reset_hard(start)


def _commit(ws: Workspace, manifest: Manifest, result: ImportResult, run: _Run,
            order: list[str], start: str | None) -> None:
    """Swap the imported files in with the manifest listing them where ``order`` puts them,
    and (``start``: when ``source.json`` described the tree the import started from) the
    record of the commits from the first imported one on."""
    added = {e.source: e.file for e in result.entries
             if e.file and e.status != "already-imported"}
    if not added:
        return
    series = [added.get(name, name) for name in order if name in added or name in run.listed]
    record = None if start is None else ImportRecord(start, run.repo.head(), tuple(run.made))
    change = SeriesChange(writes={file: run.staged[file] for file in added.values()},
                          series=series, record=record)
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
    listed: set[str] = field(default_factory=set)  # the series' files before the import
    made: list[tuple[str, str, str]] = field(default_factory=list)  # subject, status, commit
    inserted: list[str] = field(default_factory=list)  # the new patches, so far

    def rebuild(self, manifest: Manifest, order: list[str], new: dict[str, Path],
                entries: dict[str, ImportEntry]) -> None:
        """Apply the new series ``order`` from its first new patch (``new``: name -> the
        source file) on the commit of the patch before it: the new patches imported (their
        entries in ``entries``), the listed ones after them applied again from their files."""
        listed = [e.file for e in manifest.patches]
        self.listed = set(listed)
        first = next((i for i, name in enumerate(order) if name not in self.listed), None)
        if first is None:
            return
        if first < len(listed):
            self._rewind(manifest, first)
        for name in order[first:]:
            if name in self.listed:
                self._again(manifest, name)
                continue
            entry = self.one(new[name])
            console.info(f"{name}: {entry.status} {entry.reason}".rstrip())
            entries[name] = entry
            if entry.file:
                self.made.append((entry.subject, entry.status, entry.commit))
                self.inserted.append(name)

    def _rewind(self, manifest: Manifest, first: int) -> None:
        """``_src`` back to the commit of the series' patch ``first - 1`` (the pinned one
        for 0): it must hold the series as listed, one commit a patch."""
        pinned, listed = manifest.upstream.commit, manifest.patches
        commits = self.repo.commits(pinned)
        if len(commits) != len(listed):
            raise WorkInProgressError(
                f"{self.repo.shown} holds {len(commits)} commit(s) above the pinned commit, "
                f"the series {len(listed)} patch(es); the import inserts patches at their "
                f"positions and needs the tree to hold the series as "
                f"{manifest_name(manifest.release)} lists it",
                hint=f"run `tkedistro source {manifest.release}`, then import again")
        self.repo.reset_hard(commits[first - 1] if first else pinned)

    def _again(self, manifest: Manifest, file: str) -> None:
        """Apply the listed patch ``file`` again, on top of the patches inserted before it."""
        index = [e.file for e in manifest.patches].index(file)
        where = f"{manifest_name(manifest.release)}: patches[{index}].file"
        path = self.ws.repo_file(file, where)
        patcher = Patcher(self.repo)
        entered = patcher.apply(path, quiet=True)
        if not entered.ok:
            hunks = patcher.failed_hunks(path)
            if patcher.in_progress():
                patcher.abort()
            raise PatchApplyError(
                f"{file} (patch {index + 1} of the series) does not apply once "
                f"{', '.join(self.inserted)} {'is' if len(self.inserted) == 1 else 'are'} "
                f"inserted before it: {'; '.join(hunks) or 'git am failed'}; nothing imported",
                details=entered.result.stderr.strip() or None,
                hint="the inserted patch changes what this one builds on: import it on its "
                "own after the series (move it to a folder of its own with a number after "
                "the last patch's), then put it in place with `tkedistro patches reorder`")
        head = self.repo.head()
        self.repo.note_made([head])
        self.made.append((self.repo.subject(head),
                          "imported-3way" if entered.three_way else "applied", head))

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
