"""What ``tkedistro source`` reports: the outcome of each patch and of the whole run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tkedistro.model.url import redact_url
from tkedistro.source.state import State


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


def result_of(release: str, path: Path, url: str, state: State, *,
            kept: int, backup: str | None) -> SourceResult:
    """``kept`` leading patches were already applied (-1: all, nothing was done at all)."""
    up_to_date = kept < 0
    outcomes = tuple(
        PatchOutcome(i, a.file, a.subject,
                     "unchanged" if up_to_date or i <= kept else a.method, a.commit)
        for i, a in enumerate(state.applied, start=1)
    )
    return SourceResult(
        release=release, path=path, upstream_url=redact_url(url),
        tag=state.tag, base_commit=state.base, head_commit=state.head,
        up_to_date=up_to_date, outcomes=outcomes, backup_ref=backup,
    )
