"""``tkedistro source``: the pinned upstream plus the patch series as a git tree in ``_src``.

``_src/<release>`` is a git work tree on branch ``tkedistro``: the pinned commit, then one
commit per patch in series order. Commits keep each patch's author, date and message; the
committer is always ``tkedistro <tkedistro@invalid>`` with the author's date, so the same
inputs give the same SHAs. ``_src/.<release>.tkedistro/source.json`` records which input
made which commit, so a re-run re-applies from the first changed patch only. An unchanged
re-run hashes the manifest and patch bytes (no YAML or patch parsing, no fetch) and runs
``git rev-parse HEAD`` and one ``git status`` (fast with git's untracked cache).

Everything a maintainer may have done in the tree (edits, untracked files, own commits, a
``git am`` in progress) is work in progress: refused, or with ``force`` saved to
``refs/tkedistro/backup/<time>`` first. Objects of the pinned upstream are borrowed from the
mirror (``tkedistro.git.mirror``) through ``objects/info/alternates``, so no tree copies them.

All git calls go through the one repository class, ``tkedistro.git.repo.Repo``; the
unchanged re-run uses only its ``head`` and ``status``, which do not load GitPython.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from tkedistro.core import console
from tkedistro.core.errors import (
    CommandError,
    ManifestError,
    PatchApplyError,
    PatchFormatError,
)
from tkedistro.core.locks import is_rebasing, release_lock
from tkedistro.core.workspace import Workspace, path_problem
from tkedistro.git.mirror import Pin, ensure_pin, pack_damage
from tkedistro.git.repo import Repo
from tkedistro.model.patches import PatchFile, check_trailers, parse_patch
from tkedistro.source.apply import SeriesRun
from tkedistro.source.result import SourceResult, result_of
from tkedistro.source.state import Input, Series, State, load_state, stamp_of

if TYPE_CHECKING:
    from tkedistro.model.manifest import Manifest


def prepare_source(
    ws: Workspace, release: str, *, upstream: str | None = None, force: bool = False
) -> SourceResult:
    """Fetch and verify the pinned upstream and apply the series into ``_src/<release>``."""
    if is_rebasing(ws, release):
        from tkedistro.series.state import assert_not_rebasing

        assert_not_rebasing(ws, release)
    tree = Repo(ws.src_dir(release), f"_src/{release}")
    state_dir = ws.state_dir(release)
    if state_dir.is_dir() and ws.manifest_path(release).is_file():
        with release_lock(ws, release):
            if quick := _quick_up_to_date(ws, release, tree, state_dir, upstream):
                return quick
    from tkedistro.model.manifest import load_release  # pydantic: only when there may be work

    display = f"releases/{release}.yaml"
    manifest = load_release(ws, release)
    inputs = _inputs(ws, manifest, display)
    digest = _inputs_digest(ws.manifest_path(release), [i.path for i in inputs])
    state_dir.mkdir(parents=True, exist_ok=True)
    with release_lock(ws, release):
        state = load_state(state_dir)
        stamp = stamp_of(manifest.upstream.commit, inputs)
        url = upstream or manifest.upstream.url
        if state and state.stamp == stamp and _tree_matches(tree, state, state_dir):
            return result_of(release, tree.path, url, state, kept=-1, backup=None)
        patches = _parse_series(inputs, tree.shown)
        pin = Pin(manifest.upstream.url, manifest.upstream.tag, manifest.upstream.commit, display)
        with console.step("fetch_source", f"{pin.tag} {pin.commit[:12]}"):
            mirror = ensure_pin(ws.mirrors_dir, pin, upstream)
        job = SeriesRun(tree, state_dir, manifest, Series(tuple(inputs), stamp, digest), state)
        backup = job.prepare_tree(mirror.path, force)
        with console.step("apply_patches", f"{len(inputs)} in the series"):
            final = job.apply_series(patches)
        return result_of(release, tree.path, mirror.fetch_url, final, kept=job.kept, backup=backup)


def _quick_up_to_date(ws: Workspace, release: str, tree: Repo, state_dir: Path,
                      upstream: str | None) -> SourceResult | None:
    """Up to date without parsing anything: same manifest and patch bytes, same HEAD, clean."""
    state = load_state(state_dir)
    if state is None or state.inputs is None:
        return None
    if any(path_problem(ws.root, a.file) for a in state.applied):
        return None  # the full run says what is wrong with the file
    files = [ws.root / a.file for a in state.applied]
    if _inputs_digest(ws.manifest_path(release), files) != state.inputs:
        return None
    if not _tree_matches(tree, state, state_dir):
        return None
    return result_of(release, tree.path, upstream or state.url, state, kept=-1, backup=None)


def _inputs_digest(manifest: Path, files: list[Path]) -> str:
    digest = hashlib.sha256(manifest.read_bytes())
    for path in files:
        digest.update(f"\0{path}\0".encode())
        digest.update(path.read_bytes() if path.is_file() else b"\0missing")
    return digest.hexdigest()


def _parse_series(inputs: list[Input], shown: str) -> list[PatchFile]:
    """Parse every patch, check its trailers (as ``validate`` does) and refuse binary diffs
    without full index before touching git."""
    patches = [parse_patch(inp.path, inp.file) for inp in inputs]
    problems = [message for inp, patch in zip(inputs, patches, strict=True)
                for message in check_trailers(patch, inp.file)]
    if problems:
        raise PatchFormatError(problems + [f"nothing was changed in {shown}"],
                               hint="patch format: docs/patches.md; `tkedistro validate` "
                                    "checks every patch")
    bad = [(inp, p) for inp, p in zip(inputs, patches, strict=True) if p.binary_without_index]
    if bad:
        total = len(inputs)
        lines = [f"  patch {inp.position}/{total} {inp.file}: {', '.join(p.binary_without_index)}"
                 for inp, p in bad]
        raise PatchApplyError(
            "binary diffs without full index lines cannot be applied (git needs the blob ids):\n"
            + "\n".join(lines) + f"\nnothing was changed in {shown}",
            hint="regenerate these patches with `git format-patch --binary --full-index`",
        )
    return patches


def _inputs(ws: Workspace, manifest: Manifest, display: str) -> list[Input]:
    """The series entries, each through the workspace's path policy; listed twice is refused."""
    inputs: list[Input] = []
    seen: dict[Path, int] = {}
    for i, entry in enumerate(manifest.patches, start=1):
        where = f"{display}: patches[{i - 1}].file"
        real = ws.repo_file(entry.file, where)
        if real in seen:
            raise ManifestError([f"{where}: {entry.file} is listed twice (first as "
                                 f"patches[{seen[real]}].file); list each patch once"])
        seen[real] = i - 1
        path = ws.root / entry.file
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        key = hashlib.sha256(f"{entry.file}\0{entry.subject or ''}\0{digest}".encode()).hexdigest()
        inputs.append(Input(i, entry.file, path, entry.subject, key))
    return inputs


def _tree_matches(tree: Repo, state: State, state_dir: Path) -> bool:
    """HEAD is the recorded one and nothing is changed, untracked or half-done in the tree."""
    if (state_dir / "source.applying").exists():
        return False
    try:
        if not tree.exists() or tree.head() != state.head:
            return False
        if not _mirror_intact(tree, state):
            return False  # the cache mirror lost objects: the full run repairs it
        return not tree.status() and tree.operation_in_progress() is None
    except CommandError:  # e.g. the cache (and the objects it lends) was deleted
        return False


def _mirror_intact(tree: Repo, state: State) -> bool:
    """The packs the tree borrowed from are all there, none cut short (no git run needed)."""
    if any(not Path(idx).is_file() for idx in state.packs):
        return False
    return not any(pack_damage(objects) for objects in tree.borrowed_objects())


