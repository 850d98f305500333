"""``tkedistro validate``: check manifests and patch series without network.

Every problem of every file is collected first; ``raise_for_problems`` then raises one
error (exit 3 when any manifest problem exists, else exit 4 for patch problems only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tkedistro.core.errors import ManifestError, PatchFormatError
from tkedistro.core.workspace import (
    MAX_PATCH_BYTES,
    RELEASE_NAME,
    Workspace,
    check_release_name,
    manifest_name,
    path_problem,
)
from tkedistro.model.dependencies import dependencies, misplaced
from tkedistro.model.diffscan import conflict_markers, describe_markers
from tkedistro.model.manifest import Manifest, list_release_names, load_manifest
from tkedistro.model.patches import (
    MARKERS,
    PatchFile,
    check_trailers,
    parse_patch,
    unconfirmed_trailers,
)

ProblemKind = Literal["manifest", "patch"]
PATCH_SUFFIXES = (".patch", ".diff")
HINT = "manifest format: docs/manifest.md; patch format: docs/patches.md"


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    message: str


@dataclass
class ReleaseCheck:
    """The outcome for one release: its manifest, how many patches it lists, its problems."""

    release: str
    manifest: str
    patches: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # reported, exit 0

    def add(self, kind: ProblemKind, messages: list[str]) -> None:
        self.problems.extend(Problem(kind, m) for m in messages)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        data = {
            "release": self.release,
            "manifest": self.manifest,
            "ok": self.ok,
            "patches": self.patches,
            "problems": [{"kind": p.kind, "message": p.message} for p in self.problems],
        }
        return {**data, "warnings": self.warnings} if self.warnings else data


@dataclass(frozen=True)
class ValidationResult:
    releases: tuple[ReleaseCheck, ...]

    @property
    def problems(self) -> list[Problem]:
        return [p for r in self.releases for p in r.problems]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "releases": [r.to_json() for r in self.releases]}

    def format_text(self) -> str:
        """One line per release; the problems themselves go to stderr with the error."""
        if not self.releases:
            return "no release manifests in releases/"
        lines = []
        for check in self.releases:
            count = len(check.problems)
            state = "ok" if check.ok else f"{count} problem{'s' if count != 1 else ''}"
            lines.append(f"{check.manifest}: {state} ({_plural(check.patches, 'patch')})")
            lines += [f"  warning: {message}" for message in check.warnings]
        return "\n".join(lines)

    def raise_for_problems(self) -> None:
        problems = self.problems
        messages = [p.message for p in problems]
        if any(p.kind == "manifest" for p in problems):
            raise ManifestError(messages, hint=HINT)
        if problems:
            raise PatchFormatError(messages, hint=HINT)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}es"


def validate_releases(ws: Workspace, names: list[str]) -> ValidationResult:
    """Check the named releases (all of ``releases/*.yaml`` when ``names`` is empty)."""
    chosen = names or list_release_names(ws.releases_dir)
    checks = [validate_release(ws, name) for name in chosen]
    if not names:
        checks += [_misnamed(ws, path) for path in sorted(ws.releases_dir.glob("*.yml"))]
    return ValidationResult(tuple(checks))


def _misnamed(ws: Workspace, path: Path) -> ReleaseCheck:
    check = ReleaseCheck(release=path.stem, manifest=ws.rel(path))
    check.add("manifest", [f"{check.manifest}: manifests end in .yaml; rename it to "
                           f"{manifest_name(path.stem)}"])
    return check


def validate_release(ws: Workspace, release: str) -> ReleaseCheck:
    check = ReleaseCheck(release=release, manifest=manifest_name(release))
    try:
        manifest = load_manifest(ws.manifest_path(check_release_name(release)), check.manifest)
    except ManifestError as exc:
        check.add("manifest", exc.problems)
        if RELEASE_NAME.fullmatch(release):
            _check_patch_dir_files(ws, release, check)
        return check
    check.patches = len(manifest.patches)
    _check_series(ws, manifest, check)
    return check


def _check_series(ws: Workspace, manifest: Manifest, check: ReleaseCheck) -> None:
    """Each entry exists, is inside the repo, is listed once, parses; nothing is left out."""
    seen: dict[Path, int] = {}
    named = {ws.root / os.path.normpath(entry.file) for entry in manifest.patches}
    for index, entry in enumerate(manifest.patches):
        where = f"{check.manifest}: patches[{index}].file"
        resolved = _resolve_entry(ws, entry.file, where, check)
        if resolved is None:
            continue
        if resolved in seen:
            check.add("manifest", [f"{where}: {entry.file} is listed twice (first as "
                                   f"patches[{seen[resolved]}].file); list each patch once"])
            continue
        seen[resolved] = index
        _check_patch_file(resolved, entry.file, check)
    check.add("manifest", order_problems(manifest, seen, check.manifest))
    for path in _patch_dir_files(ws, manifest.release):
        if path not in named and path.resolve() not in seen:
            check.add("manifest", [f"{_shown(ws, path)}: not listed in {check.manifest} patches; "
                                   "add it to the series or delete it"])


def order_problems(manifest: Manifest, files: dict[Path, int], display: str) -> list[str]:
    """A patch the series lists before one it needs (``files``: real path -> entry index)."""
    series = [(manifest.patches[index].file, path.read_bytes().decode("utf-8", "surrogateescape"))
              for path, index in files.items()
              if path.is_file() and path.stat().st_size <= MAX_PATCH_BYTES]
    return [f"{display}: patches: {need.describe()}; move it after that one "
            f"(tkedistro patches reorder {manifest.release} --move {_base(need.patch)} "
            f"--after {_base(need.needed)})"
            for need in misplaced(dependencies(series), [file for file, _ in series])]


def _base(file: str) -> str:
    return Path(file).name


def _resolve_entry(ws: Workspace, file: str, where: str, check: ReleaseCheck) -> Path | None:
    """The real path of ``file``, or None after recording why it cannot be used."""
    problem = path_problem(ws.root, file)
    if problem:
        check.add("manifest", [f"{where}: {problem}"])
        return None
    return (ws.root / file).resolve()


def _check_patch_file(path: Path, display: str, check: ReleaseCheck) -> None:
    try:
        patch = parse_patch(path, display)
    except PatchFormatError as exc:
        check.add("patch", exc.problems)
        return
    check.warnings += defaulted_warnings(patch, display)
    check.add("patch", check_trailers(patch, display))
    check.add("patch", [
        f"{display}: binary diff of {name} has no full index line, so git apply cannot use "
        "it; regenerate the patch with git format-patch --binary"
        for name in patch.binary_without_index
    ])
    check.add("patch", _marker_problems(path, display))


def _marker_problems(path: Path, display: str) -> list[str]:
    """A patch that adds conflict markers (a conflict committed unresolved), one per file."""
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    return [f"{display}: {where}: adds a conflict marker; resolve the conflict in the file "
            "and write the patch again (tkedistro patches export), giving --kind, "
            "--upstream-ref, --upstream-status if its commit lacks those trailers"
            for where in describe_markers(conflict_markers(text, display))]


def defaulted_warnings(patch: PatchFile, display: str) -> list[str]:
    """One warning per trailer ``patches import`` defaulted or inferred and no person has
    confirmed (listed in a ``MARKERS`` trailer)."""
    return [f"{display}: trailer {key} was {how} by `patches import`, not stated by the "
            f"patch; check its value, then run `tkedistro patches confirm` (or remove {key} "
            f"from the {_MARKER_OF[how]} trailer, deleting the line when none is left)"
            for key, how in unconfirmed_trailers(patch).items()]


_MARKER_OF = {how: marker for marker, how in MARKERS.items()}


def _patch_dir_files(ws: Workspace, release: str) -> list[Path]:
    folder = ws.patches_dir(release)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in PATCH_SUFFIXES)


def _check_patch_dir_files(ws: Workspace, release: str, check: ReleaseCheck) -> None:
    """When the manifest cannot be read, still check the patch files that are there."""
    for path in _patch_dir_files(ws, release):
        if path_problem(ws.root, _shown(ws, path)) is None:
            _check_patch_file(path, _shown(ws, path), check)


def _shown(ws: Workspace, path: Path) -> str:
    """``path`` relative to the repo root without following symlinks (for messages)."""
    return str(path.relative_to(ws.root)) if path.is_relative_to(ws.root) else str(path)
