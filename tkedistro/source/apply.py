"""One non-trivial ``tkedistro source`` run: recover or refuse what is in the tree, then
apply the series from the first changed patch, recording each commit as it is made."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, NoReturn

from tkedistro.core import console, files
from tkedistro.core.errors import (
    ManifestError,
    PatchApplyError,
    PatchFormatError,
    WorkInProgressError,
)
from tkedistro.core.locks import release_lock
from tkedistro.core.rebasemark import refuse_if_rebasing
from tkedistro.core.workspace import ReleaseLayout, ReleasePaths, Workspace, manifest_name
from tkedistro.git.mbox import crlf_note, diff_part
from tkedistro.git.mirror import Pin, ensure_pin, share_tags
from tkedistro.git.patching import Entered, Patcher
from tkedistro.git.repo import Repo
from tkedistro.model.dependencies import missing_preimage, providers, tree_reader
from tkedistro.model.patches import (
    EXPORT_FLAGS_HINT,
    PatchFile,
    check_trailers,
    parse_patch,
    subject_from_filename,
)
from tkedistro.source.digest import inputs_digest
from tkedistro.source.result import SourceResult, result_of
from tkedistro.source.state import (
    Applied,
    Input,
    Series,
    State,
    load_state,
    stamp_of,
    tree_matches,
    write_state,
)

if TYPE_CHECKING:
    from tkedistro.model.manifest import Manifest


def borrowed_packs(tree: Repo) -> tuple[str, ...]:
    return tuple(sorted(str(idx) for objects in tree.borrowed_objects()
                        for idx in (objects / "pack").glob("pack-*.idx")))


# how far below HEAD recovery looks for the last commit a run recorded (a killed run leaves
# at most one unrecorded commit; a few killed runs in a row, a few)
_RECOVERY_DEPTH = 20


class SeriesRun:
    """One non-trivial preparation: check/save work in progress, then apply from a point."""

    def __init__(self, tree: Repo, paths: ReleasePaths, manifest: Manifest, series: Series,
                 previous: State | None) -> None:
        self.tree, self.paths, self.manifest = tree, paths, manifest
        self.patcher = Patcher(tree)
        self.inputs, self.stamp, self.digest = series.inputs, series.stamp, series.digest
        self.previous = previous  # what the last run recorded (None: a new tree)
        self.base = manifest.upstream.commit
        self.marker = paths.source_applying
        self.applied: list[Applied] = []
        self.kept = 0
        self.created = False

    def prepare_tree(self, mirror: Path, force: bool) -> str | None:
        """Recover, refuse or save work in progress, then put HEAD on the resume point."""
        tree = self.tree
        if self.marker.exists() and tree.exists():
            self._recover()
        files.write_text(self.marker, str(time.time()))
        if not tree.exists():
            tree.create(mirror, self.base)
            self.previous, self.created = None, True
        backup = self._check_work_in_progress(force)
        self.applied = self._kept()
        self.kept = len(self.applied)
        start = self.applied[-1].commit if self.applied else self.base
        if tree.head() != start:
            tree.switch(start)
        return backup

    def _recover(self) -> None:
        """A run was killed mid-way: drop its partial changes and the commits it made but
        did not record (saved first, to be safe)."""
        tree = self.tree
        message = f"{tree.shown}: recovering from an interrupted tkedistro run"
        recorded, extra = self._unrecorded_above()
        if tree.operation_in_progress() or tree.status() or extra:
            ref = tree.backup(f"tkedistro backup of {tree.shown} before crash recovery")
            what = f"changes and {extra} commit(s) it made but did not record" if extra \
                else "changes"
            message += f" (its leftover {what} are saved to {ref})"
        console.warn(message)
        self.patcher.discard()
        if extra:
            tree.reset_hard(recorded)

    def _unrecorded_above(self) -> tuple[str, int]:
        """The newest recorded commit at or below HEAD and how many commits above it no run
        recorded (made by a run that died before ``note_made``); (HEAD, 0) when none are."""
        previous = self.previous
        recorded = self.tree.made() | {a.commit for a in self.applied} | {self.base}
        if previous:
            recorded |= {a.commit for a in previous.applied} | {previous.head, previous.base}
        line = self.tree.first_parents(_RECOVERY_DEPTH)
        for above, sha in enumerate(line):
            if sha in recorded:
                return sha, above
        return (line[0] if line else ""), 0

    def _drop_unrecorded(self) -> None:
        """Ctrl-C between making a commit and recording it: save it to a backup ref and put
        HEAD back on the last recorded commit, so the next run does not call it foreign."""
        recorded, extra = self._unrecorded_above()
        if extra:
            tree = self.tree
            ref = tree.backup(f"tkedistro backup of {tree.shown} after an interrupt")
            tree.reset_hard(recorded)
            console.warn(f"{tree.shown}: {extra} commit(s) made before the interrupt were not "
                         f"recorded; saved them to {ref}")

    def _check_work_in_progress(self, force: bool) -> str | None:
        tree = self.tree
        previous = self.previous
        bases = [self.base] + ([previous.base] if previous else [])
        ours = tree.made() | ({a.commit for a in previous.applied} if previous else set())
        problem = tree.work_in_progress(bases, ours).describe()
        if problem is None:
            return None
        if not force:
            files.remove(self.marker)
            raise WorkInProgressError(
                f"{tree.shown} holds work in progress: {problem}; refusing to touch it",
                hint=f"keep it: commit it in {tree.shown} and run `tkedistro patches export "
                f"{self.manifest.release}` (writes it into patches/ and the manifest; "
                f"{EXPORT_FLAGS_HINT}); "
                f"discard it: `git -C {tree.shown} reset --hard && git -C {tree.shown} clean -fd`"
                "; or run again with --force to save it to a backup ref first",
            )
        ref = tree.backup(f"tkedistro backup of work in progress in {tree.shown}")
        console.warn(
            f"saved the work in progress of {tree.shown} to {ref} "
            f"(restore: git -C {tree.shown} checkout -b my-work {ref})"
        )
        self.patcher.discard()
        return ref

    def _kept(self) -> list[Applied]:
        """Applied entries still valid: the common prefix of recorded and current keys."""
        state = self.previous
        if state is None or state.base != self.base:
            return []
        same: list[Applied] = []
        for inp, done in zip(self.inputs, state.applied, strict=False):
            if inp.key != done.key:
                break
            same.append(done)
        here = self.tree.commits_present([done.commit for done in same])  # one git run
        return same[:here.index(False)] if False in here else same

    def apply_series(self, patches: list[PatchFile]) -> State:
        start = len(self.applied)
        try:
            for inp, patch in zip(self.inputs[start:], patches[start:], strict=True):
                self._apply_one(inp, patch)
                self._save(stamp=None, head=self.applied[-1].commit)
        except KeyboardInterrupt:
            self.patcher.discard()
            self._drop_unrecorded()
            self._finish_failed()
            console.warn(f"interrupted: {self._where_now()}")
            raise
        if self.created:  # later index writes keep the untracked cache up to date
            self.tree.refresh_status_cache()
        final = self._save(stamp=self.stamp,  # HEAD: the last commit made or kept
                           head=self.applied[-1].commit if self.applied else None)
        files.remove(self.marker)
        return final

    def _apply_one(self, inp: Input, patch: PatchFile) -> None:
        if patch.format == "mbox":
            subject = patch.subject or subject_from_filename(inp.path)
            entered = self.patcher.apply(inp.path)
        else:
            subject = inp.subject or subject_from_filename(inp.path)
            diff = diff_part(inp.path.read_bytes().decode("utf-8", errors="surrogateescape"))
            entered = self.patcher.commit_plain(diff, subject, patch.body, self._plain_date(),
                                                self.paths.source_patch)
        if not entered.ok:
            self._fail(inp, entered, plain=patch.format == "plain")
        method = "3-way" if entered.three_way else "applied"
        commit = self.tree.head()
        self.tree.note_made([commit])
        self.applied.append(Applied(inp.key, inp.file, subject, method, commit))
        console.verbose(f"{inp.position}/{len(self.inputs)} {method} {inp.file}")

    def _plain_date(self) -> str:
        """Plain diffs carry no date: use the pinned commit's, so SHAs stay reproducible."""
        return self.tree.commit_date(self.base)

    def _fail(self, inp: Input, entered: Entered, plain: bool) -> NoReturn:
        self.patcher.discard()
        hunks = self.patcher.failed_hunks(inp.path)
        failed = entered.result
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
            hint=crlf or self._order_hint(inp) or self._refresh_hint(inp, plain),
        )

    def _order_hint(self, inp: Input) -> str | None:
        """When a later patch of the series adds the lines the failing one needs: move it."""
        text = inp.path.read_bytes().decode("utf-8", errors="surrogateescape")
        wanted = missing_preimage(diff_part(text), tree_reader(self.tree.path))
        later = [(str(i.position), i.path.read_bytes().decode("utf-8", errors="surrogateescape"))
                 for i in self.inputs[inp.position:]] if wanted else []
        found = providers(wanted, later)
        if not found:
            return None
        needs = [self.inputs[int(position) - 1] for position in found]
        move, after = PurePosixPath(inp.file).name, PurePosixPath(needs[-1].file).name
        named = ", ".join(f"patch {n.position} ({PurePosixPath(n.file).name})" for n in needs)
        verb = "comes" if len(needs) == 1 else "come"
        return (f"patch {inp.position} ({move}) needs {named}, which {verb} after it: move it "
                f"with `tkedistro patches reorder {self.manifest.release} --move {move} "
                f"--after {after}`, then run `tkedistro source {self.manifest.release}` again")

    def _refresh_hint(self, inp: Input, plain: bool) -> str:
        release, tag, shown = self.manifest.release, self.manifest.upstream.tag, self.tree.shown
        how = (f"`git apply -3 ../../{inp.file}`, resolve, `git diff HEAD > ../../{inp.file}`"
               if plain else f"`git am -3 ../../{inp.file}`, resolve, `git am --continue`, "
               f"`git format-patch -1 -o ../../{ReleaseLayout(release).patches}/`")
        return (f"refresh the patch against {tag}: in {shown} run {how}, then "
                f"`git reset --hard HEAD~` if you committed; or drop it from "
                f"{manifest_name(release)}; then run `tkedistro source {release}` again")

    def _where_now(self) -> str:
        n, total, head = len(self.applied), len(self.inputs), self.tree.head()[:12]
        upto = f"patches 1-{n} of {total} are applied" if n else "no patch is applied"
        return f"{self.tree.shown} is left clean at HEAD {head}: {upto}"

    def _finish_failed(self) -> None:
        self._save(stamp=None)
        files.remove(self.marker)

    def _save(self, stamp: str | None, head: str | None = None) -> State:
        up = self.manifest.upstream
        state = State(self.base, head or self.tree.head(), stamp, tuple(self.applied), tag=up.tag,
                       url=up.url, inputs=self.digest if stamp else None,
                       packs=borrowed_packs(self.tree) if stamp else ())
        write_state(self.paths, state)
        return state


def prepare_fully(ws: Workspace, release: str, tree: Repo, *, upstream: str | None,
                  force: bool) -> SourceResult:
    """The full ``tkedistro source`` run: load and check the series, fetch and verify the pin,
    then apply from the first patch whose input changed."""
    from tkedistro.model.manifest import load_release

    paths = ws.release(release)
    display = paths.manifest_name
    if not paths.manifest_file.is_file():
        load_release(ws, release)  # an unknown release is said before the lock makes a folder
    with release_lock(ws, release):  # what is checked and read here is what gets written
        refuse_if_rebasing(paths)
        manifest = load_release(ws, release)
        inputs = series_inputs(ws, manifest, display)
        digest = inputs_digest(paths.manifest_file, [i.path for i in inputs])
        state = load_state(paths)
        stamp = stamp_of(manifest.upstream.commit, inputs)
        url = upstream or manifest.upstream.url
        if state and state.stamp == stamp and tree_matches(tree, state, paths):
            if state.inputs != digest:  # e.g. a comment changed: record it, so the next
                state = replace(state, inputs=digest)  # re-run is the quick one again
                write_state(paths, state)
            return result_of(release, tree.path, url, state, kept=-1, backup=None)
        patches = parse_series(inputs, tree.shown)
        pin = Pin(manifest.upstream.url, manifest.upstream.tag, manifest.upstream.commit, display)
        with console.step("fetch_source", f"{pin.tag} {pin.commit[:12]}"):
            mirror = ensure_pin(ws.mirrors_dir, pin, upstream)
        job = SeriesRun(tree, paths, manifest, Series(tuple(inputs), stamp, digest), state)
        backup = job.prepare_tree(mirror.path, force)
        share_tags(mirror.path, tree, unless=pin.tag)  # `git -C _src/1.20 diff TAG` works
        with console.step("apply_patches", f"{len(inputs)} in the series"):
            final = job.apply_series(patches)
        return result_of(release, tree.path, mirror.fetch_url, final, kept=job.kept, backup=backup)


def parse_series(inputs: list[Input], shown: str) -> list[PatchFile]:
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


def series_inputs(ws: Workspace, manifest: Manifest, display: str) -> list[Input]:
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
