"""What the local cluster needs from this host, and the apt-get command that provides it."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core.errors import ClusterError

CNI_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")


@dataclass(frozen=True)
class Requirement:
    """A program the node runs from the host's packages, and the Debian package with it."""

    program: str
    package: str


REQUIREMENTS = (
    Requirement("etcd", "etcd-server"),
    Requirement("containerd", "containerd"),
    Requirement("ctr", "containerd"),
    Requirement("runc", "runc"),
    Requirement("iptables", "iptables"),
    Requirement("conntrack", "conntrack"),
    Requirement("socat", "socat"),
    Requirement("openssl", "openssl"),
    Requirement("mount", "mount"),
    Requirement("ip", "iproute2"),
    # the conformance images: their Debian base, and the local registry they are served from
    Requirement("debootstrap", "debootstrap"),
    Requirement("docker-registry", "docker-registry"),
)


def find_cni_dir() -> Path | None:
    for folder in CNI_DIRS:
        if all((folder / p).is_file() for p in CNI_PLUGINS):
            return folder
    return None


def missing_packages() -> list[str]:
    """Debian packages to install, one per missing program (sorted, unique)."""
    wanted = {r.package for r in REQUIREMENTS if shutil.which(r.program) is None}
    if find_cni_dir() is None:
        wanted.add("containernetworking-plugins")
    return sorted(wanted)


def missing_binaries(bin_dir: Path, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if not os.access(bin_dir / n, os.X_OK)]


def require_root() -> None:
    if os.geteuid() != 0:
        raise ClusterError(
            "the local conformance cluster needs root: the kubelet mounts volumes, runs "
            "containers and creates network devices",
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
