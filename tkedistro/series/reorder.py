"""``tkedistro patches reorder RELEASE --move FILE --before|--after FILE``: change the order
of the series (e.g. after porting one patch by hand), keeping the numbers of the files it
does not move.

A file name's number is its ``NNNN`` prefix, optionally followed by lowercase letters
(``0011a-…``): numbers sort by their digits' value, then by the letters, so the names sort
as the series does (``0011-`` < ``0011a-`` < ``0011b-`` < ``0012-``). The moved file keeps
its name when its number already lies between its new neighbours'; else it gets a free
number between them: the next integer after the one before it when there is a gap, else
that one's number with a letter suffix. Only when no such number is left (e.g. between
``0011-`` and ``0011a-``, or between two files of the same number) does the reorder ask for
``--renumber``, which numbers every ``NNNN-…`` file by its new position (same width), as
``patches reorder`` always did; other names stay.

Under the release lock and never mid-rebase, as one series transaction
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

_NUMBERED = re.compile(r"^([0-9]+)([a-z]*)-(.+)$")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"

NumberKey = tuple[int, str]  # (the digits' value, the letters after them)


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
                   after: str | None = None, renumber: bool = False) -> ReorderResult:
    """Move patch ``move`` before or after another one; the files it does not move keep
    their names (``renumber``: every ``NNNN-`` file gets the number of its position)."""
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
        # The new order is decided here: checks of it (e.g. a patch now before one it
        # needs) go on this line, before any name is chosen or anything written.
        new = renumbered(order) if renumber else kept_numbers(manifest, order, moved)
        if new == files:
            return ReorderResult(release)
        refuse_broken_order(ws.root, files, order, manifest_name(release))
        return _write(ws, manifest, order, new)


def _find(manifest: Manifest, wanted: str) -> int:
    """The index of the entry ``wanted`` names: its path, file name or number
    (``0011``, ``0011a``)."""
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
    return match.group(1) + match.group(2) if match else name


def number_key(name: str) -> NumberKey | None:
    """``0011a-x.patch`` -> (11, "a"); None for a name without a number."""
    match = _NUMBERED.match(PurePosixPath(name).name)
    return (int(match.group(1)), match.group(2)) if match else None


def renumbered(order: list[str]) -> list[str]:
    """Each ``NNNN-rest`` file of ``order`` numbered by its position (same digit count)."""
    out = []
    for position, file in enumerate(order, 1):
        path = PurePosixPath(file)
        match = _NUMBERED.match(path.name)
        if match:
            width = len(match.group(1))
            path = path.with_name(f"{position:0{width}d}-{match.group(3)}")
        out.append(str(path))
    return out


def kept_numbers(manifest: Manifest, order: list[str], moved: str) -> list[str]:
    """``order`` with every name kept but ``moved``'s, which gets a number between its new
    numbered neighbours' when its own is not (a ``ManifestError`` when none is free)."""
    mine = number_key(moved)
    if mine is None:
        return order
    at = order.index(moved)
    low = next((k for f in reversed(order[:at]) if (k := number_key(f))), None)
    high = next((k for f in order[at + 1:] if (k := number_key(f))), None)
    if (low is None or low < mine) and (high is None or mine < high):
        return order
    free = between(low, high)
    if free is None:
        around = [f for f in (order[at - 1] if at else None,
                              order[at + 1] if at + 1 < len(order) else None) if f]
        raise ManifestError([f"{manifest_name(manifest.release)}: patches: no number is free "
                             f"for {moved} between {' and '.join(around)}; run the reorder "
                             "again with --renumber to number the whole series 0001.. in "
                             "order"])
    path = PurePosixPath(moved)
    match = _NUMBERED.match(path.name)
    assert match is not None
    digits = f"{free[0]:0{len(match.group(1))}d}{free[1]}"
    return [str(path.with_name(f"{digits}-{match.group(3)}")) if f == moved else f
            for f in order]


def between(low: NumberKey | None, high: NumberKey | None) -> NumberKey | None:
    """A number after ``low`` and before ``high`` (None: no bound), as short as can be:
    the next integer when there is a gap, else ``low``'s with a letter suffix."""
    if low is None:
        if high is None:
            return (1, "")
        if high[0] > 0:
            return (high[0] - 1, "")
        letters = _letters_between("", high[1])
        return None if letters is None else (0, letters)
    if high is None or high[0] - low[0] >= 2:
        return (low[0] + 1, "")
    letters = _letters_between(low[1], high[1] if high[0] == low[0] else None)
    return None if letters is None else (low[0], letters)


def _letters_between(low: str, high: str | None) -> str | None:
    """The shortest (then first) lowercase string after ``low`` and before ``high``."""
    candidates = sorted({low[:cut] + c for cut in range(len(low) + 1) for c in _LETTERS},
                        key=lambda s: (len(s), s))
    return next((s for s in candidates if low < s and (high is None or s < high)), None)


def _write(ws: Workspace, manifest: Manifest, order: list[str], new: list[str]) -> ReorderResult:
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
