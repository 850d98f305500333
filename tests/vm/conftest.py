"""vm tier fixtures: the cgroup v2 guest, built (or reused from its cache) once per session
through the tool's own command, and a tiny image made here to load into it.

The guest's cache is ``$TKEDISTRO_GUEST_CACHE`` or ``/var/tmp/tkedistro-guest``, read before
the autouse fixture moves HOME: it survives between runs on this machine, so a warm tier only
boots. Building needs root, debootstrap, apt and qemu-img; booting needs qemu-system-x86_64.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import REPO

GUEST_CACHE = os.environ.get("TKEDISTRO_GUEST_CACHE") or "/var/tmp/tkedistro-guest"
TOOLS = ("qemu-system-x86_64", "qemu-img", "debootstrap", "apt-get", "mkfs.ext4")
BUSYBOX = Path("/bin/busybox")
TINY_IMAGE = "tkedistro.test/guest-busybox:1"


def tkedistro(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """``python -m tkedistro ARGS`` from this checkout, the guest cache kept."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TKEDISTRO_GUEST_CACHE": GUEST_CACHE}
    return subprocess.run([sys.executable, "-m", "tkedistro", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def _missing() -> list[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root (debootstrap and chroot build the guest)")
    return missing


@pytest.fixture(scope="session")
def guest_built() -> str:
    """``tkedistro guest build``'s output: the guest exists (built now or reused)."""
    if missing := _missing():
        pytest.skip("the vm tier needs " + ", ".join(missing) + " (make install)")
    made = tkedistro("guest", "build")
    assert made.returncode == 0, made.stderr
    return made.stdout


@pytest.fixture(scope="session")
def tiny_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A busybox image in the host's engine, made here from busybox-static (no registry)."""
    if not BUSYBOX.is_file():
        pytest.skip("needs the host's busybox (busybox-static)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(BUSYBOX, "bin/busybox")
        for applet in ("sh", "cat", "echo"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    made = subprocess.run(["docker", "import", "-", TINY_IMAGE], input=buffer.getvalue(),
                          capture_output=True, check=False)
    assert made.returncode == 0, made.stderr.decode()
    return TINY_IMAGE
