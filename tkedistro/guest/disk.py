"""The guest's disks: the cached base (a sparse raw ext4 image made from the root folder by
``mkfs.ext4 -d``, no loop mount) and, for each run, a qcow2 overlay backed by it, so a run
never writes the base."""

from __future__ import annotations

from pathlib import Path

from tkedistro.core import files
from tkedistro.core.runner import run

LABEL = "tkedistro-guest"


def mkfs_argv(root: Path, image: Path, size: str) -> list[str]:
    """No journal: the base is never written, each run's overlay is thrown away."""
    return ["mkfs.ext4", "-q", "-F", "-L", LABEL, "-O", "^has_journal",
            "-E", "lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0",
            "-d", str(root), str(image), size]


def make_base(root: Path, image: Path, size: str) -> None:
    """``image`` (sparse, ``size``) holding ``root``'s files, owners and modes."""
    files.remove(image)
    run(mkfs_argv(root, image, size),
        message=f"making the guest's disk {image} from {root} (mkfs.ext4 -d) failed")


def overlay_argv(base: Path, overlay: Path) -> list[str]:
    """``base`` is the raw base disk or a qcow2 layer over it (loaded images)."""
    backing = "qcow2" if base.suffix == ".qcow2" else "raw"
    return ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", backing,
            str(overlay)]


def make_overlay(base: Path, overlay: Path) -> None:
    """A fresh copy-on-write layer over ``base`` for one run."""
    files.remove(overlay)
    run(overlay_argv(base, overlay),
        message=f"making the run's disk overlay {overlay} on {base} failed",
        hint="install qemu-utils (qemu-img)")
