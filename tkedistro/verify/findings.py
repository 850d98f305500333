"""What a verify check found wrong: one ``Finding`` per problem, named by what it is about."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One problem: the check that found it (``sums``, ``signature``, ``sbom``,
    ``provenance``, ``image``), the file or image it is about, and what is wrong."""

    check: str
    subject: str
    problem: str

    def line(self) -> str:
        return f"{self.check}: {self.subject}: {self.problem}"

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "subject": self.subject, "problem": self.problem}
