"""What the local cluster needs from this host, and the apt-get command that provides it."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core.errors import ClusterError


@dataclass(frozen=True)
class Requirement:
    """A program the node runs from the host's packages, and the Debian package with it."""

    program: str
    package: str


REQUIREMENTS = (
    # the node image, the conformance images' Debian base, and the local registry they are
    # served from (the nodes bring containerd, CNI plugins and iptables in their image)
    Requirement("debootstrap", "debootstrap"),
    Requirement("docker-registry", "docker-registry"),
)


def missing_packages() -> list[str]:
    """Debian packages to install, one per missing program (sorted, unique)."""
    return sorted({r.package for r in REQUIREMENTS if shutil.which(r.program) is None})


def missing_binaries(bin_dir: Path, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if not os.access(bin_dir / n, os.X_OK)]


def require_root() -> None:
    if os.geteuid() != 0:
        raise ClusterError(
            "the local cluster needs root: its node image is made with debootstrap, and "
            "removing it removes the cgroups its nodes made",
            hint="run as root (sudo tkedistro conformance ...), or pass --kubeconfig PATH to "
            "test an existing cluster",
        )


def require_host(bin_dir: Path, binaries: tuple[str, ...]) -> None:
    """Raise one ``ClusterError`` naming everything missing and how to get it."""
    require_root()
    packages = missing_packages()
    absent = missing_binaries(bin_dir, binaries)
    problems = []
    if packages:
        problems.append("host packages missing: " + ", ".join(packages))
    if absent:
        problems.append(f"built binaries missing in {bin_dir}: " + ", ".join(absent))
    if not problems:
        return
    hints = []
    if packages:
        hints.append("apt-get install -y " + " ".join(packages))
    if absent:
        hints.append("build them first: tkedistro build RELEASE (with the conformance tools)")
    raise ClusterError("; ".join(problems), hint="; ".join(hints))
