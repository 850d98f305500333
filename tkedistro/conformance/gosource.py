"""Just enough of Go source to see which image constants a piece of test code reaches.

Comments and string contents are masked (offsets kept), so brackets match and identifiers are
found only in code. Top-level functions are spans from ``func`` at column 0 to the next ``}``
at column 0 (gofmt's layout); package-level variables are names declared at the top level with
an image constant in their value. ``GoIndex`` reads packages of the tree on demand and follows
references from a span to those symbols, transitively (see ``tkedistro.conformance.catalog``
for the rule this serves).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

FRAMEWORK = "test/e2e/framework"
IMAGE_PACKAGE = "k8s.io/kubernetes/test/utils/image"
MODULE = "k8s.io/kubernetes/"

_MASKED = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|`[^`]*`|\'(?:\\.|[^\'\\\n])*\'',
                     re.S)
_IMPORT = re.compile(r'(?m)^\s*(?:import\s+)?(?:(\w+)\s+)?"([^"\n]+)"\s*$')
_TOP = re.compile(r"(?m)^(?:func|var|const|type) ")
_FUNC = re.compile(r"(?m)^func (\([^)\n]*\)\s*)?(\w+)")
_TOP_DECL = re.compile(r"(?m)^(?:(var|const) (?:\(|(\w+))|[^\s)}])")  # column-0 statements
_BLOCK_DECL = re.compile(r"(?m)^\t(\w+)[^\n=]*=")
_SPEC_CALL = re.compile(r"\bConformanceIt\(")
_IT_CALL = re.compile(r"(?<!func )\b(?:ConformanceIt|It)\(")
_WORD = re.compile(r"(?<![\w.])([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?")
_BRACKET = re.compile(r"[(){}\[\]]")
_FIRST_STRING = re.compile(r'\s*"((?:\\.|[^"\\\n])*)"')


def _mask(text: str) -> str:
    """``text`` with comments and string contents blanked (offsets and newlines kept)."""
    def blank(m: re.Match[str]) -> str:
        s = m.group()
        inner = re.sub(r"[^\n]", " ", s) if "\n" in s else " " * len(s)
        return inner if s[0] == "/" else s[0] + inner[1:-1] + s[-1]
    return _MASKED.sub(blank, text)


@dataclass
class GoFile:
    rel: str
    package: str
    text: str
    masked: str
    aliases: dict[str, str]  # import alias -> tree-relative package folder
    image_alias: str | None
    funcs: list[tuple[int, int, str | None]] = field(default_factory=list)  # start, end, name



def _read_go(tree: Path, rel: str) -> GoFile:
    text = (tree / rel).read_text(encoding="utf-8", errors="replace")
    masked = _mask(text)
    top = _TOP.search(masked)
    header = text[: top.start() if top else len(text)]
    aliases: dict[str, str] = {}
    image_alias = None
    for m in _IMPORT.finditer(header):
        alias = m[1] or m[2].rsplit("/", 1)[-1]
        if m[2] == IMAGE_PACKAGE:
            image_alias = alias
        elif m[2].startswith(MODULE):
            aliases[alias] = m[2][len(MODULE):]
    funcs: list[tuple[int, int, str | None]] = []
    for m in _FUNC.finditer(masked):
        end = masked.find("\n}", m.start())  # gofmt: a top-level func ends with `}` at column 0
        funcs.append((m.start(), len(masked) if end < 0 else end + 2, None if m[1] else m[2]))
    return GoFile(rel, str(Path(rel).parent), text, masked, aliases, image_alias, funcs)


def _block_name(masked: str, start: int, pos: int) -> str | None:
    """The name declared by the ``var (`` block line at ``pos`` (one tab in)."""
    names = [m[1] for m in _BLOCK_DECL.finditer(masked, start, pos + 1)]
    return names[-1] if names else None


def _closing(masked: str, open_at: int) -> int:
    """Offset just past the bracket closing the one at ``open_at``."""
    depth = 0
    for m in _BRACKET.finditer(masked, open_at):
        depth += 1 if m.group() in "({[" else -1
        if depth == 0:
            return m.end()
    return len(masked)


Key = tuple[str, str]  # (package folder, identifier)


@dataclass
class _Symbol:
    file: GoFile
    start: int
    end: int
    images: frozenset[str] = frozenset()  # set for variables; functions are scanned lazily


class GoIndex:
    """The tree's Go packages, read on demand; symbols are package-level funcs and vars."""

    def __init__(self, tree: Path, constants: set[str], helpers: Mapping[str, str]):
        self.tree, self.constants, self.helpers = tree, constants, helpers
        self.packages: dict[str, list[GoFile]] = {}
        self.symbols: dict[Key, _Symbol] = {}
        self.scanned: dict[Key, tuple[frozenset[str], frozenset[Key]]] = {}

    def package(self, folder: str) -> list[GoFile]:
        if folder not in self.packages:
            path = self.tree / folder
            names = sorted(p.name for p in path.glob("*.go")) if path.is_dir() else []
            self.packages[folder] = [_read_go(self.tree, f"{folder}/{n}") for n in names
                                     if not n.endswith("_test.go")]
            for go in self.packages[folder]:
                self._add_symbols(go)
        return self.packages[folder]

    def images_in(self, go: GoFile, start: int, end: int) -> set[str]:
        if go.image_alias is None:
            return set()
        found = re.findall(rf"\b{go.image_alias}\.(\w+)", go.masked[start:end])
        return {self.helpers.get(n, n) for n in found} & self.constants

    def _add_symbols(self, go: GoFile) -> None:
        for start, end, name in go.funcs:
            if name is not None:  # methods are not followed
                self.symbols[(go.package, name)] = _Symbol(go, start, end)
        if go.image_alias is None:
            return
        tops = [(m.start(), m[1], m[2]) for m in _TOP_DECL.finditer(go.masked)]
        for m in re.finditer(rf"\b{go.image_alias}\.(\w+)", go.masked):
            constant = self.helpers.get(m[1], m[1])
            i = bisect.bisect_right(tops, (m.start(), "\uffff")) - 1
            if constant not in self.constants or i < 0 or tops[i][1] is None:
                continue  # not an image, or not in a var/const declaration
            name = tops[i][2] or _block_name(go.masked, tops[i][0], m.start())
            if name and name != "_":
                key = (go.package, name)
                old = self.symbols.get(key)
                images = {constant, *(old.images if old else ())}
                self.symbols[key] = _Symbol(go, tops[i][0], m.end(), frozenset(images))

    def scan(self, go: GoFile, start: int, end: int) -> tuple[frozenset[str], frozenset[Key]]:
        """Constants named in the span and the symbols it refers to."""
        refs: set[Key] = set()
        for m in _WORD.finditer(go.masked, start, end):
            if m[2] and m[1] in go.aliases:
                folder = go.aliases[m[1]]
                self.package(folder)
                key = (folder, m[2])
            else:
                key = (go.package, m[1])
            if key in self.symbols:
                refs.add(key)
        return frozenset(self.images_in(go, start, end)), frozenset(refs)

    def closure(self, go: GoFile, start: int, end: int) -> set[str]:
        images: set[str] = set()
        todo = [self.scan(go, start, end)]
        seen: set[Key] = set()
        while todo:
            found, refs = todo.pop()
            images |= found
            for key in refs - seen:
                seen.add(key)
                sym = self.symbols[key]
                if sym.images:
                    images |= sym.images
                    continue
                if key not in self.scanned:
                    self.scanned[key] = self.scan(sym.file, sym.start, sym.end)
                todo.append(self.scanned[key])
        return images

    def file_images(self, spec_dirs: list[str],
                    spec_files: set[str]) -> Iterable[tuple[str, set[str]]]:
        """(file, constants) of every spec file and helper file the rule counts."""
        framework = sorted({str(p.parent.relative_to(self.tree))
                            for p in (self.tree / FRAMEWORK).rglob("*.go")})
        for folder in [*spec_dirs, *framework]:
            for go in self.package(folder):
                if go.rel in spec_files or not _IT_CALL.search(go.masked):
                    yield go.rel, self.images_in(go, 0, len(go.masked))

    def spec_images(self, specs: list[tuple[str, str]]) -> Iterable[tuple[str, set[str]]]:
        """(codename, constants) of every conformance spec whose ConformanceIt call is found."""
        by_file: dict[str, list[str]] = {}
        for codename, rel in specs:
            by_file.setdefault(rel, []).append(codename)
        for rel, codenames in by_file.items():
            go = next((g for g in self.package(str(Path(rel).parent)) if g.rel == rel), None)
            if go is None:
                continue
            calls = spec_calls(go)
            for codename in codenames:
                matching = [c for c in calls if codename.endswith(f" {c[0]} [Conformance]")
                            or codename == f"{c[0]} [Conformance]"]
                longest = max((len(c[0]) for c in matching), default=-1)
                images: set[str] = set()
                for text, start, end in matching:
                    if len(text) == longest:
                        images |= self.closure(go, start, end)
                yield codename, images


def spec_calls(go: GoFile) -> list[tuple[str, int, int]]:
    """(text, start, end) of each ``ConformanceIt("text", ...)`` call's arguments."""
    calls = []
    for m in _SPEC_CALL.finditer(go.masked):
        if go.masked[max(0, m.start() - 5):m.start()] == "func ":
            continue
        first = _FIRST_STRING.match(go.text, m.end())
        if first is not None:
            text = first[1].replace('\\"', '"')
            calls.append((text, m.end(), _closing(go.masked, m.end() - 1)))
    return calls
