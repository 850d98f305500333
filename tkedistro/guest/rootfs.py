"""The guest's root file system: debootstrap (``debian/rootfs.py``), the kernel's modules, the
boot-time runner (``templates/guest``) and an initrd made in a chroot of it.

The initrd is ``mkinitramfs`` run in the root with ``MODULES=list`` (only the modules the
recipe names: virtio disk, ext4, 9p), so it never looks at the host's hardware.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path, PurePosixPath

from tkedistro.core import files
from tkedistro.core.errors import GuestError
from tkedistro.core.runner import run
from tkedistro.debian.rootfs import DebianRecipe, clear_rootfs, make_rootfs, mirror
from tkedistro.guest.kernel import Kernel
from tkedistro.guest.recipe import GuestRecipe

UNIT = "tkedistro-guest.service"
RUNNER = PurePosixPath("/usr/local/sbin/tkedistro-guest-run")
HOSTNAME = "tkedistro-guest"
_EXECUTABLE = {RUNNER}


def guest_files() -> tuple[tuple[str, str], ...]:
    """(path in the guest, text) of the boot-time runner and its unit, and the host name."""
    folder = importlib.resources.files("tkedistro") / "templates" / "guest"
    return ((f"/etc/systemd/system/{UNIT}", (folder / UNIT).read_text()),
            (str(RUNNER), (folder / RUNNER.name).read_text()),
            ("/etc/hostname", HOSTNAME + "\n"))


def debootstrap_root(root: Path, recipe: GuestRecipe, log: Path) -> tuple[str, ...]:
    """``debootstrap --variant=minbase`` of the recipe's packages; installed lines."""
    debian = DebianRecipe(ref="tkedistro-guest", packages=recipe.packages, suite=recipe.suite,
                          step="guest", hint="run `tkedistro guest build` as root")
    return make_rootfs(root, debian, log)


def mirror_url() -> str:
    return mirror()


def clear_root(folder: Path) -> None:
    """Remove a root (or a build folder holding one), unmounting what a killed chroot left."""
    clear_rootfs(folder)


def install_kernel(root: Path, kernel: Kernel) -> None:
    """The kernel's modules under ``ROOT/usr/lib/modules`` and its boot files, then depmod."""
    target = root / "usr/lib/modules"
    files.ensure_dir(target)
    files.remove(target / kernel.version)
    run(["cp", "-a", "--", kernel.modules, target / kernel.version],
        message=f"copying the kernel modules into {target} failed")
    boot = kernel.vmlinuz.parent
    run(["cp", "-a", "--", f"{boot}/.", root / "boot"],
        message=f"copying the kernel's boot files into {root / 'boot'} failed")
    run(["chroot", root, "depmod", kernel.version], message="depmod in the guest root failed")


def configure(root: Path, recipe: GuestRecipe) -> None:
    """The runner and its unit in place and enabled, unneeded units masked, apt caches gone."""
    for path, text in recipe.guest_files:
        mode = 0o755 if PurePosixPath(path) in _EXECUTABLE else 0o644
        target = root / path.lstrip("/")
        files.ensure_dir(target.parent)
        files.write_text(target, text, mode=mode)
    run(["chroot", root, "systemctl", "enable", UNIT],
        message=f"enabling {UNIT} in the guest root failed")
    run(["chroot", root, "systemctl", "mask", *recipe.disabled_units],
        message="masking the guest's unneeded units failed")
    for item in (root / "var/cache/apt/archives").glob("*.deb"):
        files.remove_link(item)


def make_initrd(root: Path, recipe: GuestRecipe, kernel: Kernel, log: Path) -> Path:
    """``mkinitramfs`` in a chroot of ``root`` with only the recipe's modules."""
    conf = root / "etc/initramfs-tools"
    files.write_text(conf / "conf.d/tkedistro-guest", "MODULES=list\nCOMPRESS=zstd\n")
    files.write_text(conf / "modules", "".join(f"{m}\n" for m in recipe.modules))
    initrd = PurePosixPath("/boot") / f"initrd.img-{kernel.version}"
    result = run(["chroot", root, "mkinitramfs", "-o", str(initrd), kernel.version],
                 check=False)
    files.write_text(log, result.stdout + result.stderr)
    if result.returncode != 0:
        raise GuestError(f"making the guest's initrd (mkinitramfs in {root}) failed "
                         f"(log: {log})", details=(result.stdout + result.stderr)[-3000:])
    return root / str(initrd).lstrip("/")
