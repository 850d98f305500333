"""Where conformance results are kept: outside ``_output``, so a build leaves them alone.

``_results/<release>/conformance/<UTC time>-<distro version>/`` holds one run (``e2e.log``,
``junit_01.xml``, the CNCF ``PRODUCT.yaml`` + ``README.md``, ``summary.json``) and a copy of the
``build-info.json`` and ``SHA256SUMS`` of the build whose binaries ran, so results stay tied to
the build they tested when ``_output/<release>`` is rebuilt. ``latest`` is a relative symlink to
the last run that wrote its report: ``_results/1.20/conformance/latest/e2e.log`` works from a
shell, it is swapped in one ``rename``, and it stays valid when the checkout moves.

Everything here goes through the safe file layer (``core/files.py``): the build files are read
without following a symlink and written as new files, and a symlink in ``_results/<release>``,
``_results/<release>/conformance`` or ``_output/<release>``'s build files is refused (exit 3)
before the suite starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tkedistro.build.output import INFO_NAME, SUMS_NAME
from tkedistro.core import files
from tkedistro.core.workspace import Workspace

LATEST = "latest"
BUILD_FILES = (INFO_NAME, SUMS_NAME)


@dataclass(frozen=True)
class BuildRef:
    """The build a run tested, from its ``build-info.json`` and ``SHA256SUMS``."""

    distro_version: str
    fingerprint: str
    finished_at: str
    sums_sha256: str  # the digest of SHA256SUMS: every binary's digest at once

    def to_json(self) -> dict[str, str]:
        return {"distro_version": self.distro_version, "fingerprint": self.fingerprint,
                "finished_at": self.finished_at, "sha256sums_sha256": self.sums_sha256}

    def format_text(self) -> str:
        return f"{self.distro_version}, built {self.finished_at}, SHA256SUMS " \
               f"{self.sums_sha256[:12]}"


def build_ref(folder: Path) -> BuildRef | None:
    """The build whose ``build-info.json`` and ``SHA256SUMS`` are in ``folder`` (an output or a
    run folder); None when either is missing or the info is not a JSON object."""
    found = _build_files(folder)
    return None if found is None else _ref_of(found)


def _build_files(folder: Path) -> dict[str, bytes] | None:
    """The bytes of the build files in ``folder``, read without following a symlink (a
    symlink is ``UnsafePathError``); None when one is missing or not a regular file."""
    found = {}
    for name in BUILD_FILES:
        try:
            found[name] = files.read_bytes(folder / name)
        except OSError:
            return None
    return found


def _ref_of(found: dict[str, bytes]) -> BuildRef | None:
    try:
        info = json.loads(found[INFO_NAME])
    except ValueError:
        return None
    if not isinstance(info, dict):
        return None
    return BuildRef(str(info.get("distro_version", "")), str(info.get("fingerprint", "")),
                    str(info.get("finished_at", "")),
                    hashlib.sha256(found[SUMS_NAME]).hexdigest())


@dataclass(frozen=True)
class Run:
    folder: Path
    build: BuildRef | None  # None: binaries not made by tkedistro build (no build-info.json)


def start_run(ws: Workspace, release: str, version: str, *, now: float | None = None) -> Run:
    """A new run folder with a copy of the build files of ``_output/<release>`` (the bytes
    read once: the copy is what ``build`` digests).

    Call it holding the output lock: the copied files are those of the binaries about to run,
    and no other run of the release makes a folder meanwhile. ``version`` names the folder
    when the output has no ``build-info.json``.
    """
    found = _build_files(ws.output_dir(release))
    build = None if found is None else _ref_of(found)
    folder = _new_folder(ws.conformance_results_dir(release),
                         (build.distro_version if build else "") or version, now)
    if found is not None and build is not None:
        for name, data in found.items():
            files.write_atomic(folder / name, data)
    return Run(folder, build)


def _new_folder(base: Path, version: str, now: float | None) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    files.ensure_dir(base)
    name, n = f"{stamp}-{version}", 1
    while os.path.lexists(base / name):  # two runs in one second
        n += 1
        name = f"{stamp}-{version}.{n}"
    return files.ensure_dir(base / name)


def mark_latest(folder: Path) -> Path:
    """Point ``latest`` beside ``folder`` at it (a relative symlink, replaced atomically)."""
    link = folder.parent / LATEST
    files.replace_symlink(link, folder.name)
    return link


def latest_run(ws: Workspace, release: str) -> Path | None:
    """The run folder ``latest`` names, or None when no run wrote its report yet (or
    ``latest`` names anything but a run folder beside it)."""
    base = ws.conformance_results_dir(release)
    try:
        name = os.readlink(base / LATEST)
    except OSError:
        return None
    target = base / name
    if "/" in name or name in (".", "..") or files.is_symlink(target) or not target.is_dir():
        return None
    return target
