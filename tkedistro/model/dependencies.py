"""Which patch of a series builds on which: the lines one patch needs before it (context and
removed lines) that another one adds, in the same file and the same place.

A patch B *needs* a patch A when a hunk of B overlaps a hunk of A (same file; B's old line
range meets A's new one, widened by how far the other patches of the series shift that file)
and B's pre-image holds a meaningful line A adds (not one A already had, not a blank, ``}``,
``import (`` or other line found everywhere), or two neighbouring meaningful lines that A
made neighbours by removing the lines between them. When each needs the other (a revert, a
patch that moves lines back), the one later in the series needs the earlier one.

Pure: the functions take the patch texts (and, for a failing patch, a way to read the tree's
files); ``validate``, ``patches reorder``, ``source`` and ``patches import`` call them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tkedistro.core.errors import ManifestError
from tkedistro.core.workspace import path_problem
from tkedistro.model.diffscan import diff_part


@dataclass(frozen=True)
class Hunk:
    """One ``@@`` hunk of a diff: the file before (``old_path``) and after (``path``), where it
    starts and how many lines it spans on each side, its pre-image lines (context and
    removed) and the lines it adds."""

    old_path: str
    path: str
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    before: tuple[str, ...]
    added: tuple[str, ...]
    joins: tuple[tuple[str, str], ...] = ()  # lines made neighbours by removing those between


def parse_hunks(diff: str) -> list[Hunk]:
    """The hunks of a diff, file by file (a deleted file keeps its old name as ``path``).

    Hunk lines are counted from the ``@@`` header, so content that looks like a header is
    never misread.
    """
    hunks: list[Hunk] = []
    old = new = ""
    lines = diff.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if line.startswith("--- "):
            old = line[4:].split("\t")[0].removeprefix("a/")
        elif line.startswith("+++ "):
            new = line[4:].split("\t")[0].removeprefix("b/")
        elif match := _COUNTS.match(line):
            before, added, joins, index = _hunk_body(lines, index, match)
            path = new if new != "/dev/null" else old
            hunks.append(Hunk(old if old != "/dev/null" else path, path,
                              int(match.group(1)), int(match.group(2) or 1),
                              int(match.group(3)), int(match.group(4) or 1), before, added,
                              joins))
    return hunks


def _hunk_body(lines: list[str], index: int, header: re.Match[str]) -> tuple[
        tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...], int]:
    """(pre-image lines, added lines, joins, index after the hunk) of the hunk ``header``
    opens; a join is two post-image lines that removed lines stood between."""
    left, right = int(header.group(2) or 1), int(header.group(4) or 1)
    before: list[str] = []
    added: list[str] = []
    joins: list[tuple[str, str]] = []
    last: str | None = None  # the previous post-image line
    cut = False  # lines were removed since it
    while (left > 0 or right > 0) and index < len(lines):
        tag, text = lines[index][:1], lines[index][1:]
        index += 1
        if tag == "-":
            before.append(text)
            left, cut = left - 1, True
            continue
        if tag not in (" ", "", "+"):
            continue
        if cut and last is not None:
            joins.append((last, text))
        last, cut = text, False
        if tag == "+":
            added.append(text)
            right -= 1
        else:
            before.append(text)
            left, right = left - 1, right - 1
    return tuple(before), tuple(added), tuple(joins), index


_COUNTS = re.compile(r"^@@ -([0-9]+)(?:,([0-9]+))? \+([0-9]+)(?:,([0-9]+))? @@")


# Lines that say nothing about where they are: found in most files, many times.
_COMMON = frozenset({
    "import (", "else {", "} else {", "return", "return nil", "return err", "return nil, err",
    "return false", "return true", "default:", "break", "continue", "fi", "done", "end",
    "else", "try:", "pass", "if err != nil {", "return nil, nil", "//", "#", "/*", "*/", "*",
    "var (", "const (", "type (",
})
_WORD = re.compile(r"[A-Za-z0-9_]")


@dataclass(frozen=True)
class Need:
    """``patch`` builds on ``needed``: both change ``path`` around lines ``first``-``last``
    (of the file as ``patch`` finds it)."""

    patch: str
    needed: str
    path: str
    first: int
    last: int

    def describe(self, verb: str = "comes") -> str:
        """``0016-x.patch now comes before 0011-y.patch, which it needs (both change …)``."""
        return (f"{_name(self.patch)} {verb} before {_name(self.needed)}, which it needs "
                f"(both change {self.path} lines {self.first}-{self.last})")


def meaningful(line: str) -> bool:
    """Whether a line can tell where a patch applies: not blank, not punctuation only, not
    a line every file of its kind holds (``}``, ``import (``, ``return nil``)."""
    text = line.strip()
    return bool(_WORD.search(text)) and text not in _COMMON


def dependencies(series: Sequence[tuple[str, str]]) -> list[Need]:
    """Every (patch, patch it needs) of ``series`` (name, patch text), in series order.

    Each text is parsed and its hunks indexed by file once; a pair compares only the hunks
    of the same file (20 patches of 113 KiB: a few milliseconds)."""
    parsed = [(name, [_Scan.of(h) for h in parse_hunks(diff_part(text))])
              for name, text in series]
    slack = _slack(parsed)
    by_file = [_by_file(scans) for _, scans in parsed]
    found: list[Need] = []
    for j, (later, scans) in enumerate(parsed):
        for i, (other, other_scans) in enumerate(parsed):
            if i == j:
                continue
            uses = _uses(scans, by_file[i], slack)
            if uses is None:
                continue
            if i > j and _uses(other_scans, by_file[j], slack) is not None:
                continue  # each needs the other: the later one needs the earlier one
            found.append(Need(later, other, *uses))
    return found


def misplaced(needs: Sequence[Need], order: Sequence[str]) -> list[Need]:
    """The needs ``order`` breaks: a patch placed before one it needs."""
    at = {name: index for index, name in enumerate(order)}
    return [n for n in needs if n.patch in at and n.needed in at and at[n.needed] > at[n.patch]]


@dataclass(frozen=True)
class _Scan:
    """A hunk and what the comparison asks of it, worked out once."""

    hunk: Hunk
    wanted: frozenset[str]  # its meaningful pre-image lines
    new: frozenset[str]  # lines it adds that were not there before
    joins: frozenset[tuple[str, str]]  # meaningful lines it made neighbours
    pairs: frozenset[tuple[str, str]]  # neighbouring lines of its pre-image

    @classmethod
    def of(cls, hunk: Hunk) -> _Scan:
        return cls(hunk, frozenset(line for line in hunk.before if meaningful(line)),
                   frozenset(hunk.added) - frozenset(hunk.before),
                   frozenset(p for p in hunk.joins if meaningful(p[0]) and meaningful(p[1])),
                   frozenset(zip(hunk.before, hunk.before[1:], strict=False)))


def _by_file(scans: list[_Scan]) -> dict[str, list[_Scan]]:
    """A patch's hunks by the file they write."""
    files: dict[str, list[_Scan]] = {}
    for scan in scans:
        files.setdefault(scan.hunk.path, []).append(scan)
    return files


def _slack(parsed: list[tuple[str, list[_Scan]]]) -> dict[str, int]:
    """File -> how many lines all hunks of the series shift it in total (the tolerance of a
    line range compared across patches)."""
    shift: dict[str, int] = {}
    for _, scans in parsed:
        for scan in scans:
            hunk = scan.hunk
            shift[hunk.path] = shift.get(hunk.path, 0) + abs(hunk.new_count - hunk.old_count)
    return shift


def _uses(scans: list[_Scan], others: dict[str, list[_Scan]],
          slack: dict[str, int]) -> tuple[str, int, int] | None:
    """(file, first line, last line) of the first hunk of ``scans`` whose pre-image holds a
    meaningful line a nearby hunk of ``others`` adds, or two meaningful lines it made
    neighbours by removing the lines between them; None when none does."""
    for scan in scans:
        hunk = scan.hunk
        last = hunk.old_start + max(hunk.old_count, 1) - 1
        tolerance = slack.get(hunk.old_path, 0)
        for other in others.get(hunk.old_path, []) if scan.wanted else []:
            end = other.hunk.new_start + max(other.hunk.new_count, 1) - 1
            if hunk.old_start > end + tolerance or last < other.hunk.new_start - tolerance:
                continue
            if scan.wanted & other.new or scan.pairs & other.joins:
                return hunk.old_path, hunk.old_start, last
    return None


def missing_preimage(diff: str, read: Callable[[str], str | None]) -> dict[str, set[str]]:
    """File -> the meaningful pre-image lines of ``diff`` that the tree's file does not hold
    (``read(path)``: the file's text, None when there is none)."""
    missing: dict[str, set[str]] = {}
    for hunk in parse_hunks(diff):
        text = read(hunk.old_path)
        have = set(text.split("\n")) if text is not None else set()
        lost = {line for line in hunk.before if meaningful(line) and line not in have}
        if lost:
            missing.setdefault(hunk.old_path, set()).update(lost)
    return missing


def providers(wanted: dict[str, set[str]], candidates: Sequence[tuple[str, str]]) -> list[str]:
    """The names of ``candidates`` (name, patch text) that add some of the ``wanted`` lines
    (file -> lines) to that file."""
    found = []
    for name, text in candidates:
        added: dict[str, set[str]] = {}
        for hunk in parse_hunks(diff_part(text)):
            added.setdefault(hunk.path, set()).update(hunk.added)
        if any(lines & added.get(path, set()) for path, lines in wanted.items()):
            found.append(name)
    return found


def tree_reader(tree: Path) -> Callable[[str], str | None]:
    """``read`` for ``missing_preimage``: a file of ``tree`` by its path in a diff (None when
    it is missing, or the path would leave the tree or pass a symlink)."""
    def read(path: str) -> str | None:
        parts = path.split("/")
        if path.startswith("/") or ".." in parts:
            return None
        if any((tree.joinpath(*parts[:n])).is_symlink() for n in range(1, len(parts) + 1)):
            return None
        target = tree / path
        return target.read_text(encoding="utf-8", errors="replace") if target.is_file() else None
    return read


def refuse_broken_order(root: Path, old: Sequence[str], new: Sequence[str], where: str) -> None:
    """Refuse (exit 3) a new order of the series files ``old`` (paths under ``root``) that puts
    a patch before one it needs, where ``old`` did not; each need named."""
    series = [(file, _read(root, file)) for file in old]
    needs = dependencies(series)
    before = set(misplaced(needs, old))
    broken = [n for n in misplaced(needs, new) if n not in before]
    if broken:
        raise ManifestError(
            [f"{where}: {n.describe('would come')}" for n in broken],
            hint="move the needed patch along with it, or choose another place; nothing was "
                 "changed")


def _read(root: Path, file: str) -> str:
    """A series file's text ("" when the path policy refuses it: ``validate`` says why)."""
    if path_problem(root, file) is not None:
        return ""
    return (root / file).read_bytes().decode("utf-8", errors="surrogateescape")


def _name(file: str) -> str:
    return PurePosixPath(file).name
