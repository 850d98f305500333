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
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from tkedistro.core import console
from tkedistro.core.errors import (
    CommandError,
    ManifestError,
    PatchApplyError,
    PatchFormatError,
    WorkInProgressError,
)
from tkedistro.core.locks import is_rebasing, release_lock
from tkedistro.core.runner import Result
from tkedistro.core.workspace import Workspace, path_problem
from tkedistro.git.mirror import Pin, ensure_pin, pack_damage
from tkedistro.git.repo import Repo
from tkedistro.model.patches import PatchFile, check_trailers, parse_patch, subject_from_filename

if TYPE_CHECKING:
    from tkedistro.model.manifest import Manifest

STATE_VERSION = 1


@dataclass(frozen=True)
class PatchOutcome:
    position: int
    file: str
    subject: str
    method: str  # "applied" | "3-way" | "unchanged"
    commit: str


@dataclass(frozen=True)
class SourceResult:
    release: str
    path: Path
    upstream_url: str
    tag: str
    base_commit: str
    head_commit: str
    up_to_date: bool
    outcomes: tuple[PatchOutcome, ...]
    backup_ref: str | None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["outcomes"] = [asdict(o) for o in self.outcomes]
        return data

    def format_text(self) -> str:
        where = f"{self.path.parent.name}/{self.path.name}"
        count = len(self.outcomes)
        series = f"{self.tag} ({self.base_commit[:12]}) + {count} patch{'es' if count != 1 else ''}"
        head = f"HEAD {self.head_commit[:12]}"
        if self.up_to_date:
            return f"{where}: up to date: {series}, {head}"
        total = len(self.outcomes)
        lines = [f"{where}: {series}, {head}"]
        for o in self.outcomes:
            lines.append(f"  {o.position}/{total}  {o.method:<9}  {o.file}  {o.subject}")
        if self.backup_ref:
            lines.append(f"work in progress saved to {self.backup_ref}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Input:
    """One series entry as given: its key changes whenever its commit could change."""

    position: int
    file: str
    path: Path
    subject: str | None
    key: str


@dataclass(frozen=True)
class _Applied:
    key: str
    file: str
    subject: str
    method: str
    commit: str


@dataclass(frozen=True)
class _State:
    base: str
    head: str
    stamp: str | None  # None while a run is unfinished or failed
    applied: tuple[_Applied, ...]
    tag: str = ""
    url: str = ""
    inputs: str | None = None  # digest of the manifest's and the patches' bytes when done
    packs: tuple[str, ...] = ()  # the mirror's packs the tree borrowed from when done


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
        state = _load_state(state_dir)
        stamp = _stamp(manifest.upstream.commit, inputs)
        url = upstream or manifest.upstream.url
        if state and state.stamp == stamp and _tree_matches(tree, state, state_dir):
            return _result(release, tree, url, state, kept=-1, backup=None)
        patches = _parse_series(inputs, tree.shown)
        pin = Pin(manifest.upstream.url, manifest.upstream.tag, manifest.upstream.commit, display)
        with console.step("fetch_source", f"{pin.tag} {pin.commit[:12]}"):
            mirror = ensure_pin(ws.mirrors_dir, pin, upstream)
        job = _Run(tree, state_dir, manifest, inputs, state, stamp, digest)
        backup = job.prepare_tree(mirror.path, force)
        with console.step("apply_patches", f"{len(inputs)} in the series"):
            final = job.apply_series(patches)
        return _result(release, tree, mirror.fetch_url, final, kept=job.kept, backup=backup)


def _quick_up_to_date(ws: Workspace, release: str, tree: Repo, state_dir: Path,
                      upstream: str | None) -> SourceResult | None:
    """Up to date without parsing anything: same manifest and patch bytes, same HEAD, clean."""
    state = _load_state(state_dir)
    if state is None or state.inputs is None:
        return None
    if any(path_problem(ws.root, a.file) for a in state.applied):
        return None  # the full run says what is wrong with the file
    files = [ws.root / a.file for a in state.applied]
    if _inputs_digest(ws.manifest_path(release), files) != state.inputs:
        return None
    if not _tree_matches(tree, state, state_dir):
        return None
    return _result(release, tree, upstream or state.url, state, kept=-1, backup=None)


def _inputs_digest(manifest: Path, files: list[Path]) -> str:
    digest = hashlib.sha256(manifest.read_bytes())
    for path in files:
        digest.update(f"\0{path}\0".encode())
        digest.update(path.read_bytes() if path.is_file() else b"\0missing")
    return digest.hexdigest()


def _parse_series(inputs: list[_Input], shown: str) -> list[PatchFile]:
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


def _inputs(ws: Workspace, manifest: Manifest, display: str) -> list[_Input]:
    """The series entries, each through the workspace's path policy; listed twice is refused."""
    inputs: list[_Input] = []
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
        inputs.append(_Input(i, entry.file, path, entry.subject, key))
    return inputs


def _stamp(base: str, inputs: list[_Input]) -> str:
    text = json.dumps([STATE_VERSION, base, [i.key for i in inputs]])
    return hashlib.sha256(text.encode()).hexdigest()


def _tree_matches(tree: Repo, state: _State, state_dir: Path) -> bool:
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


def _packs(tree: Repo) -> tuple[str, ...]:
    return tuple(sorted(str(idx) for objects in tree.borrowed_objects()
                        for idx in (objects / "pack").glob("pack-*.idx")))


def _mirror_intact(tree: Repo, state: _State) -> bool:
    """The packs the tree borrowed from are all there, none cut short (no git run needed)."""
    if any(not Path(idx).is_file() for idx in state.packs):
        return False
    return not any(pack_damage(objects) for objects in tree.borrowed_objects())


def _result(release: str, tree: Repo, url: str, state: _State, *,
            kept: int, backup: str | None) -> SourceResult:
    """``kept`` leading patches were already applied (-1: all, nothing was done at all)."""
    up_to_date = kept < 0
    outcomes = tuple(
        PatchOutcome(i, a.file, a.subject,
                     "unchanged" if up_to_date or i <= kept else a.method, a.commit)
        for i, a in enumerate(state.applied, start=1)
    )
    return SourceResult(
        release=release, path=tree.path, upstream_url=url,
        tag=state.tag, base_commit=state.base, head_commit=state.head,
        up_to_date=up_to_date, outcomes=outcomes, backup_ref=backup,
    )


class _Run:
    """One non-trivial preparation: check/save work in progress, then apply from a point."""

    def __init__(self, tree: Repo, state_dir: Path, manifest: Manifest,
                 inputs: list[_Input], state: _State | None, stamp: str, digest: str) -> None:
        self.tree, self.state_dir, self.manifest = tree, state_dir, manifest
        self.inputs, self.state, self.stamp, self.digest = inputs, state, stamp, digest
        self.base = manifest.upstream.commit
        self.marker = state_dir / "source.applying"
        self.applied: list[_Applied] = []
        self.kept = 0
        self.created = False

    def prepare_tree(self, mirror: Path, force: bool) -> str | None:
        """Recover, refuse or save work in progress, then put HEAD on the resume point."""
        tree = self.tree
        if self.marker.exists() and tree.exists():
            self._recover()
        self.marker.write_text(str(time.time()))
        if not tree.exists():
            tree.create(mirror, self.base)
            self.state, self.created = None, True
        backup = self._check_work_in_progress(force)
        self.applied = self._kept()
        self.kept = len(self.applied)
        start = self.applied[-1].commit if self.applied else self.base
        if tree.head() != start:
            tree.switch(start)
        return backup

    def _recover(self) -> None:
        """A run was killed mid-way: drop its partial changes (saved first, to be safe)."""
        tree = self.tree
        message = f"{tree.shown}: recovering from an interrupted tkedistro run"
        if tree.operation_in_progress() or tree.status():
            ref = tree.backup(f"tkedistro backup of {tree.shown} before crash recovery")
            message += f" (its leftover changes are saved to {ref})"
        console.warn(message)
        tree.discard_changes()

    def _check_work_in_progress(self, force: bool) -> str | None:
        tree = self.tree
        bases = [self.base] + ([self.state.base] if self.state else [])
        ours = tree.made() | {a.commit for a in self.state.applied} if self.state else tree.made()
        problem = tree.work_in_progress(bases, ours).describe()
        if problem is None:
            return None
        if not force:
            self.marker.unlink(missing_ok=True)
            raise WorkInProgressError(
                f"{tree.shown} holds work in progress: {problem}; refusing to touch it",
                hint=f"keep it: commit it in {tree.shown} and export it with `git format-patch` "
                f"into patches/ (and list it in releases/{self.manifest.release}.yaml); "
                f"discard it: `git -C {tree.shown} reset --hard && git -C {tree.shown} clean -fd`"
                "; or run again with --force to save it to a backup ref first",
            )
        ref = tree.backup(f"tkedistro backup of work in progress in {tree.shown}")
        console.warn(
            f"saved the work in progress of {tree.shown} to {ref} "
            f"(restore: git -C {tree.shown} checkout -b my-work {ref})"
        )
        tree.discard_changes()
        return ref

    def _kept(self) -> list[_Applied]:
        """Applied entries still valid: the common prefix of recorded and current keys."""
        state = self.state
        if state is None or state.base != self.base:
            return []
        kept: list[_Applied] = []
        for inp, done in zip(self.inputs, state.applied, strict=False):
            if inp.key != done.key or not self.tree.has_commit(done.commit):
                break
            kept.append(done)
        return kept

    def apply_series(self, patches: list[PatchFile]) -> _State:
        start = len(self.applied)
        try:
            for inp, patch in zip(self.inputs[start:], patches[start:], strict=True):
                self._apply_one(inp, patch)
                self._save(stamp=None)
        except KeyboardInterrupt:
            self.tree.discard_changes()
            self._finish_failed()
            console.warn(f"interrupted: {self._where_now()}")
            raise
        if self.created:  # later index writes keep the untracked cache up to date
            self.tree.refresh_status_cache()
        final = self._save(stamp=self.stamp)
        self.marker.unlink(missing_ok=True)
        return final

    def _apply_one(self, inp: _Input, patch: PatchFile) -> None:
        if patch.format == "mbox":
            subject = patch.subject or subject_from_filename(inp.path)
            result = self.tree.am(inp.path)
            method = "3-way" if "3-way merge" in result.stdout + result.stderr else "applied"
        else:
            subject = inp.subject or subject_from_filename(inp.path)
            message = subject + (f"\n\n{patch.body}" if patch.body.strip() else "")
            method, result = self.tree.apply_plain(inp.path, message, self._plain_date())
        if result.returncode != 0:
            self._fail(inp, result, plain=patch.format == "plain")
        commit = self.tree.head()
        self.tree.note_made([commit])
        self.applied.append(_Applied(inp.key, inp.file, subject, method, commit))
        console.verbose(f"{inp.position}/{len(self.inputs)} {method} {inp.file}")

    def _plain_date(self) -> str:
        """Plain diffs carry no date: use the pinned commit's, so SHAs stay reproducible."""
        return self.tree.commit_date(self.base)

    def _fail(self, inp: _Input, failed: Result, plain: bool) -> NoReturn:
        from tkedistro.git.mbox import crlf_note, failed_hunks  # only when a patch fails

        self.tree.discard_changes()
        hunks = failed_hunks(self.tree.path, inp.path)
        self._finish_failed()
        total = len(self.inputs)
        stderr = "\n".join(
            line for line in (failed.stderr + "\n" + failed.stdout).splitlines()
            if line.strip() and not line.startswith("hint:")
        )
        crlf = crlf_note(inp.path, inp.file)
        raise PatchApplyError(
            f"patch {inp.position}/{total} does not apply: {inp.file}\n"
            + ("\n".join(f"  {h}" for h in hunks) or "  (git named no failing hunk)")
            + (f"\n  {crlf}" if crlf else "") + "\n" + self._where_now(),
            details=f"git said:\n{stderr}" if stderr else None,
            hint=crlf or self._refresh_hint(inp, plain),
        )

    def _refresh_hint(self, inp: _Input, plain: bool) -> str:
        release, tag, shown = self.manifest.release, self.manifest.upstream.tag, self.tree.shown
        how = (f"`git apply -3 ../../{inp.file}`, resolve, `git diff HEAD > ../../{inp.file}`"
               if plain else f"`git am -3 ../../{inp.file}`, resolve, `git am --continue`, "
               f"`git format-patch -1 -o ../../patches/{release}/`")
        return (f"refresh the patch against {tag}: in {shown} run {how}, then "
                f"`git reset --hard HEAD~` if you committed; or drop it from "
                f"releases/{release}.yaml; then run `tkedistro source {release}` again")

    def _where_now(self) -> str:
        n, total, head = len(self.applied), len(self.inputs), self.tree.head()[:12]
        upto = f"patches 1-{n} of {total} are applied" if n else "no patch is applied"
        return f"{self.tree.shown} is left clean at HEAD {head}: {upto}"

    def _finish_failed(self) -> None:
        self._save(stamp=None)
        self.marker.unlink(missing_ok=True)

    def _save(self, stamp: str | None) -> _State:
        up = self.manifest.upstream
        state = _State(self.base, self.tree.head(), stamp, tuple(self.applied), tag=up.tag,
                       url=up.url, inputs=self.digest if stamp else None,
                       packs=_packs(self.tree) if stamp else ())
        _write_state(self.state_dir, state)
        return state


def _load_state(state_dir: Path) -> _State | None:
    try:
        data = json.loads((state_dir / "source.json").read_text(encoding="utf-8"))
        if data.get("version") != STATE_VERSION:
            return None
        applied = tuple(_Applied(**a) for a in data["applied"])
        return _State(data["base"], data["head"], data["stamp"], applied,
                      tag=data.get("tag", ""), url=data.get("url", ""), inputs=data.get("inputs"),
                      packs=tuple(data.get("packs", ())))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_state(state_dir: Path, state: _State) -> None:
    data = {"version": STATE_VERSION, **asdict(state)}
    tmp = state_dir / "source.json.tmp"
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tmp.replace(state_dir / "source.json")


def recorded_commits(state_dir: Path) -> set[str]:
    """The commits ``source.json`` says this tool made (one per applied patch)."""
    state = _load_state(state_dir)
    return {a.commit for a in state.applied} if state else set()
