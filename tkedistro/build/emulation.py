"""Can this host run a platform's binaries: natively, or under qemu-user through binfmt_misc?

The ``F`` flag matters: with it the kernel opens the interpreter when it is registered, so it
also works inside containers whose root filesystem has no qemu.
"""

from __future__ import annotations

import platform as _platform
from pathlib import Path

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
QEMU_NAMES = {"linux/arm64": "qemu-aarch64"}
_MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def host_platform() -> str:
    machine = _platform.machine()
    return f"linux/{_MACHINES.get(machine.lower(), machine)}"


def can_run(platform: str, binfmt_dir: Path = BINFMT_DIR) -> tuple[bool, str]:
    """(True, how) when ``platform``'s binaries run here; else (False, why and the fix)."""
    host = host_platform()
    if platform == host:
        return True, "native"
    name = QEMU_NAMES.get(platform)
    if name is None or host != "linux/amd64":
        return False, f"no emulation of {platform} on {host} is known"
    entry = binfmt_dir / name
    try:
        lines = entry.read_text(encoding="utf-8").splitlines()
    except OSError:
        if not (binfmt_dir / "status").exists():
            return False, _unavailable(name, f"binfmt_misc is not mounted at {binfmt_dir}")
        return False, _unavailable(name, f"{entry} is not registered")
    flags = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("flags:")), "")
    if "enabled" not in lines:
        return False, _unavailable(name, f"{entry} is disabled")
    if "F" not in flags:
        return False, _unavailable(name, f"{entry} lacks the F flag (flags: {flags or 'none'}), so "
                                         "the interpreter is not found inside containers")
    return True, f"{name} via binfmt_misc"


def _unavailable(name: str, problem: str) -> str:
    return (f"no {name} binfmt: {problem}; fix (as root): apt-get install qemu-user-static "
            "binfmt-support; mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; "
            f"update-binfmts --enable {name}")
