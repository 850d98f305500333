"""``tkedistro patches reorder RELEASE --move FILE --before|--after FILE``: change the order
of the series (e.g. after porting one patch by hand) and renumber its files.

Every file named ``NNNN-…`` gets the number of its new position (same width); other names
stay. Under the release lock and never mid-rebase, as one series transaction
(``series/transaction.py``): the renamed files and the manifest are staged, then swapped
in, and the old names deleted; an interrupted reorder leaves the series as before or as
after. A file another release lists is neither overwritten nor deleted. The patch contents
do not change; the next ``tkedistro source`` applies the series in its new order from the
first entry that moved.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from tkedistro.core.errors import ManifestError
from tkedistro.core.workspace import Workspace, manifest_name
from tkedistro.model.dependencies import refuse_broken_order
from tkedistro.model.manifest import Manifest
from tkedistro.series import transaction
from tkedistro.series.export import locked_release, require_manifest
from tkedistro.series.transaction import SeriesChange

_NUMBERED = re.compile(r"^([0-9]+)-(.+)$")


@dataclass
class ReorderResult:
    release: str
    series: list[str] = field(default_factory=list)  # the new order
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old, new)

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release, "series": self.series,
                "renamed": [{"from": old, "to": new} for old, new in self.renamed]}

    def format_text(self) -> str:
        if not self.renamed and not self.series:
            return f"{self.release}: the series is already in that order; nothing changed"
        lines = [f"renamed  {old} -> {new}" for old, new in self.renamed]
        lines += [f"  {i:>3}  {file}" for i, file in enumerate(self.series, 1)]
        lines.append(f"{self.release}: new order written to {manifest_name(self.release)}; run "
                     f"`tkedistro source {self.release}` to apply it")
        return "\n".join(lines)


def reorder_series(ws: Workspace, release: str, move: str, *, before: str | None = None,
                   after: str | None = None) -> ReorderResult:
    """Move patch ``move`` before or after another one; renumber the ``NNNN-`` files."""
    if (before is None) == (after is None):
        raise ManifestError(["give exactly one of --before FILE, --after FILE"])
    require_manifest(ws, release)
    with locked_release(ws, release) as manifest:
        files = [e.file for e in manifest.patches]
        moved = files[_find(manifest, move)]
        anchor = files[_find(manifest, before or after or "")]
        if moved == anchor:
            raise ManifestError([f"{moved}: cannot move a patch {'before' if before else 'after'}"
                                 " itself"])
        order = [f for f in files if f != moved]
        at = order.index(anchor) + (1 if after else 0)
        order.insert(at, moved)
        if order == files:
            return ReorderResult(release)
        refuse_broken_order(ws.root, files, order, manifest_name(release))
        return _write(ws, manifest, order)


def _find(manifest: Manifest, wanted: str) -> int:
    """The index of the entry ``wanted`` names: its path, file name or ``NNNN`` number."""
    names = [e.file for e in manifest.patches]
    hits = [i for i, f in enumerate(names) if wanted in (f, PurePosixPath(f).name,
                                                           _number(PurePosixPath(f).name))]
    if len(hits) == 1:
        return hits[0]
    where = f"{manifest_name(manifest.release)}: patches"
    if hits:
        raise ManifestError([f"{where}: {wanted!r} names {len(hits)} patches ("
                             + ", ".join(names[i] for i in hits) + "); give the file name"])
    close = difflib.get_close_matches(wanted, [PurePosixPath(f).name for f in names], n=1)
    guess = f"; did you mean {close[0]}?" if close else ""
    raise ManifestError([f"{where}: no patch {wanted!r} in the series{guess}"])


def _number(name: str) -> str:
    match = _NUMBERED.match(name)
    return match.group(1) if match else name


def renumbered(order: list[str]) -> list[str]:
    """Each ``NNNN-rest`` file of ``order`` numbered by its position (same digit count)."""
    out = []
    for position, file in enumerate(order, 1):
        path = PurePosixPath(file)
        match = _NUMBERED.match(path.name)
        if match:
            width = len(match.group(1))
            path = path.with_name(f"{position:0{width}d}-{match.group(2)}")
        out.append(str(path))
    return out


def _write(ws: Workspace, manifest: Manifest, order: list[str]) -> ReorderResult:
    new = renumbered(order)
    renames = [(old, name) for old, name in zip(order, new, strict=True) if old != name]
    listed = [e.file for e in manifest.patches]
    for old, _ in renames:  # the path rules of the series, as `source` has them
        ws.repo_file(old, f"{manifest_name(manifest.release)}: patches[{listed.index(old)}].file")
    clash = [name for _, name in renames if (ws.root / name).exists()]
    if clash:  # e.g. 0001-x and 0002-x swapped: each new name is the other's old one
        raise ManifestError([f"{name}: renumbering would write over this file; rename it "
                             "by hand first" for name in clash])
    change = SeriesChange(
        writes={name: (ws.root / old).read_bytes() for old, name in renames},
        deletes=[old for old, _ in renames if old not in new],
        series=new, renamed={name: old for old, name in renames})
    with transaction.staging(ws, manifest.release):
        transaction.commit(ws, manifest, change, "patches reorder")
    return ReorderResult(manifest.release, new, renames)
