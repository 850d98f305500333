"""What ``tkedistro bisect`` reports: each step, the first bad patch and its check's log."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

TAIL_LINES = 20


@dataclass(frozen=True)
class Step:
    """One check at one position (``position`` patches applied on the pinned upstream)."""

    position: int
    commit: str
    outcome: str  # search.GOOD, BAD or SKIP
    exit_code: int
    seconds: float
    log: Path

    def to_json(self) -> dict[str, Any]:
        return {"position": self.position, "commit": self.commit, "outcome": self.outcome,
                "exit_code": self.exit_code, "seconds": round(self.seconds, 2),
                "log": str(self.log)}


@dataclass(frozen=True)
class Culprit:
    """The first patch after which the check fails."""

    position: int
    file: str
    subject: str
    commit: str


@dataclass(frozen=True)
class BisectResult:
    release: str
    check: dict[str, Any]
    described: str  # the check in one line
    total: int  # patches in the series
    first_bad: Culprit
    steps: tuple[Step, ...]
    seconds: float
    log: Path  # the failing check's full log (at the first bad position)
    tail: str  # its last lines
    shown_log: str  # ``log`` as the workspace shows it

    def to_json(self) -> dict[str, Any]:
        bad = self.first_bad
        return {
            "release": self.release,
            "check": self.check,
            "patches": self.total,
            "first_bad": {"position": bad.position, "file": bad.file, "subject": bad.subject,
                          "commit": bad.commit},
            "steps": [step.to_json() for step in self.steps],
            "seconds": round(self.seconds, 2),
            "log": str(self.log),
            "log_tail": self.tail,
        }

    def format_text(self) -> str:
        bad = self.first_bad
        lines = [f"{self.release}: first bad patch {bad.position}/{self.total}: {bad.file}",
                 f"  {bad.subject}",
                 f"check: {self.described}"]
        for n, step in enumerate(self.steps, start=1):
            lines.append(f"  step {n}: position {step.position}/{self.total}  "
                         f"{step.outcome:<4}  {step.seconds:.1f}s")
        lines.append(f"{len(self.steps)} steps in {self.seconds:.1f}s")
        lines.append(f"the check's log at position {bad.position} ({self.shown_log}), "
                     "last lines:")
        lines.extend(f"  {line}" for line in self.tail.splitlines())
        return "\n".join(lines)
