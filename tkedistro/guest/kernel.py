"""Debian's kernel for the guest: resolved through apt, downloaded and unpacked, never
installed on the host.

``linux-image-amd64`` depends on the current ABI's image (``linux-image-6.1.0-57-amd64``);
``apt-get download`` fetches that ``.deb`` and ``dpkg-deb -x`` unpacks it into a folder of its
own (``boot/vmlinuz-VERSION``, ``usr/lib/modules/VERSION`` or ``lib/modules/VERSION``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core import files
from tkedistro.core.errors import GuestError
from tkedistro.core.runner import run
from tkedistro.guest.recipe import KERNEL_META

_IMAGE = re.compile(r"^\s*Depends:\s*(linux-image-[0-9][A-Za-z0-9.+~-]*)\s*$", re.ASCII)
APT_HINT = "run `apt-get update` and check that this host's apt sources reach Debian bookworm"


@dataclass(frozen=True)
class Kernel:
    """An unpacked kernel package: its version and where its image and modules are."""

    version: str  # ``6.1.0-57-amd64``
    vmlinuz: Path
    modules: Path  # the ``VERSION`` folder of its modules


def image_package(depends_text: str) -> str:
    """The image package ``apt-cache depends linux-image-amd64`` names (the first one)."""
    for line in depends_text.splitlines():
        if found := _IMAGE.match(line):
            return found.group(1)
    raise GuestError(f"`apt-cache depends {KERNEL_META}` names no linux-image-* package",
                     details=depends_text[-2000:], hint=APT_HINT)


def resolve_package() -> str:
    """The current kernel image package of this host's apt lists."""
    result = run(["apt-cache", "depends", KERNEL_META],
                 message=f"asking apt which kernel {KERNEL_META} stands for failed",
                 hint=APT_HINT)
    return image_package(result.stdout)


def version_of(package: str) -> str:
    """``linux-image-6.1.0-57-amd64`` -> ``6.1.0-57-amd64``."""
    return package.removeprefix("linux-image-")


def fetch_kernel(package: str, folder: Path) -> Kernel:
    """Download ``package`` into ``folder`` and unpack it there (``folder/tree``)."""
    files.ensure_dir(folder)
    for old in folder.glob("*.deb"):
        files.remove(old)
    run(["apt-get", "download", package], cwd=folder,
        message=f"downloading the guest's kernel package {package} failed", hint=APT_HINT)
    debs = sorted(folder.glob(f"{package}_*.deb"))
    if not debs:
        raise GuestError(f"`apt-get download {package}` left no .deb in {folder}",
                         hint=APT_HINT)
    tree = folder / "tree"
    files.remove(tree)
    run(["dpkg-deb", "-x", debs[-1], tree],
        message=f"unpacking {debs[-1].name} failed")
    return unpacked(tree, version_of(package))


def unpacked(tree: Path, version: str) -> Kernel:
    """The kernel image and modules in an unpacked package tree."""
    vmlinuz = tree / "boot" / f"vmlinuz-{version}"
    modules = next((p for p in (tree / "usr/lib/modules" / version,
                                tree / "lib/modules" / version) if p.is_dir()), None)
    if not vmlinuz.is_file() or modules is None:
        raise GuestError(f"the kernel package unpacked in {tree} has no boot/vmlinuz-{version} "
                         f"or modules/{version}",
                         hint="remove the guest cache folder and build again")
    return Kernel(version, vmlinuz, modules)
