"""``tkedistro source``: the pinned upstream plus the patch series as a git tree in ``_src``.

``_src/<release>`` is a git work tree on branch ``tkedistro``: the pinned commit, then one
commit per patch in series order. Commits keep each patch's author, date and message; the
committer is always ``tkedistro <tkedistro@invalid>`` with the author's date, so the same
inputs give the same SHAs. ``_src/.<release>.tkedistro/source.json`` records which input
made which commit, so a re-run re-applies from the first changed patch only. An unchanged
re-run hashes the manifest and patch bytes (no YAML or patch parsing, no fetch) and runs one
``git status`` (HEAD's commit from its ``--branch`` header; fast with git's untracked cache);
the command line starts it before the code is loaded (``StatusProbe``), and a run that goes
on to change anything stops it and looks at the tree again under the lock.

Everything a maintainer may have done in the tree (edits, untracked files, own commits, a
``git am`` in progress) is work in progress: refused, or with ``force`` saved to
``refs/tkedistro/backup/<time>`` first. Objects of the pinned upstream are borrowed from the
mirror (``tkedistro.git.mirror``) through ``objects/info/alternates``, so no tree copies them.

All git calls go through the one repository class, ``tkedistro.git.repo.Repo``; the
unchanged re-run uses only its ``head_and_status``, which does not load GitPython.
"""

from __future__ import annotations

import os

from tkedistro.core.locks import release_lock
from tkedistro.core.rebasemark import refuse_if_rebasing
from tkedistro.core.workspace import ReleasePaths, Workspace, path_problem
from tkedistro.git.probe import StatusProbe
from tkedistro.git.repo import Repo
from tkedistro.source.buildwrites import recover_build_writes
from tkedistro.source.digest import inputs_digest
from tkedistro.source.result import SourceResult, result_of
from tkedistro.source.state import load_state, tree_matches


def prepare_source(
    ws: Workspace, release: str, *, upstream: str | None = None, force: bool = False,
    probe: StatusProbe | None = None,
) -> SourceResult:
    """Fetch and verify the pinned upstream and apply the series into ``_src/<release>``.
    ``probe``: the tree's status, started early by the command line (closed here)."""
    paths = ws.release(release)
    tree = Repo(paths.src, str(paths.layout.src))
    try:
        if paths.state_dir.is_dir() and paths.manifest_file.is_file():
            with release_lock(ws, release):
                refuse_if_rebasing(paths)
                if probe is not None and os.path.lexists(paths.build_run):
                    probe.close()  # the recovery below may change the tree: look again
                    probe = None
                recover_build_writes(tree, paths)  # a killed build's files (one stat if none)
                if quick := _quick_up_to_date(ws, release, tree, paths, upstream, probe):
                    return quick
    finally:
        if probe is not None:
            probe.close()  # before any git run that may write
    # the full run parses the manifest (pydantic) and the patches and may fetch: load it only
    # when the quick check did not settle it, so an unchanged re-run stays cheap
    from tkedistro.source.apply import prepare_fully

    return prepare_fully(ws, release, tree, upstream=upstream, force=force)


def _quick_up_to_date(ws: Workspace, release: str, tree: Repo, paths: ReleasePaths,
                      upstream: str | None, probe: StatusProbe | None) -> SourceResult | None:
    """Up to date without parsing anything: same manifest and patch bytes, same HEAD, clean."""
    state = load_state(paths)
    if state is None or state.inputs is None:
        return None
    if any(path_problem(ws.root, a.file) for a in state.applied):
        return None  # the full run says what is wrong with the file
    files = [ws.root / a.file for a in state.applied]
    if inputs_digest(paths.manifest_file, files) != state.inputs:
        return None
    if not tree_matches(tree, state, paths, probe):
        return None
    return result_of(release, tree.path, upstream or state.url, state, kept=-1, backup=None)


