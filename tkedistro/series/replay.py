"""Replay one patch on a git tree and say how it fared (shared by rebase, forecast, import).

Outcomes: ``clean`` (applies as it is), ``3way`` (applies with a 3-way merge), ``upstream``
(its change is already in the new base: dropped, naming the upstream commit that carries it),
``conflict`` (``git am --3way`` stopped; the tree is left in a resolvable state).
Every commit is made with a fixed committer identity and the author date as committer date,
so the same inputs give the same SHAs.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tkedistro.core.errors import CommitMismatchError, FetchError
from tkedistro.core.runner import Result, run
from tkedistro.core.workspace import Workspace
from tkedistro.git.mirror import Pin, ensure_pin
from tkedistro.git.tree import COMMITTER_ENV, TOOL_EMAIL, TOOL_NAME, Tree
from tkedistro.model.manifest import Manifest
from tkedistro.model.patches import PatchFile, parse_patch, subject_from_filename

# The options `tkedistro source` gives `git am`, so a replayed commit has the same SHA.
AM_OPTIONS = ("--whitespace=nowarn", "--committer-date-is-author-date", "--no-message-id",
              "--no-keep-cr", "--no-scissors", "--no-signoff")

PLAIN_DATE = "Thu, 1 Jan 1970 00:00:00 +0000"  # plain diffs carry no date

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


def git(repo: Path, *args: str, check: bool = True, input: str | None = None,
        env: dict[str, str] | None = None) -> Result:
    """git in ``repo`` with the settings and committer ``tkedistro source`` uses."""
    return Tree(repo, repo.name).git(*args, check=check, input=input,
                                     env={**COMMITTER_ENV, **(env or {})})


def rev(repo: Path, name: str) -> str | None:
    res = git(repo, "rev-parse", "--verify", "-q", f"{name}^{{commit}}", check=False)
    return res.stdout.strip() if res.returncode == 0 else None


def remote_tag_commit(url: str, tag: str) -> str:
    """The commit ``tag`` points to at ``url`` (``git ls-remote``, nothing fetched)."""
    res = run(["git", "ls-remote", url, f"refs/tags/{tag}", f"refs/tags/{tag}^{{}}"],
              check=False)
    refs: dict[str, str] = {}
    for line in res.stdout.splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    found = refs.get(f"refs/tags/{tag}^{{}}") or refs.get(f"refs/tags/{tag}")
    if res.returncode != 0 or not found:
        raise FetchError(
            f"upstream {url} has no tag {tag}" if res.returncode == 0
            else f"cannot list tags of {url} (git exit code {res.returncode})",
            details=res.stderr.strip() or None,
            hint="check the tag name, or fetch from a reachable mirror with --upstream URL",
        )
    return found


def fetch_tag(ws: Workspace, manifest: Manifest, tag: str, *, commit: str | None = None,
              upstream: str | None = None) -> tuple[Path, str]:
    """Put ``tag`` into the shared mirror, verified against ``commit`` when given.

    Returns the mirror path and the tag's commit. A tag the mirror already holds is not
    fetched again (as ``tkedistro source`` does).
    """
    url = upstream or manifest.upstream.url
    display = f"releases/{manifest.release}.yaml"
    held = _mirror_commit(ws, manifest.upstream.url, tag)
    found = held if held and commit in (None, held) else remote_tag_commit(url, tag)
    if commit is not None and found != commit:
        raise CommitMismatchError(
            f"tag {tag} of {url} points to commit {found}, but --commit {commit} was given",
            hint="the tag moved or was tampered with; check the upstream",
        )
    mirror = ensure_pin(ws.mirrors_dir, Pin(manifest.upstream.url, tag, found, display), upstream)
    return mirror.path, found


def _mirror_commit(ws: Workspace, url: str, tag: str) -> str | None:
    from tkedistro.git.mirror import mirror_path

    path = mirror_path(ws.mirrors_dir, url)
    if not (path / "HEAD").is_file():
        return None
    return rev(path, f"refs/tags/{tag}")


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
    name, email, date = TOOL_NAME, TOOL_EMAIL, date or PLAIN_DATE
    title = subject or subject_from_filename(patch.path)
    body = f"\n{patch.body}\n" if patch.body else ""
    diff = text[text.index("diff --git"):] if "diff --git" in text else text
    return (f"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
            f"From: {name} <{email}>\nDate: {date}\nSubject: [PATCH] {title}\n{body}\n---\n{diff}")


def patch_subject(patch: PatchFile, subject: str | None = None) -> str:
    return patch.subject or subject or subject_from_filename(patch.path)


def commit_date(repo: Path, sha: str) -> str:
    """The committer date of ``sha`` (RFC 2822), the date plain diffs are committed with."""
    return git(repo, "log", "-1", "--format=%cd", "--date=rfc2822", sha).stdout.strip()


def patch_id(repo: Path, text: str) -> str | None:
    out = git(repo, "patch-id", "--stable", input=text).stdout.split()
    return out[0] if out else None


def _range(repo: Path, old: str | None, new: str) -> str | None:
    if not old or old == new:
        return None
    base = git(repo, "merge-base", old, new, check=False).stdout.strip()
    return f"{base or old}..{new}" if base != new else None


def find_upstream(repo: Path, patch: PatchFile, text: str, old: str | None,
                  new: str) -> tuple[str | None, str | None]:
    """The upstream commit in old..new that carries ``patch``: (sha, "patch-id"|"content")."""
    span = _range(repo, old, new)
    if span is None or not patch.files:
        return None, None
    mine = patch_id(repo, text)
    log = git(repo, "log", "-p", "--no-merges", "--format=commit %H", span, "--",
              *patch.files).stdout
    if mine and log:
        for line in git(repo, "patch-id", "--stable", input=log).stdout.splitlines():
            pid, sha = line.split()
            if pid == mine:
                return sha, "patch-id"
    last = git(repo, "log", "-1", "--no-merges", "--format=%H", span, "--", *patch.files)
    return (last.stdout.strip() or None), ("content" if last.stdout.strip() else None)


def subject_of(repo: Path, sha: str) -> str:
    return git(repo, "log", "-1", "--format=%s", sha).stdout.strip()


def conflicted_files(repo: Path) -> list[str]:
    out = git(repo, "diff", "--name-only", "--diff-filter=U").stdout
    return [line for line in out.splitlines() if line]


def am_in_progress(repo: Path) -> bool:
    git_dir = Path(git(repo, "rev-parse", "--absolute-git-dir").stdout.strip())
    return (git_dir / "rebase-apply").is_dir()


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").stdout.strip()


@dataclass(frozen=True)
class Job:
    """One patch to replay: its position, repo-relative file name, parsed patch, mail text."""

    position: int
    file: str
    patch: PatchFile
    mbox: str
    subject: str
    date: str  # the author date, also used as committer date

    def env(self) -> dict[str, str]:
        return {"GIT_COMMITTER_DATE": self.date}


def make_job(position: int, path: Path, display: str, subject: str | None = None,
             plain_date: str = "") -> Job:
    patch = parse_patch(path, display)
    return Job(position, display, patch, mbox_for(patch, subject, plain_date),
               patch_subject(patch, subject), patch.date or plain_date or PLAIN_DATE)


def apply_job(repo: Path, job: Job, mbox_path: Path, *, old_base: str | None,
              new_base: str) -> PatchOutcome:
    """Replay ``job`` on HEAD of ``repo``; a conflict leaves ``git am`` in progress."""
    mbox_path.write_text(job.mbox, encoding="utf-8", errors="surrogateescape")
    out = PatchOutcome(job.position, job.file, job.subject, "clean",
                       upstream_ref=job.patch.trailers.get("Upstream-Ref"))
    env = job.env()
    if git(repo, "apply", "--check", str(mbox_path), check=False).returncode == 0:
        git(repo, "am", "-q", *AM_OPTIONS, str(mbox_path), env=env)
        return out
    if git(repo, "apply", "--check", "-R", str(mbox_path), check=False).returncode == 0:
        return _upstream(repo, out, job, old_base, new_base)
    before = head(repo)
    res = git(repo, "am", "-q", "--3way", *AM_OPTIONS, str(mbox_path), check=False,
              env={**env, **_C_LOCALE})
    if res.returncode == 0:
        if head(repo) == before:  # 3-way merge gave no change: the content is upstream
            return _upstream(repo, out, job, old_base, new_base)
        out.status = "3way"
        return out
    out.status = "conflict"
    out.conflicts = conflicted_files(repo) or list(job.patch.files)
    out.detail = _failure_text(res)
    return out


def apply_batch(repo: Path, jobs: list[Job], mbox_path: Path, *, old_base: str | None,
                new_base: str) -> list[PatchOutcome]:
    """Replay ``jobs`` with one ``git am --3way`` (one index refresh for the whole series).

    Returns the outcomes of the leading jobs that went in (clean, 3-way, or already upstream);
    at the first that did not, the session is dropped with HEAD on the last good commit and
    the tree clean, so the caller can replay that one alone (and stop on its conflict).
    """
    if not jobs:
        return []
    text = "".join(j.mbox if j.mbox.endswith("\n") else j.mbox + "\n" for j in jobs)
    mbox_path.write_text(text, encoding="utf-8", errors="surrogateescape")
    res = git(repo, "am", "--3way", *AM_OPTIONS, str(mbox_path), check=False, env=_C_LOCALE)
    blocks = res.stdout.split("Applying: ")[1:]
    if res.returncode != 0:
        blocks = blocks[:-1]  # the one that stopped the session
        if am_in_progress(repo):
            git(repo, "am", "--quit")
        git(repo, "reset", "-q", "--hard", "HEAD")
    outcomes = []
    for job, block in zip(jobs, blocks, strict=False):
        out = PatchOutcome(job.position, job.file, job.subject, "clean",
                           upstream_ref=job.patch.trailers.get("Upstream-Ref"))
        if "No changes -- Patch already applied." in block:
            out = _upstream(repo, out, job, old_base, new_base)
        elif "Falling back to patching base and 3-way merge" in block:
            out.status = "3way"
        outcomes.append(out)
    return outcomes


_C_LOCALE = {"LC_ALL": "C", "LANGUAGE": "C"}  # git's messages are parsed: no translations


def _upstream(repo: Path, out: PatchOutcome, job: Job, old: str | None,
              new: str) -> PatchOutcome:
    out.status = "upstream"
    sha, how = find_upstream(repo, job.patch, job.mbox, old, new)
    out.upstream_commit, out.match = sha, how
    out.upstream_subject = subject_of(repo, sha) if sha else None
    return out


_NOISE = re.compile(r"^(hint:|When you have resolved|If you prefer to skip|To restore the orig|"
                    r"Patch failed at|Use 'git am --show-current-patch)")


def _failure_text(res: Result) -> str:
    lines = (res.stderr + res.stdout).splitlines()
    return "\n".join(line for line in lines if not _NOISE.match(line)).strip()
