"""After ``patches export`` (and the export that ends a rebase): record the commits of
``_src`` as what the patch files now make, as ``tkedistro source`` records its own
(``source.json``), so the next ``source`` finds the tree current instead of applying the
whole series again to end at the same HEAD.

The export has just written each file from its commit (message, author and diff), so ``git
am`` of the file onto the commit's parent gives the same tree and message. The SHA is the
same too when the commit was made the way the tool makes one (its committer identity, the
author date as committer date: ``Repo.tool_committed``); a commit made otherwise (a
maintainer's own ``git commit``) ends the recorded prefix: ``source`` applies its file and
the ones after it, and gets the SHAs any other machine gets from the same files.
"""

from __future__ import annotations

from collections.abc import Sequence

from tkedistro.core.workspace import Workspace
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import load_release
from tkedistro.source.apply import borrowed_packs, series_inputs
from tkedistro.source.digest import inputs_digest
from tkedistro.source.state import Applied, State, stamp_of, write_state


def record_exported(ws: Workspace, release: str,
                    exported: Sequence[tuple[str, str, str]]) -> int:
    """Record ``exported`` ((file, subject, commit) in series order, just written from
    ``_src``) in
    ``source.json``; how many of them count as applied. The caller holds the release lock.
    Nothing is recorded (0) when they are not the series the manifest now lists."""
    paths = ws.release(release)
    manifest = load_release(ws, release)
    inputs = series_inputs(ws, manifest, paths.manifest_name)
    tree = Repo(paths.src, paths.layout.src.as_posix())
    if [i.file for i in inputs] != [file for file, _, _ in exported] or not tree.exists():
        return 0
    commits = [commit for _, _, commit in exported]
    base, head = manifest.upstream.commit, tree.head()
    if commits != tree.commits(base, head):
        return 0
    applied: list[Applied] = []
    for inp, (_, subject, commit), same in zip(inputs, exported, tree.tool_committed(commits),
                                               strict=True):
        if not same:
            break
        applied.append(Applied(inp.key, inp.file, subject, "applied", commit))
    whole = len(applied) == len(inputs)
    up = manifest.upstream
    write_state(paths, State(
        base, head, stamp_of(base, inputs) if whole else None, tuple(applied), tag=up.tag,
        url=up.url, inputs=inputs_digest(paths.manifest_file, [i.path for i in inputs])
        if whole else None, packs=borrowed_packs(tree) if whole else ()))
    return len(applied)
