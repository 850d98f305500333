"""The host's Debian packages and binfmt_misc entries: the one list, what is missing, the fix.

``missing_packages`` is the union of the local cluster's packages (``CLUSTER_TOOLS``), the OCI
image tools (buildah, skopeo) and, when a release has a platform this host does not run
natively, qemu-user-static and binfmt-support. The emulation entry (``qemu-aarch64`` for
linux/arm64) must be registered with the F flag (``engine/emulation.py`` says whether it is).
Every command is an argv list through ``core.runner.run``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core.errors import HostNotReadyError
from tkedistro.core.runner import run
from tkedistro.engine import emulation


@dataclass(frozen=True)
class Requirement:
    """A program this host runs, and the Debian package that has it."""

    program: str
    package: str


# the node image, the upstream images' Debian base, and the local registry they are served
# from (the nodes bring containerd, CNI plugins and iptables in their image)
CLUSTER_TOOLS = (Requirement("debootstrap", "debootstrap"),
                 Requirement("docker-registry", "docker-registry"))
# OCI images: made with buildah, copied and inspected with skopeo
IMAGE_TOOLS = (Requirement("buildah", "buildah"), Requirement("skopeo", "skopeo"))
# another platform's binaries under qemu-user (the smoke check, a foreign Debian base)
EMULATION_TOOLS = (Requirement("update-binfmts", "binfmt-support"),)
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


def foreign_platforms(platforms: Iterable[str]) -> list[str]:
    """The platforms this host runs only under emulation (sorted, unique)."""
    own = emulation.host_platform()
    return sorted({p for p in platforms if p != own})


def qemu_name(platform: str) -> str:
    """``linux/arm64`` -> ``qemu-aarch64`` (its binfmt_misc entry and ``-static`` binary)."""
    arch = emulation.platform_arch(platform)
    return f"qemu-{emulation.QEMU_NAME.get(arch, arch)}"


def requirements(foreign: Sequence[str]) -> list[Requirement]:
    """Every program this host needs and the Debian package that has it."""
    needed = [*CLUSTER_TOOLS, *IMAGE_TOOLS]
    if foreign:
        needed += [Requirement(f"{qemu_name(p)}-static", "qemu-user-static") for p in foreign]
        needed += list(EMULATION_TOOLS)
    return needed


def missing_packages(foreign: Sequence[str]) -> list[str]:
    """The Debian packages to install, one per missing program (sorted, unique)."""
    return sorted({r.package for r in requirements(foreign) if shutil.which(r.program) is None})


def install_packages(packages: Sequence[str]) -> None:
    """``apt-get update`` and ``apt-get install -y --no-install-recommends PACKAGES``."""
    if shutil.which("apt-get") is None:
        raise HostNotReadyError(
            "missing host packages: " + ", ".join(packages) + ", and this host has no apt-get",
            hint="install them with this system's package manager (Debian/Ubuntu names)")
    run(["apt-get", "update", "-qq"], env=APT_ENV, message="apt-get update failed")
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], env=APT_ENV,
        message="apt-get install " + " ".join(packages) + " failed")


def binfmt_problems(foreign: Sequence[str],
                    binfmt_dir: Path = emulation.BINFMT_DIR) -> dict[str, str]:
    """Each foreign platform that cannot run here -> why (and what to do)."""
    problems = {}
    for platform in foreign:
        able, why = emulation.can_run(platform, binfmt_dir)
        if not able:
            problems[platform] = why
    return problems


def binfmt_fix(platform: str, binfmt_dir: Path = emulation.BINFMT_DIR) -> list[list[str]]:
    """The commands that register ``platform``'s qemu-user with binfmt_misc."""
    argvs = []
    if not (binfmt_dir / "status").exists():
        argvs.append(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt_dir)])
    argvs.append(["update-binfmts", "--enable", qemu_name(platform)])
    return argvs


def register_binfmt(platform: str, binfmt_dir: Path = emulation.BINFMT_DIR) -> None:
    for argv in binfmt_fix(platform, binfmt_dir):
        run(argv, message=f"registering {qemu_name(platform)} with binfmt_misc failed",
            hint="an unprivileged container cannot: run it on the host, or build only the "
                 "host's platform")
