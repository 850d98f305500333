"""What ``tkedistro patches import`` works out about a third-party patch before and after
``git am``: its trailers (stated, inferred from the file name and message, or defaulted)
and, for one that fails, which earlier patch left out of the import it builds on; and where
in the series each patch goes (``placement``).

A revert of an upstream change (a file name like ``revert-pr63066``, a ``Revert "..."``
subject or a ``This reverts commit <sha>`` message) is ours, not upstream's: it is recorded
as ``Patch-Kind: carry`` with ``Reverts: <the upstream PR or commit URL>``,
``Upstream-Ref: none`` (the change comes from no upstream PR; the one it undoes is in
``Reverts``) and ``Upstream-Status: not-submitted`` (defaulted: whether the revert was
proposed upstream is not stated). Nothing import works out is taken as confirmed: every
inferred trailer is listed in ``Trailer-Inferred``, every defaulted one in
``Trailer-Defaulted``, until a person checks them and runs ``tkedistro patches confirm``.

Pure functions on text and the tree's files; the import itself is ``series/importer.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tkedistro.model.dependencies import missing_preimage, providers, tree_reader
from tkedistro.model.patches import (
    DEFAULTED_TRAILER,
    INFERRED_TRAILER,
    REQUIRED_TRAILERS,
    REVERTS_TRAILER,
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
_REVERT_NAME = re.compile(r"(?<![a-z])revert(?![a-z])", re.I)
_REVERT_SUBJECT = re.compile(r'^\s*Revert\s+"')
_REVERTS_COMMIT = re.compile(r"\bThis reverts commit ([0-9a-f]{7,40})\b")


@dataclass(frozen=True)
class Trailer:
    key: str
    value: str
    how: str  # "stated" (the file says it), "inferred" (and why) or "defaulted"
    why: str = ""

    def describe(self) -> str:
        return f"{self.key}: {self.value} ({self.how}{': ' + self.why if self.why else ''})"


def infer_trailers(patch: PatchFile, name: str) -> list[Trailer]:
    """The required trailers (plus ``Reverts`` for a revert, ``Security-Fix`` for a CVE)
    of a patch being imported.

    A trailer the file states is kept. Otherwise the file name and message decide: a revert
    is a carry that ``Reverts`` the upstream change it names (see the module docstring); a
    kubernetes commit URL is a merged backport; a PR (``pr72914``, ``#97752``,
    ``kubernetes/kubernetes#97752``, a pull URL) is a backport of that PR, submitted at least
    (merged is not stated, so the status is defaulted); a CVE is a security fix referring to
    the CVE record. What nothing states is defaulted (``Trailer-Defaulted``); what is worked
    out is inferred (``Trailer-Inferred``).
    """
    text = f"{name}\n{patch.subject or ''}\n{patch.body}"
    revert = _revert(patch, name)
    found = _reverted(patch, text, name) if revert else _reference(text, name)
    cve = _CVE.search(text)
    guesses = _revert_guesses(found, revert) if revert else \
        _guesses(found, cve.group(0).upper() if cve else None)
    out = []
    for key in REQUIRED_TRAILERS:
        stated = patch.trailer(key)
        out.append(Trailer(key, stated, "stated") if stated else guesses[key])
    if revert and found and not patch.trailer(REVERTS_TRAILER):
        out.append(Trailer(REVERTS_TRAILER, found[1], "inferred", found[2]))
    if cve and not patch.trailer(SECURITY_TRAILER):
        out.append(Trailer(SECURITY_TRAILER, cve.group(0).upper(), "inferred",
                           f"{_where(cve.group(0), name)} names it"))
    return out


def marker_lines(trailers: list[Trailer]) -> list[Trailer]:
    """The ``Trailer-Inferred`` and ``Trailer-Defaulted`` trailers listing the trailers
    that are not stated (none when every one is)."""
    out = []
    for marker, how in ((INFERRED_TRAILER, "inferred"), (DEFAULTED_TRAILER, "defaulted")):
        keys = [t.key for t in trailers if t.how == how]
        if keys:
            out.append(Trailer(marker, ", ".join(keys), "stated"))
    return out


def _revert(patch: PatchFile, name: str) -> str | None:
    """What says the patch reverts a change (None when nothing does)."""
    if _REVERT_NAME.search(name):
        return "the file name says revert"
    if _REVERT_SUBJECT.match(patch.subject or "") or _REVERT_SUBJECT.match(patch.body):
        return 'the subject says Revert "..."'
    if _REVERTS_COMMIT.search(patch.body):
        return "the message says This reverts commit"
    return None


def _reverted(patch: PatchFile, text: str, name: str) -> tuple[str, str, str] | None:
    """The upstream change a revert undoes: a URL or PR it names, or the commit of a
    ``This reverts commit <sha>`` line."""
    if found := _reference(text, name):
        return found
    if match := _REVERTS_COMMIT.search(patch.body):
        return "commit", f"{_K8S}/commit/{match.group(1)}", \
            f"the message says it reverts commit {match.group(1)[:12]}"
    return None


def _revert_guesses(found: tuple[str, str, str] | None, revert: str) -> dict[str, Trailer]:
    why = f"{revert}: undoing {'an upstream change' if found else 'a change'} is ours to carry"
    return {"Patch-Kind": Trailer("Patch-Kind", "carry", "inferred", why),
            "Upstream-Ref": Trailer("Upstream-Ref", "none", "inferred",
                                    "a revert comes from no upstream change"
                                    + ("; the one it undoes is in Reverts" if found else "")),
            "Upstream-Status": Trailer("Upstream-Status", "not-submitted", "defaulted",
                                       "whether the revert was proposed upstream is not stated")}


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
    wanted = missing_preimage(diff, tree_reader(tree))
    return providers(wanted, skipped) if wanted else []


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
