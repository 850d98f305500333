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
from collections.abc import Callable, Iterable, Mapping
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
# call patterns are plain literals (fast); _called() reads the whole name before the match
_SPEC_CALL = re.compile(r"ConformanceIt\(")
_IT_CALL = re.compile(r"It\(")
_CONTAINER_CALL = re.compile(r"(?:Describe|Context|When)\(")
_IT_NAMES = ("It", "ConformanceIt")
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
    # set for spec files only: bracket open -> just past its close; argument spans of the
    # It calls and of the Describe/Context/When calls
    pairs: dict[int, int] = field(default_factory=dict)
    its: list[tuple[int, int]] = field(default_factory=list)
    containers: list[tuple[int, int]] = field(default_factory=list)



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


def _pairs(masked: str) -> dict[int, int]:
    """Offset of each opening bracket -> offset just past its closing one."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACKET.finditer(masked):
        if m.group() in "({[":
            stack.append(m.start())
        elif stack:
            pairs[stack.pop()] = m.end()
    return pairs


def _called(masked: str, m: re.Match[str]) -> str:
    """The whole name called where ``m`` ends at a ``(``; "" for a ``func`` header."""
    end = start = m.end() - 1
    while start > 0 and (masked[start - 1].isalnum() or masked[start - 1] == "_"):
        start -= 1
    return "" if masked[max(0, start - 5):start] == "func " else masked[start:end]


def _is_container(name: str) -> bool:
    return name.endswith("Describe") or name in ("Context", "When")  # also SIGDescribe


def _calls(go: GoFile, pattern: re.Pattern[str],
           wanted: Callable[[str], bool]) -> list[tuple[int, int]]:
    """(start, end) of the arguments of each call ``pattern`` finds whose name is wanted."""
    return [(m.end(), go.pairs.get(m.end() - 1, len(go.masked)))
            for m in pattern.finditer(go.masked) if wanted(_called(go.masked, m))]


def setup_spans(go: GoFile, start: int) -> list[tuple[int, int]]:
    """What runs before the spec whose call starts at ``start``: the outermost container call
    (``Describe``, ``Context``, ``When``) holding it, minus every ``It`` call and every container
    call not holding it (so ``BeforeEach`` blocks and container-level variables stay)."""
    holding = [c for c in go.containers if c[0] <= start < c[1]]
    if not holding:
        return []
    cut = sorted([*go.its, *(c for c in go.containers if c not in holding)])
    pieces, at = [], min(holding)[0]
    for begin, end in cut:
        if begin > at:
            pieces.append((at, begin))
        at = max(at, end)
    return [*pieces, (at, max(holding)[1])] if at < max(holding)[1] else pieces


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
        self.scanned: dict[tuple[str, int, int], tuple[frozenset[str], frozenset[Key]]] = {}

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
            if name not in (None, "init"):  # methods are not followed; init is never called
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
        """Constants named in the span and the symbols it refers to (memoised)."""
        if (go.rel, start, end) not in self.scanned:
            self.scanned[(go.rel, start, end)] = self._scan(go, start, end)
        return self.scanned[(go.rel, start, end)]

    def _scan(self, go: GoFile, start: int, end: int) -> tuple[frozenset[str], frozenset[Key]]:
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

    def closure(self, go: GoFile, spans: Iterable[tuple[int, int]]) -> set[str]:
        """Constants the spans name or reach through package-level symbols, transitively."""
        images: set[str] = set()
        todo = [self.scan(go, start, end) for start, end in spans]
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
                todo.append(self.scan(sym.file, sym.start, sym.end))
        return images

    def file_images(self, spec_dirs: list[str],
                    spec_files: set[str]) -> Iterable[tuple[str, set[str]]]:
        """(file, constants) of every spec file and helper file the rule counts."""
        framework = sorted({str(p.parent.relative_to(self.tree))
                            for p in (self.tree / FRAMEWORK).rglob("*.go")})
        for folder in [*spec_dirs, *framework]:
            for go in self.package(folder):
                if go.rel in spec_files or not any(
                        _called(go.masked, m) in _IT_NAMES for m in _IT_CALL.finditer(go.masked)):
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
            go.pairs = _pairs(go.masked)
            go.its = _calls(go, _IT_CALL, _IT_NAMES.__contains__)
            go.containers = _calls(go, _CONTAINER_CALL, _is_container)
            calls = spec_calls(go)
            for codename in codenames:
                matching = [c for c in calls if codename.endswith(f" {c[0]} [Conformance]")
                            or codename == f"{c[0]} [Conformance]"]
                longest = max((len(c[0]) for c in matching), default=-1)
                images: set[str] = set()
                for text, start, end in matching:
                    if len(text) == longest:
                        images |= self.closure(go, [(start, end), *setup_spans(go, start)])
                yield codename, images


def spec_calls(go: GoFile) -> list[tuple[str, int, int]]:
    """(text, start, end) of each ``ConformanceIt("text", ...)`` call's arguments."""
    calls = []
    for m in _SPEC_CALL.finditer(go.masked):
        if _called(go.masked, m) != "ConformanceIt":
            continue
        first = _FIRST_STRING.match(go.text, m.end())
        if first is not None:
            text = first[1].replace('\\"', '"')
            calls.append((text, m.end(), go.pairs.get(m.end() - 1, len(go.masked))))
    return calls
