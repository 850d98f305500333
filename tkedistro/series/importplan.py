"""What ``tkedistro patches import`` works out about a third-party patch before and after
``git am``: its trailers (stated, inferred from the file name and message, or defaulted)
and, for one that fails, which earlier patch left out of the import it builds on; and where
in the series each patch goes (``placement``).

Pure functions on text and the tree's files; the import itself is ``series/importer.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tkedistro.git.mbox import hunk_lines
from tkedistro.model.patches import (
    DEFAULTED_TRAILER,
    REQUIRED_TRAILERS,
    SECURITY_TRAILER,
    PatchFile,
)
from tkedistro.series.reorder import number_key

_K8S = "https://github.com/kubernetes/kubernetes"
_COMMIT_URL = re.compile(r"https://github\.com/kubernetes/kubernetes/commit/([0-9a-f]{7,40})\b")
_PR_URL = re.compile(r"https://github\.com/kubernetes/kubernetes/pull/([0-9]+)\b")
_PR_REPO = re.compile(r"\bkubernetes/kubernetes#([0-9]+)\b")
_PR_HASH = re.compile(r"(?<![\w&/])#([0-9]{4,6})\b")
_PR_NAME = re.compile(r"(?<![a-z])pr[-_]?([0-9]{4,6})(?![0-9])", re.I)
_CVE = re.compile(r"\bCVE-[0-9]{4}-[0-9]{4,7}\b", re.I)


@dataclass(frozen=True)
class Trailer:
    key: str
    value: str
    how: str  # "stated" (the file says it), "inferred" (and why) or "defaulted"
    why: str = ""

    def describe(self) -> str:
        return f"{self.key}: {self.value} ({self.how}{': ' + self.why if self.why else ''})"


def infer_trailers(patch: PatchFile, name: str) -> list[Trailer]:
    """The required trailers (and a ``Security-Fix`` for a CVE) of a patch being imported.

    A trailer the file states is kept. Otherwise the file name and message decide: a
    kubernetes commit URL is a merged backport; a PR (``pr72914``, ``#97752``,
    ``kubernetes/kubernetes#97752``, a pull URL) is a backport of that PR, submitted at least
    (merged is not stated, so the status is defaulted); a CVE is a security fix referring to
    the CVE record. Whatever nothing states is defaulted and listed in ``Trailer-Defaulted``.
    """
    text = f"{name}\n{patch.subject or ''}\n{patch.body}"
    found = _reference(text, name)
    cve = _CVE.search(text)
    guesses = _guesses(found, cve.group(0).upper() if cve else None)
    out = []
    for key in REQUIRED_TRAILERS:
        stated = patch.trailer(key)
        out.append(Trailer(key, stated, "stated") if stated else guesses[key])
    if cve and not patch.trailer(SECURITY_TRAILER):
        out.append(Trailer(SECURITY_TRAILER, cve.group(0).upper(), "inferred",
                           f"{_where(cve.group(0), name)} names it"))
    return out


def defaulted_line(trailers: list[Trailer]) -> Trailer | None:
    """The ``Trailer-Defaulted`` trailer listing the defaulted ones, None when none is."""
    keys = [t.key for t in trailers if t.how == "defaulted"]
    return Trailer(DEFAULTED_TRAILER, ", ".join(keys), "stated") if keys else None


def _reference(text: str, name: str) -> tuple[str, str, str] | None:
    """(kind of reference, URL, what named it) for the first upstream reference in ``text``."""
    if match := _COMMIT_URL.search(text):
        return "commit", match.group(0), f"{_where(match.group(0), name)} names commit " \
            f"{match.group(1)[:12]}"
    for pattern in (_PR_URL, _PR_REPO, _PR_NAME, _PR_HASH):
        if match := pattern.search(text):
            said = f"{_where(match.group(0), name)} says {match.group(0)}"
            return "pr", f"{_K8S}/pull/{match.group(1)}", said
    return None


def _where(token: str, name: str) -> str:
    return "the file name" if token in name else "the message"


def _guesses(found: tuple[str, str, str] | None, cve: str | None) -> dict[str, Trailer]:
    if found and found[0] == "commit":
        _, url, said = found
        return {"Patch-Kind": Trailer("Patch-Kind", "backport", "inferred", said),
                "Upstream-Ref": Trailer("Upstream-Ref", url, "inferred", said),
                "Upstream-Status": Trailer("Upstream-Status", "merged", "inferred",
                                           "an upstream commit is merged")}
    if found:
        _, url, said = found
        return {"Patch-Kind": Trailer("Patch-Kind", "backport", "inferred", said),
                "Upstream-Ref": Trailer("Upstream-Ref", url, "inferred", said),
                "Upstream-Status": Trailer("Upstream-Status", "submitted", "defaulted",
                                           "a PR is named; whether it was merged is not stated")}
    if cve:
        return {"Patch-Kind": Trailer("Patch-Kind", "fix", "defaulted",
                                      f"{cve}: a security fix; whether it is a backport "
                                      "is not stated"),
                "Upstream-Ref": Trailer("Upstream-Ref",
                                        f"https://www.cve.org/CVERecord?id={cve}", "inferred",
                                        f"the CVE record of {cve}"),
                "Upstream-Status": Trailer("Upstream-Status", "not-submitted", "defaulted")}
    return {"Patch-Kind": Trailer("Patch-Kind", "carry", "defaulted"),
            "Upstream-Ref": Trailer("Upstream-Ref", "none", "defaulted"),
            "Upstream-Status": Trailer("Upstream-Status", "not-submitted", "defaulted")}


def number_of(name: str) -> str:
    """``0018-TKE-FIX-x.patch`` -> ``0018`` (the whole name when it has no number)."""
    match = re.match(r"[0-9]+", name)
    return match.group(0) if match else name


def needed_results(tree: Path, diff: str, skipped: list[tuple[str, str]]) -> list[str]:
    """The names of the earlier, not imported patches (``skipped``: name, diff) that add
    pre-image lines of ``diff`` the tree does not hold: the failing patch builds on them."""
    needs = []
    wanted = _missing_preimage(tree, diff)
    if not wanted:
        return []
    for name, other in skipped:
        added = hunk_lines(other)
        if any(lines & set(added.get(path, ([], []))[1]) for path, lines in wanted.items()):
            needs.append(name)
    return needs


def _missing_preimage(tree: Path, diff: str) -> dict[str, set[str]]:
    """File -> the non-blank pre-image lines of ``diff`` that are not in the tree's file."""
    missing: dict[str, set[str]] = {}
    for path, (before, _) in hunk_lines(diff).items():
        if path.startswith("/") or ".." in path.split("/"):
            continue  # never read outside the tree
        target = tree / path
        have = set(target.read_text(encoding="utf-8", errors="replace").split("\n")) \
            if target.is_file() else set()
        lost = {line for line in before if line.strip() and line not in have}
        if lost:
            missing[path] = lost
    return missing


def placement(series: list[str], sources: list[str], present: dict[str, str]) -> list[str]:
    """The series after an import: the listed files of ``series`` with each source of
    ``sources`` (source order) that is not ``present`` (source -> the listed file it is)
    inserted where it belongs. A source goes after the nearest earlier source of the import
    (before the nearest later one in the series when none is earlier) once any source is
    in the series; else where its number says among the listed files' numbers (in a gap of
    them, or before the start of a numbered run it comes first in); else at the end."""
    order = list(series)
    for index, name in enumerate(sources):
        if name not in present:
            order.insert(_slot(order, sources, index, present), name)
    return order


def _slot(order: list[str], sources: list[str], index: int, present: dict[str, str]) -> int:
    if present and index:
        earlier = sources[index - 1]  # in the series, or inserted just before
        return order.index(present.get(earlier, earlier)) + 1
    if present:
        return order.index(next(present[n] for n in sources[1:] if n in present))
    mine = number_key(sources[index])
    if mine is not None:
        for at in range(len(order) - 1, -1, -1):
            low = number_key(order[at - 1]) if at else None
            high = number_key(order[at])
            if high is not None and mine < high and (low is None or low < mine or high < low):
                return at
    return len(order)
