"""`tkedistro doctor`: is this machine ready to prepare, build and test releases?

Each check says what it found and, when something is wrong, the command that fixes it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tkedistro.build.plan import builder_commands
from tkedistro.core.errors import (
    BackendUnavailableError,
    CommandError,
    HostNotReadyError,
    TkedistroError,
)
from tkedistro.core.runner import run
from tkedistro.core.workspace import Workspace
from tkedistro.engine import emulation
from tkedistro.engine.buildah import BUILDAH
from tkedistro.engine.protocols import ContainerBackend, ContainerSpec
from tkedistro.engine.skopeo import BINARY as SKOPEO
from tkedistro.model.manifest import list_release_names, load_release

MIN_FREE_GIB = 20  # a v1.20 tree, its Go cache and the outputs
HOST_TOOLS_FIX = "sudo tkedistro host-setup"
ENGINE_FIX = ("apt-get install -y docker.io and start dockerd (scripts/ensure-docker.sh in a "
              "tkedistro checkout)")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}

    def format_text(self) -> str:
        lines = []
        for c in self.checks:
            lines.append(f"{'ok ' if c.ok else 'BAD'}  {c.name:<24} {c.detail}")
            if not c.ok and c.fix:
                lines.append(f"     {'':<24} fix: {c.fix}")
        return "\n".join(lines)

    def raise_for_problems(self) -> None:
        bad = [c.name for c in self.checks if not c.ok]
        if bad:
            raise HostNotReadyError(f"not ready: {', '.join(bad)}", hint="see the fix lines above")


def check_git() -> Check:
    try:
        version = run(["git", "--version"]).stdout.strip()
    except CommandError:
        return Check("git", False, "git not found", "apt-get install -y git")
    return Check("git", True, version)


def _dir_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def check_cache(ws: Workspace) -> Check:
    if not ws.cache.exists():
        return Check("cache", True, f"{ws.cache} (empty; made on first use)")
    if not os.access(ws.cache, os.W_OK):
        return Check("cache", False, f"{ws.cache} is not writable",
                     "set --cache-dir or TKEDISTRO_CACHE to a writable folder")
    size = _dir_size(ws.cache) / 2**30
    return Check("cache", True, f"{ws.cache} ({size:.2f} GiB)")


def check_disk(ws: Workspace) -> list[Check]:
    checks = []
    for label, path in (("disk (repo)", ws.root), ("disk (cache)", ws.cache)):
        probe = path
        while not probe.exists():
            probe = probe.parent
        free = shutil.disk_usage(probe).free / 2**30
        ok = free >= MIN_FREE_GIB
        checks.append(Check(label, ok, f"{free:.1f} GiB free at {probe}",
                            "" if ok else f"free space: a release build wants {MIN_FREE_GIB} GiB"))
    return checks


def check_engine_and_images(ws: Workspace, backend: ContainerBackend) -> list[Check]:
    """The container engine answers and each release's builder image is present."""
    try:
        backend.check_available()
    except TkedistroError as exc:
        return [Check("docker engine", False, exc.message, ENGINE_FIX)]
    checks = [Check("docker engine", True, f"{backend.name} engine answers")]
    for name in list_release_names(ws.releases_dir):
        try:
            manifest = load_release(ws, name)
            image, platforms = manifest.builder.image, manifest.platforms
        except TkedistroError as exc:
            checks.append(Check(f"builder image {name}", False, exc.message.splitlines()[0],
                                f"tkedistro validate {name}"))
            continue
        try:
            info = backend.image_info(image)
        except BackendUnavailableError as exc:  # the engine went away mid-loop
            checks.append(Check(f"builder image {name}", False, exc.message.splitlines()[0],
                                ENGINE_FIX))
            continue
        if info is None:
            checks.append(Check(f"builder image {name}", False, f"{image} missing",
                                f"sudo tkedistro builder-image {name}"))
        else:
            checks.append(Check(f"builder image {name}", True, f"{image} ({info.id[:19]})"))
            checks.append(check_builder_commands(backend, image, name, platforms,
                                                 pause="pause" in manifest.images))
    return checks


def check_builder_commands(backend: ContainerBackend, image: str, name: str,
                           platforms: Sequence[str], pause: bool = False) -> Check:
    """Every command the build of release ``name`` runs is in its builder image."""
    from tkedistro.build.container import missing_commands

    needed = builder_commands(platforms, emulation.host_platform(), pause=pause)
    spec = ContainerSpec(image=image, user=f"{os.getuid()}:{os.getgid()}", network="none")
    try:
        with backend.session(spec) as session:
            missing = [c for c in missing_commands(session, needed) if c in needed or c == "sh"]
    except TkedistroError as exc:
        return Check(f"builder commands {name}", False, exc.message.splitlines()[0],
                     f"sudo tkedistro builder-image {name} --force")
    if missing:
        return Check(f"builder commands {name}", False, f"{image} lacks {', '.join(missing)}",
                     f"sudo tkedistro builder-image {name} --force")
    return Check(f"builder commands {name}", True, f"{len(needed)} commands the build runs")


def check_host_tool(program: str) -> Check:
    """buildah or skopeo (Debian packages of the same name): OCI images."""
    try:
        version = run([program, "--version"]).stdout.strip().splitlines()[0]
    except (CommandError, IndexError):
        return Check(program, False, f"{program} not found",
                     f"{HOST_TOOLS_FIX}, or apt-get install -y {program}")
    return Check(program, True, version)


def check_arm64_emulation(ws: Workspace,
                          binfmt_dir: Path = emulation.BINFMT_DIR) -> Check:
    """linux/arm64 binaries can be smoke-checked here; bad only when a release builds them."""
    ok, how = emulation.can_run("linux/arm64", binfmt_dir)
    if ok:
        return Check("arm64 emulation", True, how)
    problem = how.split("; fix")[0]
    wanting = []
    for name in list_release_names(ws.releases_dir):
        try:
            if "linux/arm64" in load_release(ws, name).platforms:
                wanting.append(name)
        except TkedistroError:
            continue  # the builder image check reports the broken manifest
    if not wanting:
        return Check("arm64 emulation", True, f"unavailable, no release builds linux/arm64 "
                                              f"({problem})")
    return Check("arm64 emulation", False,
                 f"{problem}: the linux/arm64 binaries of {', '.join(wanting)} would not be "
                 "run, so not checked", HOST_TOOLS_FIX)


CHECKS: tuple[Callable[[Workspace, ContainerBackend], list[Check]], ...] = (
    lambda ws, backend: [check_git()],
    check_engine_and_images,
    lambda ws, backend: [check_cache(ws)],
    lambda ws, backend: check_disk(ws),
    lambda ws, backend: [check_arm64_emulation(ws), check_host_tool(BUILDAH),
                         check_host_tool(SKOPEO)],
)


def run_doctor(ws: Workspace, backend: ContainerBackend) -> DoctorReport:
    """Every check, on the run's container engine (``backend``)."""
    checks: list[Check] = []
    for probe in CHECKS:
        checks.extend(probe(ws, backend))
    return DoctorReport(tuple(checks))
