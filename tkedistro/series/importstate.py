"""After ``tkedistro patches import``: record the commits it made as ``tkedistro source``
records its own (``source.json``), so the next ``source`` run finds the tree up to date
instead of re-applying every imported patch."""

from __future__ import annotations

from tkedistro.core.workspace import Workspace
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import Manifest
from tkedistro.source.apply import borrowed_packs, series_inputs
from tkedistro.source.state import (
    Applied,
    State,
    inputs_digest,
    load_state,
    stamp_of,
    write_state,
)


def record_import(ws: Workspace, repo: Repo, old: Manifest, new: Manifest, start: str,
                  added: list[tuple[str, str, str]]) -> bool:
    """Extend ``source.json`` by the imported commits (``added``: subject, status, commit).

    Only when it described the tree the import started from (``start``) for the old series
    in full; otherwise the next ``source`` run does what it always does. True when recorded.
    """
    release = new.release
    paths = ws.release(release)
    display = paths.manifest_name
    prev = load_state(paths)
    if prev is None or prev.head != start or prev.base != old.upstream.commit:
        return False
    if prev.stamp != stamp_of(prev.base, series_inputs(ws, old, display)):
        return False
    inputs = series_inputs(ws, new, display)
    fresh = inputs[len(prev.applied):]
    if len(fresh) != len(added) or [i.file for i in inputs[:len(prev.applied)]] != \
            [a.file for a in prev.applied]:
        return False
    applied = prev.applied + tuple(
        Applied(inp.key, inp.file, subject, "3-way" if status == "imported-3way" else "applied",
                commit)
        for inp, (subject, status, commit) in zip(fresh, added, strict=True))
    write_state(paths, State(
        prev.base, repo.head(), stamp_of(prev.base, inputs), applied, tag=prev.tag, url=prev.url,
        inputs=inputs_digest(paths.manifest_file, [i.path for i in inputs]),
        packs=borrowed_packs(repo)))
    return True
