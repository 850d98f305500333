"""Patch text: a plain diff as a ``git am``-able mail, and what git says when one fails.

A plain diff carries no author, date or message; it becomes a mail from the tool, dated
with the base commit's committer date (``Repo.commit_date``), so the same inputs always
give the same commit. This is the one place that conversion is written.
"""

from __future__ import annotations

import re
from pathlib import Path

from tkedistro.git.repo import TOOL_EMAIL, TOOL_NAME
from tkedistro.model.diffscan import diff_part as diff_part  # its home; kept importable here

PLAIN_DATE = "Thu, 1 Jan 1970 00:00:00 +0000"  # a placeholder for jobs parsed, never applied
_ZERO = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"


def to_mbox(diff: str, subject: str, message: str = "", *, author: str | None = None,
            date: str = "") -> str:
    """A mail ``git am`` turns into one commit: ``subject``, ``message``, then the diff."""
    body = f"\n{message.strip()}\n" if message.strip() else ""
    return (f"{_ZERO}From: {author or f'{TOOL_NAME} <{TOOL_EMAIL}>'}\n"
            f"Date: {date or PLAIN_DATE}\nSubject: [PATCH] {subject}\n{body}\n---\n{diff}")


def has_crlf(path: Path) -> bool:
    return b"\r\n" in path.read_bytes()


def crlf_note(path: Path, shown: str) -> str | None:
    """What to do when a failing patch has Windows (CRLF) line endings, else None."""
    if not has_crlf(path):
        return None
    return (f"{shown} has CRLF (Windows) line endings, which do not match the tree's; convert "
            f"it with `dos2unix {shown}` or `sed -i 's/\\r$//' {shown}` and run again")


_PATCH_FAILED = re.compile(r"^error: patch failed: (.+):([0-9]+)$", re.M)
_OTHER_ERROR = re.compile(r"^error: (.+: (?:does not exist in index|already exists in (?:index|"
                          r"working directory)|No such file or directory|does not match index))$",
                          re.M)
_HUNK = re.compile(r"^(@@ -([0-9]+)(?:,[0-9]+)? \+[0-9]+(?:,[0-9]+)? @@)")


def failed_hunks(stderr: str, patch: Path) -> list[str]:
    """Which files and hunks of ``patch`` do not apply, from git's report (``stderr`` of
    ``git apply --check -v``; ``Patcher.failed_hunks`` runs it); first per file, as git."""
    hunks = _hunk_headers(patch.read_text(encoding="utf-8", errors="replace"))
    lines = []
    for match in _PATCH_FAILED.finditer(stderr):
        path, line = match.group(1), int(match.group(2))
        headers = hunks.get(path, [])
        index = next((i for i, (start, _) in enumerate(headers) if start == line), None)
        if index is None:
            lines.append(f"{path}: the hunk at line {line} does not apply")
        else:
            lines.append(f"{path}: hunk #{index + 1} of {len(headers)} does not apply: "
                         f"{headers[index][1]}")
    lines += [m.group(1) for m in _OTHER_ERROR.finditer(stderr)]
    return lines


def _hunk_headers(text: str) -> dict[str, list[tuple[int, str]]]:
    """File -> [(old start line, ``@@ ... @@``)] of a diff, by the ``---``/``+++`` names."""
    files: dict[str, list[tuple[int, str]]] = {}
    current: list[tuple[int, str]] = []
    old = ""
    for line in text.splitlines():
        if line.startswith("--- "):
            old = line[4:].split("\t")[0].removeprefix("a/")
        elif line.startswith("+++ "):
            new = line[4:].split("\t")[0].removeprefix("b/")
            current = files.setdefault(new if new != "/dev/null" else old, [])
            if old not in ("/dev/null", new):
                files[old] = current
        elif match := _HUNK.match(line):
            current.append((int(match.group(2)), match.group(1)))
    return files


_SECTION = re.compile(r"^(?=diff --git )", re.M)


def without_files(diff: str, paths: set[str]) -> str:
    """``diff`` without the ``diff --git`` sections of ``paths`` (``import --text-only``)."""
    sections = _SECTION.split(diff)
    return "".join(s for s in sections if not (s.startswith("diff --git ")
                                                and _section_paths(s) & paths))


def _section_paths(section: str) -> set[str]:
    """The paths one ``diff --git`` section names (its header, ``---``/``+++`` lines)."""
    header = section.split("\n", 1)[0][len("diff --git "):]
    half = (len(header) - 1) // 2
    if header[:half].removeprefix("a/") == header[half + 1:].removeprefix("b/"):
        found = {header[:half].removeprefix("a/")}
    else:
        found = {header.rsplit(" b/", 1)[-1]}
    for line in section.split("\n")[1:8]:
        if line.startswith(("--- a/", "+++ b/")):
            found.add(line[6:].split("\t")[0])
        elif line.startswith(("rename from ", "rename to ", "copy from ", "copy to ")):
            found.add(line.split(" ", 2)[2])
    return found
