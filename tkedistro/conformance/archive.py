"""Where conformance results are kept: outside ``_output``, so a build leaves them alone.

``_results/<release>/conformance/<UTC time>-<distro version>/`` holds one run (``e2e.log``,
``junit_01.xml``, the CNCF ``PRODUCT.yaml`` + ``README.md``, ``summary.json``) and a copy of the
``build-info.json`` and ``SHA256SUMS`` of the build whose binaries ran, so results stay tied to
the build they tested when ``_output/<release>`` is rebuilt. ``latest`` is a relative symlink to
the last run that wrote its report: ``_results/1.20/conformance/latest/e2e.log`` works from a
shell, it is swapped in one ``rename``, and it stays valid when the checkout moves.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tkedistro.build.output import INFO_NAME, SUMS_NAME, read_build_info
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
    run folder); None when either is missing."""
    info = read_build_info(folder)
    sums = folder / SUMS_NAME
    if info is None or not sums.is_file():
        return None
    return BuildRef(str(info.get("distro_version", "")), str(info.get("fingerprint", "")),
                    str(info.get("finished_at", "")), hashlib.sha256(sums.read_bytes()).hexdigest())


@dataclass(frozen=True)
class Run:
    folder: Path
    build: BuildRef | None  # None: binaries not made by tkedistro build (no build-info.json)


def start_run(ws: Workspace, release: str, version: str, *, now: float | None = None) -> Run:
    """A new run folder with a copy of the build files of ``_output/<release>``.

    Call it holding the output lock: the copied files are those of the binaries about to run.
    ``version`` names the folder when the output has no ``build-info.json``.
    """
    out = ws.output_dir(release)
    build = build_ref(out)
    folder = _new_folder(ws.conformance_results_dir(release),
                         (build.distro_version if build else "") or version, now)
    if build is not None:
        for name in BUILD_FILES:
            shutil.copyfile(out / name, folder / name)
    return Run(folder, build)


def _new_folder(base: Path, version: str, now: float | None) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    base.mkdir(parents=True, exist_ok=True)
    name, n = f"{stamp}-{version}", 1
    while True:
        folder = base / name
        try:
            folder.mkdir()
            return folder
        except FileExistsError:  # two runs in one second
            n += 1
            name = f"{stamp}-{version}.{n}"


def mark_latest(folder: Path) -> Path:
    """Point ``latest`` beside ``folder`` at it (a relative symlink, replaced atomically)."""
    link = folder.parent / LATEST
    tmp = folder.parent / f".{LATEST}.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(folder.name, tmp)
    os.replace(tmp, link)
    return link


def latest_run(ws: Workspace, release: str) -> Path | None:
    """The folder ``latest`` names, or None when no run wrote its report yet."""
    link = ws.conformance_results_dir(release) / LATEST
    target = link.resolve() if link.is_symlink() else None
    return target if target is not None and target.is_dir() else None
