"""After ``tkedistro patches import``: record the commits it made as ``tkedistro source``
records its own (``source.json``), so the next ``source`` run finds the tree up to date
instead of re-applying every imported patch.

Two halves, because the record is written by the import's series transaction (with the
patch files and the manifest, ``series/transaction.py``): ``recordable`` decides before the
transaction commits, ``record_import`` writes once the new series is in place (again when a
killed run's transaction is finished by the next one).
"""

from __future__ import annotations

from dataclasses import dataclass

from tkedistro.core.workspace import Workspace
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import Manifest, load_release
from tkedistro.source.apply import borrowed_packs, series_inputs
from tkedistro.source.digest import inputs_digest
from tkedistro.source.state import Applied, State, load_state, stamp_of, write_state


@dataclass(frozen=True)
class ImportRecord:
    """What to add to ``source.json``: the import went from ``start`` to ``head`` and made
    ``added`` (subject, status, commit), in series order: the series' last ``len(added)``
    entries (the patches it inserted, and the listed ones after the first of them, applied
    again); the entries before them keep the commits ``source.json`` has."""

    start: str
    head: str
    added: tuple[tuple[str, str, str], ...]


def recordable(ws: Workspace, old: Manifest, start: str) -> bool:
    """``source.json`` described the tree the import started from (``start``) for the old
    series in full: the import can extend it (else the next ``source`` does what it always
    does)."""
    paths = ws.release(old.release)
    prev = load_state(paths)
    if prev is None or prev.head != start or prev.base != old.upstream.commit:
        return False
    return prev.stamp == stamp_of(prev.base, series_inputs(ws, old, paths.manifest_name))


def record_import(ws: Workspace, release: str, record: ImportRecord) -> bool:
    """Record in ``source.json`` the commits the import made (from its first inserted patch
    on), read against the series now in place. True when recorded (or already recorded by
    the run this one finishes)."""
    paths = ws.release(release)
    prev = load_state(paths)
    if prev is not None and prev.head == record.head and record.head != record.start:
        return True
    if prev is None or prev.head != record.start:
        return False
    new = load_release(ws, release)
    inputs = series_inputs(ws, new, paths.manifest_name)
    kept = len(inputs) - len(record.added)
    fresh = inputs[kept:]
    if not 0 <= kept <= len(prev.applied) or [i.file for i in inputs[:kept]] != \
            [a.file for a in prev.applied[:kept]]:
        return False
    applied = prev.applied[:kept] + tuple(
        Applied(inp.key, inp.file, subject, "3-way" if status == "imported-3way" else "applied",
                commit)
        for inp, (subject, status, commit) in zip(fresh, record.added, strict=True))
    write_state(paths, State(
        prev.base, record.head, stamp_of(prev.base, inputs), applied, tag=prev.tag,
        url=prev.url, inputs=inputs_digest(paths.manifest_file, [i.path for i in inputs]),
        packs=borrowed_packs(Repo(paths.src, paths.layout.src.as_posix()))))
    return True
