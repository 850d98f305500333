"""The diff part of a patch, scanned line by line: which files it touches, which binary
diffs lack the full index lines ``git apply`` needs, and which added lines are conflict
markers. Hunk lines are counted, so content that looks like a header is never misread.

The conflict-marker rule (docs/patches.md): an added line that starts with ``<<<<<<< `` or
``>>>>>>> `` (seven characters, then a space: git always writes a label there) is a marker;
an added ``=======`` line (alone on the line) or ``||||||| `` line is one only while an added
``<<<<<<< `` line of the same file is open, so a Markdown or RST heading underline is not."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tkedistro.core.errors import PatchFormatError

_HUNK = re.compile(r"^@@ -[0-9]+(?:,([0-9]+))? \+([0-9]+)(?:,([0-9]+))? @@")
_OPEN, _CLOSE, _MIDDLE = ("<<<<<<< ", ">>>>>>> ", "||||||| ")
_SEPARATOR = "======="
_FULL_INDEX = re.compile(r"^index ([0-9a-f]{40}|[0-9a-f]{64})\.\.([0-9a-f]{40}|[0-9a-f]{64})\b")


@dataclass
class _Diffs:
    """What the diff part touches: every file, and binary files ``git apply`` cannot use."""

    files: list[str] = field(default_factory=list)
    binary: list[str] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # old and new names of every file


@dataclass(frozen=True)
class Marker:
    """An added conflict-marker line: the file, its line number in the new file, the text."""

    path: str
    line: int
    text: str


@dataclass
class _Section:
    """Header of one file's diff: what ``git apply`` needs to know which file it touches."""

    git_path: str | None = None
    old: str | None = None
    new: str | None = None
    rename_to: str | None = None
    old_name: str | None = None  # "rename from" / "copy from"
    full_index: bool = False
    open_marker: bool = False  # an added ``<<<<<<< `` line is not closed yet

    def path(self) -> str | None:
        if self.new and self.new != "/dev/null":
            return _strip_prefix(self.new)
        if self.old and self.old != "/dev/null":
            return _strip_prefix(self.old)
        return self.rename_to or self.git_path


class _Scanner:
    """Walk the diff part line by line, counting hunk lines so content is never misread."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.out = _Diffs()
        self.section: _Section | None = None
        self.in_binary = False

    def scan(self, diff: str) -> _Diffs:
        lines = diff.split("\n")
        i = 0
        while i < len(lines):
            i = self._line(lines, i)
        self._close()
        if not self.out.files:
            raise PatchFormatError(
                [f"{self.shown}: no diff found (an empty commit cannot be applied)"]
            )
        return self.out

    def _line(self, lines: list[str], i: int) -> int:
        """Consume the line (or hunk) at ``i``; return the index of the next one."""
        line = lines[i]
        if line.startswith("diff --git "):
            self._open(_Section(git_path=_git_header_path(line[len("diff --git "):])))
            return i + 1
        if self.in_binary:
            return i + 1  # base85 data up to the next "diff --git"
        if starts_unified(lines, i) and (self.section is None or self.section.old is not None):
            self._open(_Section())  # a ---/+++ pair without "diff --git" (diff -u, quilt)
        if self.section is None:
            return i + 1  # text before the first diff: a diffstat, a comment
        return self._header_line(lines, i)

    def _header_line(self, lines: list[str], i: int) -> int:
        assert self.section is not None
        line = lines[i]
        if line.startswith("--- ") and self.section.old is None:
            self.section.old = _unquote(line[4:].split("\t")[0])
        elif line.startswith("+++ ") and self.section.new is None:
            self.section.new = _unquote(line[4:].split("\t")[0])
        elif line.startswith(("rename to ", "copy to ")):
            self.section.rename_to = _unquote(line.split(" ", 2)[2])
        elif line.startswith(("rename from ", "copy from ")):
            self.section.old_name = _unquote(line.split(" ", 2)[2])
        elif line.startswith("index "):
            self.section.full_index = bool(_FULL_INDEX.match(line))
        elif line.startswith("GIT binary patch"):
            self._binary(needs_index=True)
        elif line.startswith("Binary files "):
            self._binary(needs_index=False)
        elif line.startswith("@@"):
            return self._hunk(lines, i)
        return i + 1

    def _binary(self, *, needs_index: bool) -> None:
        assert self.section is not None
        path = self.section.path()
        if path and (not needs_index or not self.section.full_index):
            self.out.binary.append(path)
        self.in_binary = True

    def _hunk(self, lines: list[str], i: int) -> int:
        match = _HUNK.match(lines[i])
        if not match:
            raise PatchFormatError([f"{self.shown}: diff line {i + 1}: malformed hunk header"])
        old, new = int(match.group(1) or "1"), int(match.group(3) or "1")
        number = int(match.group(2))  # the line number in the new file
        j = i + 1
        while old > 0 or new > 0:
            if j >= len(lines):
                raise PatchFormatError(
                    [f"{self.shown}: diff line {i + 1}: hunk ends early (the file is truncated "
                     "or was edited by hand; regenerate it with git format-patch)"]
                )
            tag = lines[j][:1]
            if tag == "+":
                self._added(lines[j][1:], number)
            old -= tag in (" ", "-", "")
            new -= tag in (" ", "+", "")
            number += tag in (" ", "+", "")
            j += 1
        while j < len(lines) and lines[j].startswith("\\"):
            j += 1  # "\ No newline at end of file"
        return j

    def _added(self, text: str, number: int) -> None:
        """Record ``text`` (an added line, new-file line ``number``) if it is a marker."""
        assert self.section is not None
        section, text = self.section, text.removesuffix("\r")
        is_marker = text.startswith((_OPEN, _CLOSE)) or (
            section.open_marker and (text == _SEPARATOR or text.startswith(_MIDDLE)))
        if text.startswith(_OPEN):
            section.open_marker = True
        elif text.startswith(_CLOSE):
            section.open_marker = False
        if is_marker:
            self.out.markers.append(Marker(section.path() or "?", number, text))

    def _open(self, section: _Section) -> None:
        self._close()
        self.section = section
        self.in_binary = False

    def _close(self) -> None:
        if self.section is None:
            return
        section = self.section
        path = section.path()
        if path and path not in self.out.files:
            self.out.files.append(path)
        names = [_strip_prefix(n) for n in (section.old, section.new) if n and n != "/dev/null"]
        for name in [path, *names, section.old_name, section.rename_to]:
            if name and name not in self.out.paths:
                self.out.paths.append(name)
        self.section = None


def diff_part(text: str) -> str:
    """The diff of a patch file's text, from its first ``diff --git`` (or ``---``) line."""
    start = text.find("diff --git ")
    return text[start:] if start >= 0 else text[max(text.find("--- "), 0):]


def scan_diffs(diff: str, shown: str) -> _Diffs:
    return _Scanner(shown).scan(diff)


def conflict_markers(text: str, shown: str) -> list[Marker]:
    """The conflict-marker lines the diffs in ``text`` add (text before the first diff, such
    as a mail's header and message, is skipped); ``[]`` for text without a diff."""
    try:
        return scan_diffs(text, shown).markers
    except PatchFormatError:
        return []


def touched_paths(text: str, shown: str) -> list[str]:
    """Every path the diffs in ``text`` read or write (both names of a rename or copy)."""
    try:
        return scan_diffs(text, shown).paths
    except PatchFormatError:
        return []


def describe_markers(markers: list[Marker]) -> list[str]:
    """``README.md line 3: '<<<<<<< HEAD'`` for the first marker of each file, with a count."""
    firsts: dict[str, tuple[Marker, int]] = {}
    for marker in markers:
        first, count = firsts.get(marker.path, (marker, 0))
        firsts[marker.path] = (first, count + 1)
    return [f"{m.path} line {m.line}: {m.text!r}"
            + (f" (and {count - 1} more marker line(s))" if count > 1 else "")
            for m, count in firsts.values()]


def _strip_prefix(path: str) -> str:
    return path[2:] if path[:2] in ("a/", "b/") else path


def _unquote(path: str) -> str:
    """Undo git's C-style quoting of unusual path names (``"a/x\\ty"``)."""
    path = path.strip()
    if not (len(path) >= 2 and path[0] == path[-1] == '"'):
        return path
    raw = path[1:-1].encode("utf-8", errors="surrogateescape")
    return raw.decode("unicode_escape").encode("latin-1").decode("utf-8", errors="replace")


def _git_header_path(rest: str) -> str | None:
    """The b/ path of ``diff --git a/P b/P`` (used when no ---/+++ lines follow)."""
    if rest.startswith('"'):
        quoted = re.match(r'^"(?:[^"\\]|\\.)*" (.+)$', rest)
        return _strip_prefix(_unquote(quoted.group(1))) if quoted else None
    half = (len(rest) - 1) // 2
    if rest[half] == " " and rest[:half][2:] == rest[half + 1:][2:]:
        return rest[half + 1:][2:]
    return rest.rsplit(" b/", 1)[-1] if " b/" in rest else None


def starts_unified(lines: list[str], i: int) -> bool:
    """Whether ``lines[i]`` opens a ``---``/``+++`` file header of a unified diff."""
    return (
        lines[i].startswith("--- ")
        and i + 1 < len(lines)
        and lines[i + 1].startswith("+++ ")
    )
