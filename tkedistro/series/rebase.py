"""``tkedistro rebase RELEASE --onto TAG``: replay the series on a new tag, resumable.

The series (the manifest's patch files) is replayed in ``_src/<release>`` on the new tag
with ``git am --3way`` (one session for the run of patches that go in; the first that
does not is replayed alone). A conflict stops with ``git am`` in progress; the state
in ``ws.state_dir(release)`` survives a crash, and ``--continue``, ``--skip`` or ``--abort``
pick it up. ``--abort`` puts the manifest, the patch files and ``_src`` back byte for byte;
edits the maintainer made in ``_src`` are saved to a backup ref first (``leftovers.py``), as
``--skip`` and ``--continue`` do before they reset anything, and a ``_src`` the rebase made
is kept rather than removed while it holds a backup ref; a line ``tkedistro new`` made is
dropped whole instead (``drop.py``: edits saved outside ``_src``). On success the manifest's pin and
series are updated and the patch files regenerated, never deleting or rewriting a file
another release lists (``sharing.py``).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from tkedistro.core import console
from tkedistro.core.errors import PatchApplyError, RebaseStateError
from tkedistro.core.files import check_path, remove
from tkedistro.core.locks import release_lock
from tkedistro.core.rebasemark import is_rebasing
from tkedistro.core.workspace import ReleaseLayout, Workspace, manifest_name, path_problem
from tkedistro.git.mirror import mirror_path, share_tags
from tkedistro.git.patching import Patcher
from tkedistro.git.repo import BRANCH, Repo
from tkedistro.model.diffscan import conflict_markers, describe_markers
from tkedistro.model.manifest import Manifest, load_release, update_pin
from tkedistro.model.url import redact_url
from tkedistro.series.drop import drop_line
from tkedistro.series.export import check_work_in_progress
from tkedistro.series.leftovers import save_edits
from tkedistro.series.linerecord import load_record, refresh_record
from tkedistro.series.replay import (
    Job,
    PatchOutcome,
    apply_batch,
    apply_job,
    ensure_old_base,
    failure_text,
    fetch_tag,
    make_job,
)
from tkedistro.series.report import RebaseResult
from tkedistro.series.sharing import export_keeping_shared
from tkedistro.series.state import (
    NewLine,
    Phase,
    RebaseState,
    clear,
    load_listing,
    load_state,
    restore,
    save_state,
    snapshot,
)
from tkedistro.source.record import record_exported

__all__ = ["RebaseResult", "abort_rebase", "continue_rebase", "rebase", "skip_patch",
           "suggest_version"]

P = ParamSpec("P")
R = TypeVar("R")


def _under_release_lock(
    fn: Callable[Concatenate[Workspace, str, P], R],
) -> Callable[Concatenate[Workspace, str, P], R]:
    """Run ``fn(ws, release, ...)`` holding the release lock (a second run: exit 13)."""

    @functools.wraps(fn)
    def locked(ws: Workspace, release: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with release_lock(ws, release):
            return fn(ws, release, *args, **kwargs)

    return locked


def suggest_version(old_version: str, old_tag: str, new_tag: str) -> str:
    """``v1.20.2-tke.3`` rebased from v1.20.2 onto v1.20.3 -> ``v1.20.3-tke.1``."""
    suffix = old_version[len(old_tag) + 1:] if old_version.startswith(old_tag + "-") else "tke.1"
    return f"{new_tag}-" + re.sub(r"[0-9]+$", "1", suffix)


@_under_release_lock
def rebase(ws: Workspace, release: str, onto: str, *, commit: str | None = None,
           upstream: str | None = None, new_line: NewLine | None = None) -> RebaseResult:
    """Start a rebase of ``release``'s series onto tag ``onto`` (``commit`` pins its SHA);
    ``new_line``: what ``tkedistro new`` just wrote, which --abort removes again."""
    if is_rebasing(ws.release(release)):
        state = load_state(ws, release)
        raise RebaseStateError(
            f"release {release} is already mid-rebase onto {state.onto_tag}",
            hint=f"tkedistro rebase {release} --continue | --skip | --abort",
        )
    manifest = _manifest(ws, release)
    repo = Repo(ws.src_dir(release), ws.rel(ws.src_dir(release)))
    src_existed = repo.exists()
    if src_existed:
        check_work_in_progress(ws, manifest, repo)
    for i, entry in enumerate(manifest.patches, 1):  # a bad patch fails before any change
        make_job(i, ws.repo_file(entry.file, f"{manifest_name(release)}: patches[{i - 1}].file"),
                 entry.file, entry.subject)
    shown = redact_url(upstream or manifest.upstream.url)
    with console.step("fetch_source", f"{onto} from {shown}"):
        mirror, onto_commit = fetch_tag(ws, manifest, onto, commit=commit, upstream=upstream)
        if not ensure_old_base(ws, manifest, upstream):
            console.warn(f"cannot fetch the old base {manifest.upstream.tag}; patches already "
                         "upstream are found by content only")
    console.info(f"{onto} is commit {onto_commit}")
    orig_head = repo.rev("HEAD") if src_existed else None
    branch = repo.branch() if src_existed else BRANCH
    snapshot(ws, release, new_line)
    state = RebaseState(
        release=release, onto_tag=onto, onto_commit=onto_commit,
        old_tag=manifest.upstream.tag, old_commit=manifest.upstream.commit,
        url=shown,  # never the credentials: --continue fetches nothing
        series=[e.file for e in manifest.patches],
        subjects={e.file: e.subject for e in manifest.patches if e.subject},
        src_existed=src_existed, orig_head=orig_head, orig_branch=branch or None,
        distro_version=manifest.distro_version, new_line=new_line is not None,
    )
    save_state(ws, state)  # from here on, --abort can put everything back
    if not src_existed:
        repo.create(mirror, onto_commit)
    repo.switch(onto_commit, branch=None)
    return _drive(ws, state)


@_under_release_lock
def continue_rebase(ws: Workspace, release: str) -> RebaseResult:
    """``--continue``: after a resolved conflict, or after a crash, carry on."""
    state = load_state(ws, release)
    repo = _repo(ws, release)
    if state.phase == Phase.CONFLICT:
        _finish_conflict(ws, state, repo)
    elif state.phase == Phase.REPLAY:
        _recover_replay(ws, state, repo)
    if repo.tracked_changes():  # left out of the resolution: the replay would reset them
        save_edits(repo, state, "--continue", carry_on=True)
    return _drive(ws, state)


@_under_release_lock
def skip_patch(ws: Workspace, release: str) -> RebaseResult:
    """``--skip``: drop the patch that stopped the rebase from the series, and carry on."""
    state = load_state(ws, release)
    repo = _repo(ws, release)
    if state.phase == Phase.FINALIZE or state.position >= len(state.series):
        raise RebaseStateError(f"release {release}: all patches are replayed; nothing to skip",
                               hint=f"tkedistro rebase {release} --continue")
    save_edits(repo, state, "--skip", carry_on=True)
    patcher = Patcher(repo)
    if patcher.in_progress():
        patcher.skip()
        if patcher.in_progress():
            patcher.abort()
    if state.pre_head:
        repo.reset_hard(state.pre_head)
    file = state.series[state.position]
    conflict = state.phase == Phase.CONFLICT
    previous = state.outcomes.pop() if conflict and state.outcomes else None
    subject = previous.subject if previous else Path(file).name
    state.outcomes.append(PatchOutcome(state.position + 1, file, subject, "skipped"))
    state.position += 1
    state.phase, state.conflict_tree = Phase.REPLAY, None
    save_state(ws, state)
    return _drive(ws, state)


@_under_release_lock
def abort_rebase(ws: Workspace, release: str) -> RebaseResult:
    """``--abort``: manifest, patch files and ``_src`` as before the rebase; edits made in
    ``_src`` are saved to a backup ref first (a tree the rebase made is then kept for it)."""
    state = load_state(ws, release)
    if state.new_line and load_record(ws, release) is not None:
        return _abort_new_line(ws, state)
    listing = load_listing(ws, release)  # a damaged backup is refused before any change
    repo = _repo(ws, release)
    ref = save_edits(repo, state, "--abort")
    kept = False
    if state.src_existed:
        _restore_src(repo, state)
    elif repo.exists() and (held := repo.backup_refs()):  # this abort's, or --skip's
        ref, kept = ref or held[-1], True
        _park_src(repo, state)
    else:
        remove(check_path(repo.path))
    if state.new_line:
        _remove_new_subfolders(ws, state)
    restore(ws, release, listing)
    clear(ws, release)
    result = RebaseResult.from_state(state, "aborted")
    result.backup_ref, result.src_kept = ref, kept
    result.restore = [repo.restore_command(ref)] if ref else []
    return result


def _abort_new_line(ws: Workspace, state: RebaseState) -> RebaseResult:
    """A line ``tkedistro new`` made, stopped mid-rebase: dropped whole (``drop.py``), its
    edits saved where the removal of ``_src`` cannot reach, and no state folder left."""
    dropped = drop_line(ws, state.release, doing=f"rebase {state.release} --abort")
    result = RebaseResult.from_state(state, "aborted")
    result.backup_ref, result.restore = dropped.backup, dropped.restore
    return result


def _restore_src(repo: Repo, state: RebaseState) -> None:
    if (patcher := Patcher(repo)).in_progress():
        patcher.abort()
    if state.orig_head is None:
        repo.set_head_branch(state.orig_branch or "master")
    else:
        repo.switch(state.orig_head, branch=state.orig_branch)
    repo.clean()


def _park_src(repo: Repo, state: RebaseState) -> None:
    """A tree the rebase made, kept for the backup ref it holds: clean, on the tool's branch
    at the release's pin (where ``tkedistro source`` and a new rebase take it up)."""
    if (patcher := Patcher(repo)).in_progress():
        patcher.abort()
    base = state.old_commit if repo.has_commit(state.old_commit) else state.onto_commit
    repo.switch(base, branch=BRANCH)
    repo.clean()


def _remove_new_subfolders(ws: Workspace, state: RebaseState) -> None:
    """Files ``tkedistro new`` copied into subfolders of the new patch folder (``restore``
    puts back the folder's own files only), and the subfolders once empty."""
    folder = ws.patches_dir(state.release)
    prefix = f"{ReleaseLayout(state.release).patches}/"
    for file in dict.fromkeys(state.series):
        inside = file[len(prefix):] if file.startswith(prefix) else ""
        if "/" not in inside or os.path.normpath(file) != file:
            continue
        if path_problem(ws.root, file, must_exist=False):
            continue  # not a path `new` would have written: leave it
        path = ws.root / file
        remove(path)  # never through a symlink
        parent = path.parent
        while parent != folder and parent.is_dir() and not any(parent.iterdir()):
            remove(parent)
            parent = parent.parent


def _repo(ws: Workspace, release: str) -> Repo:
    return Repo(ws.src_dir(release), ws.rel(ws.src_dir(release)))


def _manifest(ws: Workspace, release: str) -> Manifest:
    return load_release(ws, release)


def _drive(ws: Workspace, state: RebaseState) -> RebaseResult:
    """Replay from ``state.position`` on; stop at a conflict, else finish.

    The remaining patches go in with one ``git am``; the first that does not go in cleanly
    is replayed alone, so its conflict is left in progress for the maintainer.
    """
    repo = _repo(ws, state.release)
    mbox = ws.release(state.release).rebase_patch
    total = len(state.series)
    while state.phase == Phase.REPLAY and state.position < total:
        date = repo.commit_date(state.onto_commit)
        jobs = [make_job(n + 1, ws.root / f, f, state.subjects.get(f), date)
                for n, f in enumerate(state.series) if n >= state.position]
        state.pre_head = repo.head()
        save_state(ws, state)
        for outcome in apply_batch(repo, jobs, mbox, old_base=state.old_commit,
                                   new_base=state.onto_commit):
            _record(ws, state, outcome, total)
        if state.position >= total:
            break
        state.pre_head = repo.head()
        save_state(ws, state)
        job = jobs[state.position - jobs[0].position + 1]
        outcome = apply_job(repo, job, mbox, old_base=state.old_commit,
                            new_base=state.onto_commit)
        if outcome.status == "conflict":
            console.info(f"[{job.position}/{total}] {job.file}: {outcome.label()}")
            state.outcomes.append(outcome)
            state.phase, state.conflict_tree = Phase.CONFLICT, repo.worktree_tree()
            save_state(ws, state)
            return RebaseResult.from_state(state, "stopped")
        _record(ws, state, outcome, total)
    if state.phase == Phase.CONFLICT:
        return RebaseResult.from_state(state, "stopped")
    return _finalize(ws, state)


def _record(ws: Workspace, state: RebaseState, outcome: PatchOutcome, total: int) -> None:
    console.info(f"[{outcome.position}/{total}] {outcome.file}: {outcome.label()}")
    state.outcomes.append(outcome)
    state.position += 1
    state.pre_head = None
    save_state(ws, state)


def _finish_conflict(ws: Workspace, state: RebaseState, repo: Repo) -> None:
    file = state.series[state.position]
    job = make_job(state.position + 1, ws.root / file, file, state.subjects.get(file),
                   repo.commit_date(state.onto_commit))
    hint = (f"resolve, `git -C {repo.shown} add FILE`, then tkedistro rebase "
            f"{state.release} --continue; or --skip to drop this patch; or --abort")
    patcher = Patcher(repo)
    if patcher.in_progress():
        if left := repo.conflicted_files():  # git's own refusal would add its advice
            raise PatchApplyError(f"patch {job.position} ({file}): still conflicted: "
                                  + ", ".join(left), hint=hint)
        _refuse_markers(state, job, repo.staged_diff(), repo.shown)
        res = patcher.resume(date=job.date)
        if res.returncode != 0:
            raise PatchApplyError(f"patch {job.position} ({file}): git am refused",
                                  details=failure_text(res) or None, hint=hint)
    elif state.pre_head and repo.head() == state.pre_head:
        raise RebaseStateError(
            f"patch {job.position} ({file}) is neither applied nor in progress in "
            f"{repo.shown} (was `git am --abort` run by hand?)",
            hint=f"tkedistro rebase {state.release} --skip to drop it, or --abort",
        )
    elif state.pre_head:  # committed by hand (`git am --continue`): check what it added
        _refuse_markers(state, job, repo.diff_between(state.pre_head, "HEAD"), repo.shown,
                        committed=True)
    outcome = state.outcomes[-1]
    outcome.status, outcome.conflicts, outcome.detail = "resolved", [], ""
    state.position += 1
    state.phase, state.conflict_tree = Phase.REPLAY, None
    save_state(ws, state)


def _refuse_markers(state: RebaseState, job: Job, diff: str, shown: str, *,
                    committed: bool = False) -> None:
    """Exit 17 while the resolution would put conflict markers into the patch."""
    found = describe_markers(conflict_markers(diff, shown))
    if not found:
        return
    first = found[0].split(" line ", 1)[0]
    how = (f"fix {first}, then `git -C {shown} commit --amend -a`" if committed else
           f"edit {first} to resolve the conflict, `git -C {shown} add {first}`")
    raise RebaseStateError(
        f"patch {job.position} ({job.file}): conflict marker left in "
        + "; ".join(found),
        hint=(f"{how}, then tkedistro rebase {state.release} --continue; or --skip to drop "
              "this patch; or --abort"),
    )


def _recover_replay(ws: Workspace, state: RebaseState, repo: Repo) -> None:
    """After a crash while replaying: go back to where that step began and redo it.

    Commits made since ``pre_head`` came from the patch files, so nothing is lost; files
    changed or added in the tree since are saved to a backup ref first.
    """
    save_edits(repo, state, "--continue after a crash", carry_on=True)
    if (patcher := Patcher(repo)).in_progress():
        patcher.abort()
    if state.pre_head is None:
        return
    if not repo.is_ancestor(state.pre_head, "HEAD"):
        raise RebaseStateError(
            f"{repo.shown}: HEAD {repo.head()[:12]} is not where the interrupted rebase left it",
            hint=f"tkedistro rebase {state.release} --abort puts everything back",
        )
    repo.reset_hard(state.pre_head)
    repo.clean()


def _finalize(ws: Workspace, state: RebaseState) -> RebaseResult:
    """Regenerate the patch files, update the manifest pin, move the branch, forget state."""
    state.phase = Phase.FINALIZE
    save_state(ws, state)
    repo = _repo(ws, state.release)
    manifest = _manifest(ws, state.release)
    repo.note_made(repo.commits(state.onto_commit))  # the series' commits, as replayed
    shared = export_keeping_shared(ws, manifest, repo, state.onto_commit)
    exported = shared.result
    version = suggest_version(state.distro_version, state.old_tag, state.onto_tag)
    update_pin(manifest.path, tag=state.onto_tag, commit=state.onto_commit,
               distro_version=version, patch_files=exported.series)
    if state.new_line:  # what `new` made, as its rebase leaves it: what drop compares with
        refresh_record(ws, state.release)
    record_exported(ws, state.release, [(e.file, e.subject, e.commit)  # `source`: current
                                        for e in exported.entries if e.commit])
    share_tags(mirror_path(ws.mirrors_dir, manifest.upstream.url), repo)  # `git diff TAG`
    if state.orig_head:
        repo.update_ref(f"refs/tkedistro/pre-rebase/{state.old_tag}", state.orig_head)
    if state.orig_branch:
        repo.switch("HEAD", branch=state.orig_branch)
    result = RebaseResult.from_state(state, "done")
    result.new_version = version
    result.export = exported.to_json()
    result.notes += shared.notes
    clear(ws, state.release)
    return result
