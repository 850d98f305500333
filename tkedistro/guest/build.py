"""``ensure_guest``: the cached guest for the current inputs, built when missing.

A guest lives in ``CACHE/guest-<digest>/`` (``vmlinuz``, ``initrd.img``, ``disk.img``,
``guest.json``). It is made in ``CACHE/build-<digest>/``, one step at a time, each step marked
done when it finished (an interrupted build resumes after its last finished step), then renamed
into place; older guests are removed. One build at a time (``CACHE/build.lock``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tkedistro.core import console, files
from tkedistro.core.errors import GuestError
from tkedistro.core.locks import exclusive_lock
from tkedistro.guest import disk, kernel, rootfs
from tkedistro.guest.recipe import GuestRecipe, cache_dir

MANIFEST = "guest.json"
LOCK_WAIT_S = 3600.0
T = TypeVar("T")


@dataclass(frozen=True)
class Guest:
    """A built guest: its boot files and base disk, and what it was made of."""

    folder: Path
    digest: str
    kernel_version: str
    built_s: dict[str, float]  # each build step's seconds

    @property
    def vmlinuz(self) -> Path:
        return self.folder / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.folder / "initrd.img"

    @property
    def disk(self) -> Path:
        return self.folder / "disk.img"


def current_recipe() -> GuestRecipe:
    """The recipe of today's inputs (asks apt for the current kernel package)."""
    return GuestRecipe(kernel_package=kernel.resolve_package(), mirror=rootfs.mirror_url(),
                       guest_files=rootfs.guest_files())


def folder_name(digest: str) -> str:
    return "guest-" + digest.removeprefix("sha256:")[:16]


def load_guest(folder: Path) -> Guest | None:
    """The guest built in ``folder``, or None when it is not (completely) there or its
    ``guest.json`` does not hold what a build writes."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    try:
        data = json.loads(files.read_text(manifest))
        guest = Guest(folder, str(data["digest"]), str(data["kernel_version"]),
                      dict(data.get("built_s", {})))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # not what a build writes: build it again
    if not all(p.is_file() for p in (guest.vmlinuz, guest.initrd, guest.disk)):
        return None
    return guest


def ensure_guest(cache: Path | None = None, *, force: bool = False) -> tuple[Guest, bool]:
    """The guest for today's inputs and whether it was built now (False: reused)."""
    cache = cache or cache_dir()
    recipe = current_recipe()
    final = cache / folder_name(recipe.digest())
    if not force and (guest := load_guest(final)) is not None:
        return guest, False
    if os.geteuid() != 0:
        raise GuestError("building the cgroup v2 guest needs root (debootstrap, chroot)",
                         hint="run `tkedistro guest build` as root once; later runs reuse it")
    files.ensure_dir(cache)
    with exclusive_lock(cache / "build.lock", f"another guest build holds {cache}/build.lock",
                        wait=LOCK_WAIT_S, waiting="waiting for another guest build to finish"):
        if not force and (guest := load_guest(final)) is not None:
            return guest, False
        work = cache / ("build-" + final.name.removeprefix("guest-"))
        if force:
            rootfs.clear_root(work)
        guest = _build(recipe, work, final)
        _remove_others(cache, final)
    return guest, True


def _build(recipe: GuestRecipe, work: Path, final: Path) -> Guest:
    files.ensure_dir(work)
    timings: dict[str, float] = {}
    unpacked = _step(work, "kernel", timings, recipe.kernel_package,
                     lambda: kernel.fetch_kernel(recipe.kernel_package, work / "kernel"))
    found = unpacked or kernel.unpacked(work / "kernel/tree",
                                        kernel.version_of(recipe.kernel_package))
    root = work / "root"
    _step(work, "root", timings, f"debootstrap {recipe.suite} ({len(recipe.packages)} packages)",
          lambda: rootfs.debootstrap_root(root, recipe, work / "debootstrap.log"))
    _step(work, "setup", timings, "modules, boot runner, initrd",
          lambda: _set_up(root, recipe, found, work))
    _step(work, "disk", timings, f"mkfs.ext4 -d ({recipe.disk_size}, sparse)",
          lambda: disk.make_base(root, work / "disk.img", recipe.disk_size))
    rootfs.clear_root(root)
    files.remove(work / "kernel")
    files.write_json(work / MANIFEST, {"digest": recipe.digest(), "kernel_version":
                                       found.version, "packages": list(recipe.packages),
                                       "built_s": timings})
    files.remove(final)
    files.rename(work, final)
    guest = load_guest(final)
    if guest is None:
        raise GuestError(f"the guest built in {final} is incomplete",
                         hint="run `tkedistro guest build --force`")
    return guest


def _set_up(root: Path, recipe: GuestRecipe, found: kernel.Kernel, work: Path) -> None:
    rootfs.install_kernel(root, found)
    rootfs.configure(root, recipe)
    initrd = rootfs.make_initrd(root, recipe, found, work / "mkinitramfs.log")
    files.copy_file(initrd, work / "initrd.img")
    files.copy_file(found.vmlinuz, work / "vmlinuz")


def _step(work: Path, name: str, timings: dict[str, float], detail: str,
             action: Callable[[], T]) -> T | None:
    """Run ``action`` unless ``work/<name>.done`` says an earlier build finished it."""
    marker = work / f"{name}.done"
    if marker.is_file():
        timings[name] = float(files.read_text(marker) or 0)
        return None
    start = time.monotonic()
    with console.step("guest_build", f"{name}: {detail}"):
        value = action()
    timings[name] = round(time.monotonic() - start, 1)
    files.write_text(marker, f"{timings[name]}")
    return value


def _remove_others(cache: Path, keep: Path) -> None:
    """Older guests and builds (other inputs) go: each holds a multi-GB disk."""
    for old in cache.glob("guest-*"):
        if old != keep and old.is_dir():
            files.remove(old)
    for old in cache.glob("build-*"):
        if old.name.removeprefix("build-") != keep.name.removeprefix("guest-") and old.is_dir():
            rootfs.clear_root(old)
