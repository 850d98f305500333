"""The Go modules a release's binaries are compiled from: the tree's ``vendor/modules.txt``.

The 1.20 tree builds from ``vendor/`` (Kubernetes' own build runs Go 1.15 in GOPATH mode), so
the modules of the build are the modules ``vendor/modules.txt`` lists with at least one
package line: the vendored set, a superset of what each binary links. ``go version -m`` gives
nothing better here: a GOPATH-mode binary records only its Go version, no module list (checked
on the real kube-scheduler: its build info holds ``go1.15.15`` and no ``path``/``mod`` lines).

What a binary links can still be read cheaply from the binary itself: its function-name table
(kept by ``-s -w``, the runtime needs it) names every linked function with its import path, and
in GOPATH mode a vendored package's import path is ``<main module>/vendor/<package>``.
``linked_modules`` maps those names back to modules; a binary built in module mode (no such
names) gets ``None``, and the SBOM falls back to the vendored set.

The file's format: ``# <module> <version> [=> <replacement> [<version>]]`` lines, ``## explicit``
markers, then the module's package lines; ``# <module> => ...`` lines without a version record
wildcard replacements of ``go.mod``. Kubernetes' ``hack/update-vendor.sh`` sorts the file, so a
package line may follow an unrelated wildcard line: packages are given to their module by the
longest module path that prefixes them, never by position. ``k8s.io/*`` modules replaced by
``./staging/src/k8s.io/...`` are part of the tree itself (``GoModule.in_tree``).
"""

from __future__ import annotations

import mmap
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GoModule:
    """One module of the build: its path and version as required, the replacement the build
    uses instead (``replace_path``/``replace_version``; a local directory has no version) and
    how many of its packages ``vendor/`` holds."""

    path: str
    version: str
    replace_path: str | None = None
    replace_version: str | None = None
    packages: int = 0

    @property
    def in_tree(self) -> bool:
        """A local replacement (``./staging/src/k8s.io/api``): source that is part of the tree."""
        return self.replace_path is not None and self.replace_path.startswith(("./", "../"))

    @property
    def used_path(self) -> str:
        """The module path whose code is compiled in (the replacement's when replaced)."""
        return self.replace_path if self.replace_path and not self.in_tree else self.path

    @property
    def used_version(self) -> str:
        """The version compiled in (the replacement's when replaced by another version)."""
        return self.replace_version if self.replace_version and not self.in_tree else self.version


@dataclass(frozen=True)
class _Header:
    path: str
    version: str | None
    replace_path: str | None
    replace_version: str | None


def _header(line: str) -> _Header | None:
    """A ``# module ...`` line, or None for anything this reader does not know."""
    fields = line.split()[1:]
    if not fields:
        return None
    path, rest = fields[0], fields[1:]
    version = None
    if rest and rest[0] != "=>":
        version, rest = rest[0], rest[1:]
    if not rest:
        return _Header(path, version, None, None)
    if rest[0] != "=>" or len(rest) not in (2, 3):
        return None
    return _Header(path, version, rest[1], rest[2] if len(rest) == 3 else None)


def owner(name: str, paths: frozenset[str]) -> str | None:
    """The longest module path in ``paths`` that ``name`` (a package path, or a function name
    ``pkg.Func``) lies in: equal to it or continued by ``/`` or ``.``."""
    best = None
    for index, char in enumerate(name + "/"):
        if char in "/." and name[:index] in paths:
            best = name[:index]
    return best


def parse_modules(text: str) -> tuple[GoModule, ...]:
    """The modules of a ``vendor/modules.txt`` with at least one package line, sorted by path."""
    headers: dict[str, _Header] = {}
    package_lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("## ") or not line:
            continue
        if line.startswith("# "):
            head = _header(line)
            if head is None:
                continue
            known = headers.get(head.path)
            if known is None or (known.version is None and head.version is not None):
                headers[head.path] = head
            continue
        if not line.startswith("#"):
            package_lines.append(line)
    versioned = frozenset(p for p, h in headers.items() if h.version is not None)
    counts = Counter(owner(pkg, versioned) for pkg in package_lines)
    modules = [
        GoModule(h.path, h.version, h.replace_path, h.replace_version, counts[h.path])
        for h in headers.values()
        if h.version is not None and counts[h.path]
    ]
    return tuple(sorted(modules, key=lambda m: m.path))


def load_modules(tree: Path) -> tuple[GoModule, ...]:
    """The vendored modules of ``tree`` (empty when it has no ``vendor/modules.txt``)."""
    listing = tree / "vendor" / "modules.txt"
    if not listing.is_file():
        return ()
    return parse_modules(listing.read_text(encoding="utf-8"))


def main_module(tree: Path) -> str | None:
    """The ``module`` line of ``tree/go.mod`` (``k8s.io/kubernetes``), None without one."""
    try:
        text = (tree / "go.mod").read_text(encoding="utf-8")
    except OSError:
        return None
    found = re.search(r"^module\s+\"?([^\s\"]+)\"?\s*$", text, re.MULTILINE)
    return found.group(1) if found else None


def _vendored_names(binary: Path, prefix: str) -> set[str]:
    pattern = re.compile(re.escape(prefix.encode()) + rb"([A-Za-z0-9_~./+-]+)")
    with binary.open("rb") as handle:
        if binary.stat().st_size == 0:
            return set()
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return {m.group(1).decode("ascii") for m in pattern.finditer(data)}


def linked_modules(
    binary: Path, modules: Iterable[GoModule], main: str
) -> frozenset[str] | None:
    """The paths of the ``modules`` whose code ``binary`` links, read from the names of its
    functions under ``<main>/vendor/``; None when it has no such names (not a GOPATH-mode
    build from vendor/, so nothing can be said this way)."""
    names = _vendored_names(binary, f"{main}/vendor/")
    if not names:
        return None
    paths = frozenset(m.path for m in modules)
    found = {owner(name, paths) for name in names}
    return frozenset(p for p in found if p is not None)
