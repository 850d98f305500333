"""Whether this host can run another platform's binaries: natively, or qemu-user via binfmt_misc.

``can_run("linux/arm64")`` on an amd64 host is true when the kernel has ``qemu-aarch64``
registered in ``/proc/sys/fs/binfmt_misc``, enabled, with the **F** flag (the interpreter is
opened at registration, so it also works inside a chroot or a container whose root has no
qemu: debootstrap's second stage, ``docker run --platform``). The answer's text says which,
or why not and what to install. Used by the foreign Debian bases (``debian/rootfs.py``) and by
the smoke checks of foreign images.
"""

from __future__ import annotations

from pathlib import Path

from tkedistro.core.host import host_arch, host_platform

__all__ = ["BINFMT_DIR", "INSTALL", "QEMU_NAME", "can_run", "host_arch", "host_platform",
           "platform_arch"]

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
# GOARCH -> the name qemu-user (and its binfmt_misc entry, qemu-NAME) gives that architecture
QEMU_NAME = {"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "ppc64le": "ppc64le",
             "s390x": "s390x", "riscv64": "riscv64"}
INSTALL = ("install qemu-user-static and binfmt-support (apt-get install qemu-user-static "
           "binfmt-support), then `update-binfmts --enable {name}`; if {dir} is empty, mount it "
           "first: `mount -t binfmt_misc binfmt_misc {dir}`")


def platform_arch(platform: str) -> str:
    """``linux/arm64`` -> ``arm64``; ``linux/arm/v7`` -> ``arm``; ``ValueError`` otherwise."""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or parts[0] != "linux" or not parts[1]:
        raise ValueError(f"expected a platform like linux/amd64 or linux/arm64, got {platform!r}")
    return parts[1]


def can_run(platform: str, binfmt_dir: Path = BINFMT_DIR, *,
            machine: str | None = None) -> tuple[bool, str]:
    """(True, how) when binaries of ``platform`` run here, else (False, why + what to install).

    ``how`` is ``"native"`` for the host's own architecture and
    ``"qemu-aarch64 via binfmt_misc (F)"`` (for example) under emulation."""
    arch = platform_arch(platform)
    own = host_arch(machine)
    if arch == own:
        return True, "native"
    name = f"qemu-{QEMU_NAME.get(arch, arch)}"
    entry = binfmt_dir / name
    prefix = (f"{platform} binaries cannot run on this {own} host (emulation needs {entry}, "
              f"enabled, with the F flag): ")
    advice = INSTALL.format(name=name, dir=binfmt_dir)
    if not (binfmt_dir / "status").exists():
        return False, f"{prefix}binfmt_misc is not mounted at {binfmt_dir}; {advice}"
    if _first_line(binfmt_dir / "status") != "enabled":
        return False, (f"{prefix}binfmt_misc is disabled ({binfmt_dir / 'status'}); "
                       f"`echo 1 > {binfmt_dir / 'status'}`, or {advice}")
    if not entry.exists():
        return False, f"{prefix}it is not registered; {advice}"
    text = _read(entry)
    if _first_line(entry) != "enabled":
        return False, f"{prefix}it is registered but disabled; {advice}"
    flags = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("flags:")), "")
    if "F" not in flags:
        return False, (f"{prefix}it is registered without F (flags: {flags or 'none'}), so "
                       f"its interpreter is not found inside a chroot or container; {advice}")
    return True, f"{name} via binfmt_misc (F)"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _first_line(path: Path) -> str:
    lines = _read(path).splitlines()
    return lines[0].strip() if lines else ""
