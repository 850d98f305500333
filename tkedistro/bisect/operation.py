"""``bisect_release``: the first patch of a release's series after which a check fails.

``_src/<release>`` is prepared as ``build`` prepares it (``tkedistro source``: the maintainer's
uncommitted work or own commits are refused, never lost), so position ``k`` is the pinned
upstream plus ``k`` patches: the commit ``source`` recorded for patch ``k``, or the pinned
commit for 0. Nothing is re-applied: the search moves between those commits with detached
checkouts, under the release lock, and puts the tree's branch and HEAD back at the end, on an
error or Ctrl-C too. Whole series first (it must fail), upstream alone next (it must pass),
then the binary search (``search.py``). Every check's output is kept in its own log under
``_results/<release>/bisect/<time>-<random>/``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tkedistro.bisect.checks import Check
from tkedistro.bisect.report import TAIL_LINES, BisectResult, Culprit, Step
from tkedistro.bisect.search import BAD, GOOD, SKIP, Bounds, narrow, outcome_of
from tkedistro.core import console, files
from tkedistro.core.errors import BisectError, WorkInProgressError
from tkedistro.core.files import log_tail
from tkedistro.core.locks import release_lock
from tkedistro.core.workspace import Workspace
from tkedistro.git.repo import Repo
from tkedistro.source.buildwrites import writes_removed
from tkedistro.source.prepare import prepare_source
from tkedistro.source.result import SourceResult


def bisect_release(ws: Workspace, release: str, check: Check, *,
                   upstream: str | None = None) -> BisectResult:
    """Find the first patch of ``release``'s series after which ``check`` fails."""
    started = time.monotonic()
    check.ready()  # no engine or builder image: say so before any work
    with console.step("prepare_source", release):
        src = prepare_source(ws, release, upstream=upstream)
    if not src.outcomes:
        raise BisectError(f"{ws.release(release).manifest_name} lists no patches: nothing to "
                          "bisect")
    paths = ws.release(release)
    with release_lock(ws, release):
        tree = Repo(src.path, ws.rel(src.path))
        _refuse_moved(tree, src, release)
        run_dir = files.make_temp_dir(paths.bisect_results,
                                      time.strftime("%Y%m%dT%H%M%SZ-", time.gmtime()))
        search = Search(ws, tree, check, src, run_dir)
        with writes_removed(ws, release, src.path, "bisect check"), restored(tree):
            bounds = search.run()
    return search.result(release, bounds, time.monotonic() - started)


def _refuse_moved(tree: Repo, src: SourceResult, release: str) -> None:
    """Between the preparation and the lock, nobody may have moved or edited the tree."""
    if tree.head() != src.head_commit or tree.status():
        raise WorkInProgressError(
            f"{tree.shown} changed while it was being prepared; refusing to touch it",
            hint=f"run `tkedistro source {release}` to see what is there, then bisect again")


@contextmanager
def restored(tree: Repo) -> Iterator[None]:
    """Put ``tree``'s branch (or detached HEAD) and HEAD back after the block, whatever
    happened in it; changes a check made to tracked files are saved to a backup ref first."""
    branch, head = tree.branch(), tree.head()
    try:
        yield
    finally:
        save_changes(tree)
        tree.switch(head, branch=branch)


def save_changes(tree: Repo) -> None:
    """Changes to tracked files (a check's, or anyone's) go to a backup ref before a forced
    checkout would drop them."""
    if changed := tree.tracked_changes():
        ref = tree.backup(f"tkedistro backup of {tree.shown}: changes made during a bisect")
        console.warn(f"{tree.shown}: {len(changed)} tracked file(s) changed during the bisect "
                     f"(e.g. {changed[0]}); saved to {ref} before moving on "
                     f"(restore: {tree.restore_command(ref)})")


class Search:
    """One bisect: position ``k`` checked out, checked and recorded as a ``Step``."""

    def __init__(self, ws: Workspace, tree: Repo, check: Check, src: SourceResult,
                 run_dir: Path) -> None:
        self.ws, self.tree, self.check, self.src, self.run_dir = ws, tree, check, src, run_dir
        self.commits = [src.base_commit, *(o.commit for o in src.outcomes)]
        self.total = len(src.outcomes)
        self.steps: list[Step] = []

    def run(self) -> Bounds:
        """The whole series must fail and upstream alone pass; then the binary search."""
        whole = self.probe(self.total)
        if whole != BAD:
            self._refuse_endpoint(self.total, whole)
        alone = self.probe(0)
        if alone != GOOD:
            self._refuse_endpoint(0, alone)
        bounds = narrow(0, self.total, self.probe)
        if not bounds.found:
            self._refuse_skipped(bounds)
        return bounds

    def probe(self, position: int) -> str:
        commit = self.commits[position]
        if self.tree.head() != commit:
            save_changes(self.tree)
            self.tree.switch(commit, branch=None)
        log = self.run_dir / f"step-{len(self.steps) + 1:02d}-position-{position}.log"
        with console.step("check", f"position {position}/{self.total} "
                                   f"({commit[:12]}): {self.check.describe()}"):
            started = time.monotonic()
            code = self.check.run(self.tree.path, commit, log)
            seconds = time.monotonic() - started
        outcome = outcome_of(code)
        console.info(f"[bisect] position {position}/{self.total}: {outcome} "
                     f"(exit {code}, {seconds:.1f}s)")
        self.steps.append(Step(position, commit, outcome, code, seconds, log))
        return outcome

    def _refuse_endpoint(self, position: int, outcome: str) -> None:
        step = self.steps[-1]
        where = (f"with the whole series (position {position}/{self.total})" if position
                 else f"on upstream alone ({self.src.tag}, position 0/{self.total})")
        said = {GOOD: "passes", BAD: "fails", SKIP: "skips (exit 125)"}[outcome]
        why = ("so no patch of the series is to blame" if outcome == BAD else
               "so there is no failure to find" if outcome == GOOD else
               "so it cannot be bisected")
        raise BisectError(
            f"the check `{self.check.describe()}` {said} {where}, {why}",
            details=f"last lines of its log:\n{log_tail(step.log, TAIL_LINES)}\n"
                    f"full log: {self.ws.rel(step.log)}",
            hint="a bisect needs a check that passes on upstream alone and fails with the "
                 "whole series (exit 0 good, 125 skip, anything else bad)")

    def _refuse_skipped(self, bounds: Bounds) -> None:
        candidates = [*bounds.skipped, bounds.bad]
        named = ", ".join(f"{p} ({self.src.outcomes[p - 1].file})" for p in candidates)
        raise BisectError(
            f"the check skipped (exit 125) every position left to test: the first bad patch "
            f"is one of positions {named}",
            hint="make the check able to test those positions, or bisect with another check")

    def result(self, release: str, bounds: Bounds, seconds: float) -> BisectResult:
        culprit = self.src.outcomes[bounds.bad - 1]
        failing = next(s for s in reversed(self.steps)
                       if s.position == bounds.bad and s.outcome == BAD)
        return BisectResult(
            release=release, check=self.check.to_json(), described=self.check.describe(),
            total=self.total,
            first_bad=Culprit(bounds.bad, culprit.file, culprit.subject, culprit.commit),
            steps=tuple(self.steps), seconds=seconds, log=failing.log,
            tail=log_tail(failing.log, TAIL_LINES), shown_log=self.ws.rel(failing.log))
