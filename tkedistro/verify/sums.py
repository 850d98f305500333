"""``SHA256SUMS`` and ``SHA512SUMS`` of a release folder against its files.

Every file either lists is read once for both digests. A path that leaves the folder (``..``,
absolute) or is not a regular file (a symlink is never followed) is a problem, as is a file
in the folder that neither lists: the files the build leaves unlisted by design are
``UNLISTED`` (the sums themselves, the signatures, the provenance, the build's own log, info
and state, ``images/images.json``, a public key shipped beside the release).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tkedistro.core.files import file_digests
from tkedistro.signing.blobs import SIGNATURE_SUFFIX
from tkedistro.verify.findings import Finding

SHA256_SUMS = "SHA256SUMS"
SHA512_SUMS = "SHA512SUMS"
SUM_FILES = {"sha256": SHA256_SUMS, "sha512": SHA512_SUMS}
UNLISTED = frozenset({SHA256_SUMS, SHA512_SUMS, "provenance.intoto.json",
                      "provenance.intoto.jsonl", "build.log", "build-info.json",
                      ".tkedistro-build.json", "images/images.json", "cosign.pub"})
_LINE = re.compile(r"(?P<hex>[0-9a-f]+) [ *](?P<path>.+)")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}
CHECK = "sums"


@dataclass
class Sums:
    """What the folder's sums say and what its files hold: path -> sha256 hex, each."""

    listed: dict[str, str] = field(default_factory=dict)  # SHA256SUMS
    actual: dict[str, str] = field(default_factory=dict)  # the files read
    findings: list[Finding] = field(default_factory=list)


def path_problem(rel: str) -> str | None:
    """Why ``rel`` (a path a release lists) is not a path inside the release folder."""
    parts = PurePosixPath(rel).parts
    if not rel or rel.startswith("/") or ".." in parts or "\\" in rel or "\x00" in rel:
        return "not a path inside the release folder"
    return None


def read_sums(path: Path) -> tuple[dict[str, str], list[Finding]]:
    """``path`` (``<hex>  <path>`` lines) as {path: hex}; a line of another shape is a problem."""
    algorithm = next(a for a, name in SUM_FILES.items() if name == path.name)
    sums: dict[str, str] = {}
    problems = []
    text = path.read_bytes().decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        found = _LINE.fullmatch(line)
        if found is None or len(found["hex"]) != _HEX_LENGTH[algorithm]:
            problems.append(Finding(CHECK, path.name, f"line {number} is not "
                                    f"'<{algorithm} hex>  <path>': {line[:80]!r}"))
            continue
        sums[found["path"]] = found["hex"]
    return sums, problems


def unlisted_files(folder: Path, listed: Mapping[str, str]) -> list[str]:
    """Files in ``folder`` (relative, sorted) that no sums file lists and that are not
    unlisted by design; symlinks are named too, never followed."""
    extra = []
    for top, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            rel = (Path(top) / name).relative_to(folder).as_posix()
            if rel not in listed and rel not in UNLISTED \
                    and not rel.endswith(SIGNATURE_SUFFIX):
                extra.append(rel)
    return extra


def _digests(folder: Path, rel: str) -> dict[str, str] | str:
    """The file's sha256 and sha512, or why it cannot be read as a release file."""
    path = folder / rel
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "listed but missing"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if not stat.S_ISREG(mode):
        return "not a regular file (a symlink or folder is never followed)"
    try:
        return file_digests(path, tuple(SUM_FILES))
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"


def check_sums(folder: Path) -> Sums:
    """Every file ``SHA256SUMS`` or ``SHA512SUMS`` lists, read and compared; ``SHA256SUMS``
    must exist (the caller checks), ``SHA512SUMS`` missing is a problem."""
    result = Sums()
    tables: dict[str, dict[str, str]] = {}
    for algorithm, name in SUM_FILES.items():
        if (folder / name).is_file():
            tables[algorithm], problems = read_sums(folder / name)
            result.findings += problems
        else:
            tables[algorithm] = {}
            result.findings.append(Finding(CHECK, name, "missing"))
    result.listed = dict(tables["sha256"])
    every = sorted(set(tables["sha256"]) | set(tables["sha512"]))
    for rel in every:
        result.findings += _check_file(folder, rel, tables, result.actual)
    for rel in unlisted_files(folder, {rel: "" for rel in every}):
        result.findings.append(Finding(CHECK, rel, f"shipped but not listed in {SHA256_SUMS}"))
    return result


def _check_file(folder: Path, rel: str, tables: Mapping[str, Mapping[str, str]],
                actual: dict[str, str]) -> list[Finding]:
    if problem := path_problem(rel):
        return [Finding(CHECK, rel, problem)]
    digests = _digests(folder, rel)
    if isinstance(digests, str):
        return [Finding(CHECK, rel, digests)]
    actual[rel] = digests["sha256"]
    found, differ = [], []
    for algorithm, name in SUM_FILES.items():
        expected = tables[algorithm].get(rel)
        if expected is None:
            if (folder / name).is_file():
                found.append(Finding(CHECK, rel, f"not listed in {name}"))
        elif expected != digests[algorithm]:
            differ.append(name)
    if differ:
        found.append(Finding(CHECK, rel, f"does not match {' or '.join(differ)} (the file "
                                         "changed after the build)"))
    return found
