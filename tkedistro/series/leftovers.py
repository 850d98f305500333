"""Edits a maintainer made in a rebase's tree, saved before a step throws them away.

``--abort``, ``--skip`` and the crash recovery of ``--continue`` reset ``_src/<release>``
(``--abort`` of a rebase that made the tree removes it). First, what the maintainer changed
there (changed and untracked files, commits made by hand) is committed under a backup ref
(``Repo.backup``: ``refs/tkedistro/backup/<time>``), and the warning names the ref and the
command that brings the files back. What the tool's own step left is not an edit: at a
conflict, only a tree that differs from the one the conflict left (``conflict_tree``) is
saved, under an existing backup ref when one holds the same tree; in the other phases the
commits come from the patch files, so uncommitted and untracked files are what counts.
``edits_to_keep`` is the same judgement for ``tkedistro drop``, which removes the tree whole.
"""

from __future__ import annotations

from tkedistro.core import console
from tkedistro.git.repo import Repo
from tkedistro.series.state import Phase, RebaseState


def save_edits(repo: Repo, state: RebaseState, doing: str, *,
               carry_on: bool = False) -> str | None:
    """Save the edits in ``repo`` before ``doing`` ("--abort", "--skip", ...) resets it;
    the backup ref, or None when there is nothing of the maintainer's to keep.
    ``carry_on``: the rebase goes on in this tree, so the command given brings back the
    edited files only (not the whole tree as it was)."""
    if not repo.exists() or repo.rev("HEAD") is None:
        return None
    found = _edits(repo, state)
    if found is None:
        return None
    tree, changed = found
    ref = repo.backup_with_tree(tree) or repo.backup(
        f"tkedistro: edits left in {repo.shown} by the rebase of {state.release} ({doing})",
        tree)
    listed = ", ".join(changed[:10]) + (" ..." if len(changed) > 10 else "")
    only = changed if carry_on and len(changed) <= 10 else None
    console.warn(f"edits made during the rebase were saved to {ref}"
                 + (f": {listed}" if listed else "")
                 + f"; get them back with: {repo.restore_command(ref, only)}")
    return ref


def _edits(repo: Repo, state: RebaseState) -> tuple[str, list[str]] | None:
    """(the tree to save, the paths edited) when the tree holds edits, else None."""
    if state.phase == Phase.CONFLICT and state.conflict_tree is not None:
        tree = repo.worktree_tree()  # HEAD and the work tree: a commit by hand counts too
        if tree == state.conflict_tree:
            return None
        return tree, repo.changed_paths(state.conflict_tree, tree)
    changed = repo.status()
    if not changed:
        return None
    return repo.worktree_tree(), changed


def edits_to_keep(repo: Repo, state: RebaseState | None) -> tuple[str, list[str]] | None:
    """What ``tkedistro drop`` must save before it removes ``repo``: (the tree of HEAD and
    the work tree, what is edited), or None. Mid-rebase, as the aborts judge it; otherwise
    an operation in progress, changed or untracked files, and commits the tool did not make
    (upstream's, which the mirror's refs reach, are nobody's)."""
    if not repo.exists() or repo.rev("HEAD") is None:
        return None
    if state is not None:
        return _edits(repo, state)
    work = repo.work_in_progress([], repo.made())
    if not (work.operation or work.changed or work.commits):
        return None
    commits = [f"commit {sha[:12]} {subject}" for sha, subject in work.commits]
    return repo.worktree_tree(), [*work.changed, *commits]
