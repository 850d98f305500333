"""Write the commits of ``_src/<release>`` (base..HEAD) back as the release's patch files.

Deterministic and minimal: a commit whose message, author and diff equal its existing
file's keeps that file's bytes; only changed patches are rewritten; existing names and
numbers stay; a new commit gets the next free number and a name from its subject.
Files are written by ``git format-patch --no-signature --zero-commit --full-index``
(no tool-version footer, no changing hash, index lines kept so 3-way works), all at once
with the manifest as one series transaction (``series/transaction.py``): an interrupted
export leaves the series as before or as after.

Export never writes a patch ``validate`` or ``source`` would refuse for its trailers: a new
or changed commit whose message lacks a required trailer (``Patch-Kind``, ``Upstream-Ref``,
``Upstream-Status``) gets the values of ``--kind``/``--upstream-ref``/``--upstream-status``
(``TrailerFill``; they fill only what is missing, for every such commit; a trailer in the
message wins). The commit in ``_src`` is reworded to carry them (``Repo.reword``: same tree,
author and dates; the index and work tree untouched), so it matches its file afterwards.
A commit still lacking one, or with a value the rules refuse, stops the export before
anything is written (``PatchFormatError``, exit 4), naming the commit and the flags to give.
Commits that need different values: put the trailers in each commit's message in ``_src``
(``git commit --amend``, ``git rebase -i``) and export again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tkedistro.core import console, files
from tkedistro.core.errors import PatchFormatError, RebaseStateError, WorkInProgressError
from tkedistro.core.locks import release_lock
from tkedistro.core.rebasemark import refuse_if_rebasing
from tkedistro.core.workspace import ReleaseLayout, Workspace, manifest_name
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import Manifest, load_release
from tkedistro.model.patches import (
    EXPORT_FLAGS_HINT,
    KINDS,
    REQUIRED_TRAILERS,
    STATUSES,
    message_with_trailers,
    parse_patch,
    parse_trailers,
    required_trailer_problems,
    subject_from_filename,
    trailer_value_problem,
)
from tkedistro.series import transaction
from tkedistro.series.transaction import SeriesChange
from tkedistro.source.record import record_exported
from tkedistro.source.state import recorded_commits

Action = Literal["unchanged", "rewritten", "added", "removed"]


@dataclass(frozen=True)
class ExportEntry:
    file: str
    subject: str
    action: Action
    commit: str = ""  # the commit it comes from ("" for a removed patch)


@dataclass
class ExportResult:
    release: str
    entries: list[ExportEntry] = field(default_factory=list)
    bytes_written: int = 0
    manifest_updated: bool = False
    # the plan: repo-relative file -> new bytes, and the files to delete
    writes: dict[str, bytes] = field(default_factory=dict, repr=False)
    deletes: list[str] = field(default_factory=list, repr=False)

    @property
    def series(self) -> list[str]:
        return [e.file for e in self.entries if e.action != "removed"]

    def changed(self) -> bool:
        return any(e.action != "unchanged" for e in self.entries) or self.manifest_updated

    def to_json(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "patches": [{"file": e.file, "subject": e.subject, "action": e.action}
                        for e in self.entries],
            "bytes_written": self.bytes_written,
            "manifest_updated": self.manifest_updated,
        }

    def format_text(self) -> str:
        lines = [f"{e.action:<10} {e.file}  {e.subject}" for e in self.entries]
        counts = {a: sum(e.action == a for e in self.entries)
                  for a in ("unchanged", "rewritten", "added", "removed")}
        summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
        lines.append(f"{self.release}: {summary or 'no patches'}; "
                     f"{self.bytes_written} bytes written")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Commit:
    sha: str
    author: str
    subject: str
    body: str
    text: str  # git format-patch output


@dataclass(frozen=True)
class _Existing:
    file: str
    subject: str
    key: tuple[str, str, str, str] | None  # author, subject, body, diff (None: unreadable)
    text: str


FLAGS = {"Patch-Kind": "--kind", "Upstream-Ref": "--upstream-ref",
         "Upstream-Status": "--upstream-status"}
_FLAG_VALUES = {"Patch-Kind": "|".join(KINDS), "Upstream-Ref": "URL|none",
                "Upstream-Status": "|".join(STATUSES)}


@dataclass(frozen=True)
class TrailerFill:
    """What ``patches export --kind/--upstream-ref/--upstream-status`` give: the values of
    the required trailers a new or changed commit lacks (None: the flag was not given)."""

    kind: str | None = None
    upstream_ref: str | None = None
    upstream_status: str | None = None

    def values(self) -> dict[str, str]:
        given = (self.kind, self.upstream_ref, self.upstream_status)
        return {key: value for key, value in zip(REQUIRED_TRAILERS, given, strict=True)
                if value is not None}

    def check(self) -> None:
        """Each given value against the rules ``validate`` applies (exit 4 naming the flag)."""
        problems = [f"{FLAGS[key]} {value!r}: {problem}"
                    for key, value in self.values().items()
                    if (problem := trailer_value_problem(key, value)) is not None]
        if problems:
            raise PatchFormatError(problems, hint="patch format: docs/patches.md")


def export_series(ws: Workspace, release: str,
                  fill: TrailerFill | None = None) -> ExportResult:
    """``tkedistro patches export RELEASE``: commits base..HEAD of ``_src`` into patch files,
    each new or changed one completed with the trailers it lacks from ``fill`` (or refused).

    Holds the release lock: ``patches/`` and the manifest are rewritten from ``_src``.
    """
    fill = fill or TrailerFill()
    fill.check()
    require_manifest(ws, release)
    repo = prepared_tree(ws, release, "to export from")
    with locked_release(ws, release) as manifest:
        if repo.tracked_changes():
            console.warn(f"{repo.shown} has uncommitted changes; they are not exported "
                         "(commit them first)")
        result = export_commits(ws, manifest, repo, manifest.upstream.commit, dry_run=True)
        if complete_commits(repo, result, fill, manifest.upstream.commit):
            result = export_commits(ws, manifest, repo, manifest.upstream.commit,
                                    dry_run=True)
        if result.writes or result.deletes or result.manifest_updated:
            with transaction.staging(ws, release):
                transaction.commit(ws, manifest, SeriesChange(
                    result.writes, result.deletes,
                    result.series if result.manifest_updated else None), "patches export")
        # Each exported commit is now exactly what its patch file says (written just above,
        # under the lock): it is the series, so `source` and `build` may replace it with the
        # commit the file makes. Recorded by SHA in the tool's own ledger (``note_made``), as
        # the commits the tool makes are; a later amend makes a new, unrecorded SHA, which is
        # refused again until exported. (Matching patch-ids in `source` instead would also
        # take a commit whose message differs from its file, and lose that message.)
        repo.note_made(e.commit for e in result.entries if e.commit)
        # and they are what `source` would make from the files: recorded as its own, so the
        # next `source` finds the tree current (``source/record.py``)
        record_exported(ws, release, [(e.file, e.subject, e.commit)
                                      for e in result.entries if e.commit])
    return result


def complete_commits(repo: Repo, result: ExportResult, fill: TrailerFill, base: str) -> bool:
    """Reword the new or changed commits of ``result`` that lack required trailers with the
    values of ``fill`` (True when any was); refuse, before anything is written, a commit
    that still lacks one or whose trailers the rules refuse."""
    messages: dict[str, str] = {}
    problems: list[str] = []
    lacking: set[str] = set()  # the trailers some commit still lacks (the flags to give)
    for entry in result.entries:
        if entry.action not in ("added", "rewritten"):
            continue
        _, subject, body = repo.metadata(entry.commit)
        stated = {key.lower(): value for key, value in parse_trailers(body).items()}
        missing = [key for key in REQUIRED_TRAILERS if not stated.get(key.lower())]
        given = {**fill.values(), **_written_elsewhere(body)}  # the message's own wins
        added = [(key, given[key]) for key in missing if key in given]
        lacking |= {key for key in missing if key not in given}
        have = stated | {key.lower(): value for key, value in added}
        problems += required_trailer_problems(
            _lookup(have), f"commit {entry.commit[:12]} {subject!r} (for {entry.file})")
        if added:
            messages[entry.commit] = f"{subject}\n\n{message_with_trailers(body, added)}"
    if problems:
        raise PatchFormatError([*problems, "nothing was exported"],
                               hint=_fill_hint(result.release, repo.shown, lacking))
    if messages:
        repo.reword(base, messages)
        console.info(f"{repo.shown}: gave {len(messages)} commit(s) the trailers they lacked; "
                     "each commit now matches its patch file")
    return bool(messages)


def _written_elsewhere(body: str) -> dict[str, str]:
    """Required trailers a commit message writes outside its last paragraph (where they
    are not read as trailers): export moves them into the trailer block."""
    found: dict[str, str] = {}
    for paragraph in re.split(r"\n\s*\n", body)[:-1]:
        for key, value in parse_trailers(paragraph).items():
            name = next((k for k in REQUIRED_TRAILERS if k.lower() == key.lower()), None)
            if name and value:
                found.setdefault(name, value)
    return found


def _lookup(trailers: dict[str, str]) -> Callable[[str], str | None]:
    return lambda key: trailers.get(key.lower())


def _fill_hint(release: str, shown: str, lacking: set[str]) -> str:
    keys = [key for key in REQUIRED_TRAILERS if key in lacking] or list(REQUIRED_TRAILERS)
    flags = " ".join(f"{FLAGS[key]} {_FLAG_VALUES[key]}" for key in keys)
    return (f"run `tkedistro patches export {release} {flags}` (the flags fill the trailers "
            "each new or changed commit lacks), or write the trailers into each commit's "
            f"message in {shown} (`git commit --amend`, `git rebase -i`) and export again")


def require_manifest(ws: Workspace, release: str) -> None:
    """An unknown release is said before anything else (a stat; the manifest is read under
    the release lock, where what is read is what gets written)."""
    if not ws.manifest_path(release).is_file():
        load_release(ws, release)  # raises what is wrong: no such manifest, a folder, ...


def prepared_tree(ws: Workspace, release: str, purpose: str) -> Repo:
    """``_src/<release>``, which export and import need prepared (``purpose``: "to export
    from", "to import onto")."""
    repo = Repo(ws.src_dir(release), ws.rel(ws.src_dir(release)))
    if not repo.exists():
        raise WorkInProgressError(f"{repo.shown}: no prepared source tree {purpose}",
                                  hint=f"run: tkedistro source {release}")
    return repo


@contextmanager
def locked_release(ws: Workspace, release: str) -> Iterator[Manifest]:
    """Hold the release lock, finish (or drop) the series change an interrupted run left,
    refuse a release mid-rebase and read its manifest under the lock: what is checked and
    read here is what the caller writes back."""
    with release_lock(ws, release):
        transaction.finish_pending(ws, release)
        refuse_if_rebasing(ws.release(release))
        yield load_release(ws, release)


def check_work_in_progress(ws: Workspace, manifest: Manifest, repo: Repo) -> None:
    """Refuse when ``_src`` holds work a rebase or an import would lose.

    The rule is ``Repo.work_in_progress``; a commit the patch files hold unchanged is safe
    too, and one the tool made from a file that has changed since is merely stale.
    """
    shown, pinned = repo.shown, manifest.upstream.commit
    based = repo.rev("HEAD") is not None and repo.is_ancestor(pinned, "HEAD")
    pending = export_commits(ws, manifest, repo, pinned, dry_run=True).entries if based else []
    safe = {e.commit for e in pending if e.action == "unchanged"}
    work = repo.work_in_progress([pinned], repo.made() | recorded_commits(
        ws.release(manifest.release)) | safe)
    if work.operation or work.changed:
        what = work.operation or f"uncommitted changes in {len(work.changed)} file(s)"
        raise WorkInProgressError(
            f"{shown} holds work in progress ({what}); a rebase would lose it",
            details="\n".join(f"  {path}" for path in work.changed[:20]) or None,
            hint=(f"commit them and run `tkedistro patches export {manifest.release}` "
                  f"({EXPORT_FLAGS_HINT}), or discard them with "
                  f"`git -C {shown} reset --hard && git -C {shown} clean -fd`"),
        )
    if repo.rev("HEAD") is not None and not based:
        raise WorkInProgressError(
            f"{shown} is not based on the pinned commit {pinned[:12]}",
            hint=f"run `tkedistro source {manifest.release}` first",
        )
    foreign = {sha for sha, _ in work.commits}
    if foreign:
        raise WorkInProgressError(
            f"{shown} holds commits that are not in the patch files; a rebase would lose them",
            details="\n".join(f"  {e.action}: {e.file}" for e in pending if e.commit in foreign),
            hint=f"run `tkedistro patches export {manifest.release}` first, then rebase "
                 f"({EXPORT_FLAGS_HINT})",
        )


def export_commits(ws: Workspace, manifest: Manifest, repo: Repo, base: str,
                   *, dry_run: bool = False) -> ExportResult:
    """Match commits to existing patch files and write only what changed (``dry_run``:
    only plan it, in ``writes`` and ``deletes``, for the caller to apply).

    ``manifest_updated`` says whether the series (names or order) differs from the
    manifest's; writing the manifest is the caller's business.
    """
    if repo.rev(base) is None or not repo.is_ancestor(base, "HEAD"):
        raise RebaseStateError(
            f"{repo.shown}: HEAD is not based on {base[:12]} (the pinned upstream commit)",
            hint=f"run: tkedistro source {manifest.release}",
        )
    where = manifest_name(manifest.release)
    for index, listed in enumerate(manifest.patches):  # export writes and deletes these
        ws.repo_file(listed.file, f"{where}: patches[{index}].file", must_exist=False)
    ws.repo_file(str(ReleaseLayout(manifest.release).patches), "patch folder", must_exist=False)
    commits = _commits(repo, base)
    existing = [_existing(ws, e.file, e.subject) for e in manifest.patches]
    pairs = _match(repo, commits, existing)
    result = ExportResult(manifest.release)
    folder = ws.patches_dir(manifest.release)
    next_no = _next_number(folder, [e.file for e in existing])
    for commit in commits:
        old = pairs.get(commit.sha)
        if old is not None and _same(old.key, _key_of_commit(commit)):
            result.entries.append(ExportEntry(old.file, commit.subject, "unchanged", commit.sha))
            continue
        if old is None:
            path = folder / f"{next_no:04d}-{_slug(commit.subject)}.patch"
            next_no += 1
            entry = ExportEntry(ws.rel(path), commit.subject, "added", commit.sha)
        else:
            entry = ExportEntry(old.file, commit.subject, "rewritten", commit.sha)
        data = commit.text.encode("utf-8", errors="surrogateescape")
        result.writes[entry.file] = data
        result.bytes_written += len(data)
        result.entries.append(entry)
    used = {e.file for e in pairs.values()}
    for old in existing:
        if old.file not in used:
            result.entries.append(ExportEntry(old.file, old.subject, "removed"))
            result.deletes.append(old.file)
    result.manifest_updated = result.series != [e.file for e in manifest.patches]
    if not dry_run:
        for name, data in result.writes.items():
            files.write_atomic(ws.root / name, data)
        for name in result.deletes:
            files.remove(ws.root / name)
    return result


def _commits(repo: Repo, base: str) -> list[_Commit]:
    out = []
    for sha in repo.commits(base):
        author, subject, body = repo.metadata(sha)
        out.append(_Commit(sha, author, subject, body, repo.format_patch(sha)))
    return out


def _existing(ws: Workspace, file: str, subject: str | None) -> _Existing:
    path = ws.root / file
    try:
        patch = parse_patch(path, file)
    except PatchFormatError:
        return _Existing(file, subject or subject_from_filename(path), None, "")
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    title = patch.subject or subject or subject_from_filename(path)
    author = f"{patch.author_name or ''} <{patch.author_email}>" if patch.author_email else ""
    return _Existing(file, title, (author, title, patch.body.strip(), _diff_part(text)), text)


def _key_of_commit(c: _Commit) -> tuple[str, str, str, str]:
    return (c.author, c.subject, c.body, _diff_part(c.text))


def _same(old: tuple[str, str, str, str] | None, new: tuple[str, str, str, str]) -> bool:
    """Same message and diff; a plain diff file (no author) matches any author."""
    if old is None:
        return False
    return (old[0] in ("", new[0])) and old[1:] == new[1:]


def _match(repo: Repo, commits: list[_Commit], existing: list[_Existing]) -> dict[str, _Existing]:
    """Commit -> existing patch: same subject first, then same patch-id (a reworded commit)."""
    free = list(existing)
    pairs: dict[str, _Existing] = {}
    for c in commits:
        hit = next((e for e in free if e.subject == c.subject), None)
        if hit is not None:
            pairs[c.sha] = hit
            free.remove(hit)
    ids = {e.file: repo.patch_id(e.text) for e in free if e.text}
    for c in commits:
        if c.sha in pairs or not free:
            continue
        mine = repo.patch_id(c.text)
        hit = next((e for e in free if mine and ids.get(e.file) == mine), None)
        if hit is not None:
            pairs[c.sha] = hit
            free.remove(hit)
    return pairs


_SIGNATURE = re.compile(r"\n-- \n[^\n]*\n*\Z")


def _diff_part(text: str) -> str:
    """The diff of a patch without index lines or a trailing version footer."""
    start = text.find("diff --git ")
    if start < 0:
        start = 0
    diff = _SIGNATURE.sub("\n", text[start:])
    lines = [line for line in diff.split("\n") if not line.startswith("index ")]
    return "\n".join(lines).rstrip()


def _next_number(folder: Path, files: list[str]) -> int:
    names = [Path(f).name for f in files]
    if folder.is_dir():
        names += [p.name for p in folder.iterdir()]
    numbers = [int(m.group(1)) for n in names if (m := re.match(r"^([0-9]+)-", n))]
    return max(numbers, default=0) + 1


def _slug(subject: str) -> str:
    """A file name from a subject, as git format-patch makes one."""
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", subject).strip(".-")
    slug = re.sub(r"\.+", ".", slug)
    return slug[:52].rstrip(".-") or "patch"
