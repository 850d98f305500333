"""What one ``tkedistro verify`` run found: every ``Finding``, what was checked and what was
not (a note such as "signatures not checked: no --key"), as text or JSON."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tkedistro.core.errors import VerifyFailedError
from tkedistro.verify.findings import Finding


@dataclass
class Report:
    """``target``: the folder or image verified; ``files``/``images``: how many were checked."""

    target: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    images: int = 0

    def add(self, found: Iterable[Finding]) -> None:
        self.findings.extend(found)

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        if self.ok:
            return (f"verify: 0 problems in {self.files} files, {self.images} "
                    f"image{'' if self.images == 1 else 's'}")
        count = len(self.findings)
        return f"verify: {count} problem{'' if count == 1 else 's'}"

    def format_text(self) -> str:
        lines = [finding.line() for finding in self.findings]
        return "\n".join([*lines, *self.notes, self.summary()])

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "target": self.target, "files": self.files,
                "images": self.images, "notes": list(self.notes),
                "problems": [finding.to_json() for finding in self.findings]}

    def raise_for_problems(self) -> None:
        """``VerifyFailedError`` (exit 26) when anything was found; the list is printed first."""
        if self.findings:
            raise VerifyFailedError(f"{self.target}: {self.summary()}",
                                    hint="do not install what failed; each problem is "
                                         "listed above")
