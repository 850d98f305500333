"""Replay one patch on a git tree and say how it fared (shared by rebase, forecast, import).

Outcomes: ``clean`` (applies as it is), ``3way`` (applies with a 3-way merge), ``upstream``
(its change is already in the new base: dropped, naming the upstream commit that carries it),
``conflict`` (``git am --3way`` stopped; the tree is left in a resolvable state).
Every commit is made with a fixed committer identity and the author date as committer date,
so the same inputs give the same SHAs.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from tkedistro.core.errors import CommandError, CommitMismatchError, FetchError
from tkedistro.core.files import write_atomic
from tkedistro.core.runner import Result
from tkedistro.core.workspace import Workspace, manifest_name
from tkedistro.git.mbox import PLAIN_DATE, diff_part, to_mbox
from tkedistro.git.mirror import Pin, ensure_pin, mirror_path, remote_tag_commit
from tkedistro.git.patching import Patcher, fell_back
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import Manifest
from tkedistro.model.patches import PatchFile, parse_patch, subject_from_filename
from tkedistro.model.url import redact_url

Status = Literal["clean", "3way", "upstream", "conflict", "resolved", "skipped"]
LABELS: dict[str, str] = {
    "clean": "applied clean",
    "3way": "applied with 3-way",
    "upstream": "already upstream — dropped",
    "conflict": "conflict",
    "resolved": "conflict resolved",
    "skipped": "skipped — dropped",
}


@dataclass
class PatchOutcome:
    position: int
    file: str
    subject: str
    status: Status
    upstream_commit: str | None = None
    upstream_subject: str | None = None
    upstream_ref: str | None = None
    match: str | None = None  # "patch-id" or "content"
    conflicts: list[str] = field(default_factory=list)
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PatchOutcome:
        return cls(**data)

    def label(self) -> str:
        text = LABELS[self.status]
        if self.status == "upstream" and self.upstream_commit:
            via = f" ({self.match})" if self.match else ""
            text += f": {self.upstream_commit[:12]}{via} {self.upstream_subject or ''}".rstrip()
            if self.upstream_ref and self.upstream_ref != "none":
                text += f" [Upstream-Ref: {self.upstream_ref}]"
        if self.conflicts:
            text += ": " + ", ".join(self.conflicts)
        return text


def fetch_tag(ws: Workspace, manifest: Manifest, tag: str, *, commit: str | None = None,
              upstream: str | None = None) -> tuple[Path, str]:
    """Put ``tag`` into the shared mirror, verified against ``commit`` when given.

    Returns the mirror path and the tag's commit. A tag the mirror already holds is not
    fetched again (as ``tkedistro source`` does).
    """
    url = upstream or manifest.upstream.url
    display = manifest_name(manifest.release)
    held = _mirror_commit(ws, manifest.upstream.url, tag)
    found = held if held and commit in (None, held) else remote_tag_commit(url, tag)
    if commit is not None and found != commit:
        raise CommitMismatchError(
            f"tag {tag} of {redact_url(url)} points to commit {found}, but --commit {commit} "
            "was given",
            hint="the tag moved or was tampered with; check the upstream",
        )
    mirror = ensure_pin(ws.mirrors_dir, Pin(manifest.upstream.url, tag, found, display), upstream)
    return mirror.path, found


def _mirror_commit(ws: Workspace, url: str, tag: str) -> str | None:
    path = mirror_path(ws.mirrors_dir, url)
    if not (path / "HEAD").is_file():
        return None
    return Repo(path).rev(f"refs/tags/{tag}")


def ensure_old_base(ws: Workspace, manifest: Manifest, upstream: str | None) -> bool:
    """Make the pinned (pre-rebase) commit available; only used to name upstream commits."""
    try:
        fetch_tag(ws, manifest, manifest.upstream.tag, commit=manifest.upstream.commit,
                  upstream=upstream)
        return True
    except (FetchError, CommitMismatchError):
        return False


def mbox_for(patch: PatchFile, subject: str | None = None, date: str = "") -> str:
    """A ``git am``-able mail for ``patch``; a plain diff gets a subject, the tool as author
    and ``date`` (the base commit's, as ``tkedistro source`` gives it)."""
    text = patch.path.read_bytes().decode("utf-8", errors="surrogateescape")
    if patch.format == "mbox":
        return text
    return to_mbox(diff_part(text), subject or subject_from_filename(patch.path), patch.body,
                   date=date)


def patch_subject(patch: PatchFile, subject: str | None = None) -> str:
    return patch.subject or subject or subject_from_filename(patch.path)


def _range(repo: Repo, old: str | None, new: str) -> str | None:
    if not old or old == new:
        return None
    base = repo.merge_base(old, new)
    return f"{base or old}..{new}" if base != new else None


def find_upstream(repo: Repo, patch: PatchFile, text: str, old: str | None,
                  new: str) -> tuple[str | None, str | None]:
    """The upstream commit in old..new that carries ``patch``: (sha, "patch-id"|"content")."""
    span = _range(repo, old, new)
    if span is None or not patch.files:
        return None, None
    mine = repo.patch_id(text)
    log = repo.log_patches(span, patch.files)
    if mine and log:
        for pid, sha in repo.patch_ids(log):
            if pid == mine:
                return sha, "patch-id"
    last = repo.last_commit(span, patch.files)
    return last, ("content" if last else None)


@dataclass(frozen=True)
class Job:
    """One patch to replay: its position, repo-relative file name, parsed patch, mail text."""

    position: int
    file: str
    patch: PatchFile
    mbox: str
    subject: str
    date: str  # the author date, also used as committer date
    given_subject: str | None = None  # the manifest's subject for the patch, if any

    @property
    def plain(self) -> bool:
        """Made from a plain diff: its carriage returns are content (``Patcher.apply``)."""
        return self.patch.format == "plain"

    def on_base(self, base_date: str) -> Job:
        """This job for a tree whose base commit is dated ``base_date`` (plain diffs only)."""
        if self.patch.format == "mbox":
            return self
        mbox = mbox_for(self.patch, self.given_subject, base_date)
        return replace(self, mbox=mbox, date=base_date)


def make_job(position: int, path: Path, display: str, subject: str | None = None,
             plain_date: str = "") -> Job:
    patch = parse_patch(path, display)
    return Job(position, display, patch, mbox_for(patch, subject, plain_date),
               patch_subject(patch, subject), patch.date or plain_date or PLAIN_DATE, subject)


def apply_job(repo: Repo, job: Job, mbox_path: Path, *, old_base: str | None,
              new_base: str) -> PatchOutcome:
    """Replay ``job`` on HEAD of ``repo``; a conflict leaves ``git am`` in progress."""
    write_atomic(mbox_path, job.mbox.encode("utf-8", errors="surrogateescape"))
    out = PatchOutcome(job.position, job.file, job.subject, "clean",
                       upstream_ref=job.patch.trailers.get("Upstream-Ref"))
    patcher = Patcher(repo)
    if patcher.applies(mbox_path):
        if not (entered := patcher.apply(mbox_path, three_way=False, quiet=True,
                                         date=job.date, keep_cr=job.plain)).ok:
            res = entered.result
            raise CommandError(list(res.argv), res.returncode, res.stdout, res.stderr)
        return out
    if patcher.applies(mbox_path, reverse=True):
        return _upstream(repo, out, job, old_base, new_base)
    before = repo.head()
    entered = patcher.apply(mbox_path, quiet=True, date=job.date, keep_cr=job.plain)
    if entered.ok:
        if repo.head() == before:  # 3-way merge gave no change: the content is upstream
            return _upstream(repo, out, job, old_base, new_base)
        out.status = "3way"
        return out
    out.status = "conflict"
    out.conflicts = repo.conflicted_files() or list(job.patch.files)
    out.detail = failure_text(entered.result)
    return out


def apply_batch(repo: Repo, jobs: list[Job], mbox_path: Path, *, old_base: str | None,
                new_base: str) -> list[PatchOutcome]:
    """Replay ``jobs`` with one ``git am --3way`` (one index refresh for the whole series).

    Returns the outcomes of the leading jobs that went in (clean, 3-way, or already upstream);
    at the first that did not, the session is dropped with HEAD on the last good commit and
    the tree clean, so the caller can replay that one alone (and stop on its conflict). The
    batch ends before a plain diff with carriage returns: those go in alone, kept.
    """
    jobs = jobs[:next((i for i, j in enumerate(jobs) if j.plain and "\r" in j.mbox), None)]
    if not jobs:
        return []
    text = "".join(j.mbox if j.mbox.endswith("\n") else j.mbox + "\n" for j in jobs)
    write_atomic(mbox_path, text.encode("utf-8", errors="surrogateescape"))
    patcher = Patcher(repo)
    entered = patcher.apply(mbox_path)
    blocks = entered.result.stdout.split("Applying: ")[1:]
    if not entered.ok:
        blocks = blocks[:-1]  # the one that stopped the session
        if patcher.in_progress():
            patcher.quit()
        repo.reset_hard()
    outcomes = []
    for job, block in zip(jobs, blocks, strict=False):
        out = PatchOutcome(job.position, job.file, job.subject, "clean",
                           upstream_ref=job.patch.trailers.get("Upstream-Ref"))
        if "No changes -- Patch already applied." in block:
            out = _upstream(repo, out, job, old_base, new_base)
        elif fell_back(block):
            out.status = "3way"
        outcomes.append(out)
    return outcomes


def _upstream(repo: Repo, out: PatchOutcome, job: Job, old: str | None,
              new: str) -> PatchOutcome:
    out.status = "upstream"
    sha, how = find_upstream(repo, job.patch, job.mbox, old, new)
    out.upstream_commit, out.match = sha, how
    out.upstream_subject = repo.subject(sha) if sha else None
    return out


# git's advice for its own `git am` session: tkedistro says what to run instead
_NOISE = re.compile(r"^(hint:|When you have resolved|If you prefer to skip|To restore the orig|"
                    r"Patch failed at|Use 'git am --show-current-patch|You still have unmerged|"
                    r"You should 'git add'|You might run `git rm`)")


def failure_text(res: Result) -> str:
    """git's output of a failed ``git am`` without its advice about ``git am`` itself."""
    lines = [*res.stderr.splitlines(), *res.stdout.splitlines()]
    return "\n".join(line for line in lines if not _NOISE.match(line)).strip()
