"""``tkedistro forecast RELEASE --onto TAG [TAG...]``: how the series would fare on each tag.

A dry run: each tag is fetched into the shared mirror (the cache) and the series replayed
in a throw-away tree borrowing the mirror's objects. ``_src`` and the manifest are never
touched. A conflicting patch is recorded and left out; the rest are still tried.

The throw-away tree is a sparse checkout of the files the series touches (both names of a
rename): ``git am --3way`` reads and writes only those, so each outcome is the one a full
tree gives, without writing out the whole of Kubernetes for every tag.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tkedistro.core import console, files
from tkedistro.core.errors import FetchError, ForecastConflictError, TkedistroError
from tkedistro.core.workspace import Workspace, manifest_name
from tkedistro.git.patching import Patcher
from tkedistro.git.repo import Repo, sparse_patterns
from tkedistro.model.diffscan import touched_paths
from tkedistro.model.manifest import load_release
from tkedistro.series.replay import (
    LABELS,
    Job,
    PatchOutcome,
    apply_batch,
    apply_job,
    ensure_old_base,
    fetch_tag,
    make_job,
)
from tkedistro.series.report import outcome_table


@dataclass
class TagForecast:
    tag: str
    commit: str | None
    outcomes: list[PatchOutcome] = field(default_factory=list)
    error: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(o.status for o in self.outcomes))

    @property
    def ok(self) -> bool:
        return self.error is None and not any(o.status == "conflict" for o in self.outcomes)

    def summary(self) -> str:
        if self.error:
            return f"error: {self.error}"
        counts = self.counts
        parts = [f"{counts[s]} {LABELS[s].split(' — ')[0]}" for s in
                 ("clean", "3way", "upstream", "conflict") if counts.get(s)]
        return ", ".join(parts) or "no patches"

    def to_json(self) -> dict[str, Any]:
        return {"tag": self.tag, "commit": self.commit, "ok": self.ok, "error": self.error,
                "counts": self.counts, "patches": [o.to_json() for o in self.outcomes]}


@dataclass
class ForecastResult:
    release: str
    base_tag: str
    base_commit: str
    series: int
    tags: list[TagForecast] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release,
                "base": {"tag": self.base_tag, "commit": self.base_commit},
                "patches_total": self.series, "tags": [t.to_json() for t in self.tags]}

    def format_text(self) -> str:
        lines = [f"forecast {self.release}: {self.series} patches on {self.base_tag} "
                 f"({self.base_commit[:12]})"]
        for t in self.tags:
            where = f" ({t.commit[:12]})" if t.commit else ""
            lines.append(f"{t.tag}{where}: {t.summary()}")
            if t.outcomes:
                lines += outcome_table(t.outcomes)
        return "\n".join(lines)

    def raise_for_errors(self) -> None:
        failed = [t for t in self.tags if t.error]
        if failed:
            raise FetchError("forecast could not try " + ", ".join(t.tag for t in failed))

    def raise_for_conflicts(self) -> None:
        """``--fail-on-conflict``: exit 20 naming each tag and its conflicting patches."""
        bad = [(t.tag, [o for o in t.outcomes if o.status == "conflict"]) for t in self.tags]
        bad = [(tag, found) for tag, found in bad if found]
        if not bad:
            return
        lines = [f"  {tag}: " + "; ".join(
            f"patch {o.position} ({o.file}) in {', '.join(o.conflicts) or 'its files'}"
            for o in found) for tag, found in bad]
        raise ForecastConflictError(
            f"forecast {self.release}: the series conflicts on {', '.join(t for t, _ in bad)}",
            details="\n".join(lines),
            hint=f"resolve them with: tkedistro rebase {self.release} --onto {bad[0][0]}",
        )


def forecast(ws: Workspace, release: str, tags: list[str], *,
             upstream: str | None = None) -> ForecastResult:
    """Replay the series on each of ``tags`` in a temporary tree; change nothing."""
    manifest = load_release(ws, release)
    jobs = [make_job(i, ws.repo_file(e.file, f"{manifest_name(release)}: patches[{i - 1}].file"),
                     e.file, e.subject)
            for i, e in enumerate(manifest.patches, 1)]
    result = ForecastResult(release, manifest.upstream.tag, manifest.upstream.commit, len(jobs))
    have_old = ensure_old_base(ws, manifest, upstream)
    for tag in tags:
        try:
            mirror, commit = fetch_tag(ws, manifest, tag, upstream=upstream)
        except TkedistroError as exc:
            result.tags.append(TagForecast(tag, None, error=exc.message))
            continue
        with console.step("forecast", f"{tag} ({commit[:12]})"):
            outcomes = _try_tag(mirror, commit, jobs,
                                manifest.upstream.commit if have_old else None)
        result.tags.append(TagForecast(tag, commit, outcomes))
    return result


def _try_tag(mirror: Path, commit: str, jobs: list[Job],
             old_base: str | None) -> list[PatchOutcome]:
    paths = [path for job in jobs for path in touched_paths(job.mbox, job.file)]
    tmp = files.make_temp_dir(Path(tempfile.gettempdir()).resolve(), "tkedistro-forecast-")
    try:
        tree = Repo(tmp / "tree", "forecast tree")
        tree.create(mirror, commit, sparse=sparse_patterns(paths))
        try:
            date = tree.commit_date(commit)  # plain diffs are dated as their base
            return _replay_all(tree, tmp / "current.patch",
                               [job.on_base(date) for job in jobs], old_base, commit)
        finally:
            tree.close()
    finally:
        files.remove(tmp)


def _replay_all(tree: Repo, mbox: Path, jobs: list[Job], old_base: str | None,
                commit: str) -> list[PatchOutcome]:
    """Every job in turn; a conflicting one is recorded, aborted and left out."""
    outcomes: list[PatchOutcome] = []
    rest = jobs
    while rest:
        done = apply_batch(tree, rest, mbox, old_base=old_base, new_base=commit)
        outcomes += done
        rest = rest[len(done):]
        if not rest:
            break
        outcome = apply_job(tree, rest[0], mbox, old_base=old_base, new_base=commit)
        if outcome.status == "conflict" and (patcher := Patcher(tree)).in_progress():
            patcher.abort()
        outcomes.append(outcome)
        rest = rest[1:]
    return outcomes
