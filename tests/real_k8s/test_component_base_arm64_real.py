"""The linux/arm64 Debian component base, made on an amd64 host: debootstrap ``--arch arm64``
with its second stage under qemu (binfmt_misc, F flag), imported as an arm64 image whose
legacy iptables and tools run under ``docker run --platform linux/arm64`` on Debian 13 trixie;
a second call reuses it.

The first call debootstraps (root, about 5 to 7 minutes under emulation; Debian's mirror) and
leaves the image in the engine; later runs reuse it in under a second. Touches no distro
folder: its work folder is the test's own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tkedistro.engine import emulation
from tkedistro.engine.docker_images import DockerImages
from tkedistro.images import base

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(1500)]

PLATFORM = "linux/arm64"


def _run_arm64(ref: str, script: str) -> str:
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "--platform", PLATFORM,
                           ref, "sh", "-c", script], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_arm64_base_is_an_arm64_image_with_legacy_iptables(tmp_path: Path) -> None:
    able, why = emulation.can_run(PLATFORM)
    if not able:
        pytest.skip(why)
    engine = DockerImages()
    ref = base.base_ref(PLATFORM)
    if engine.labels(ref) is None and (os.geteuid() != 0 or shutil.which("debootstrap") is None):
        pytest.skip("the arm64 component base is not made yet; making it needs root and "
                    "debootstrap (make install)")
    made = base.ensure_component_base(engine, tmp_path / "work", PLATFORM)
    start = time.monotonic()
    again = base.ensure_component_base(engine, tmp_path / "work", PLATFORM)
    assert again.reused and again.image_id == made.image_id and time.monotonic() - start < 10
    seen = subprocess.run(["docker", "image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", ref],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    assert seen.strip() == PLATFORM
    out = _run_arm64(ref, "uname -m; dpkg --print-architecture; iptables --version; "
                          "ip6tables --version; "
                          "for t in ipset conntrack ebtables; do command -v $t; done; "
                          ". /etc/os-release; echo $VERSION_CODENAME $VERSION_ID")
    lines = out.split("\n")
    assert lines[:2] == ["aarch64", "arm64"]
    assert lines[2].startswith("iptables v1.8.") and lines[2].endswith("(legacy)")
    assert lines[3].startswith("ip6tables v1.8.") and lines[3].endswith("(legacy)")
    assert lines[4:7] == ["/usr/sbin/ipset", "/usr/sbin/conntrack", "/usr/sbin/ebtables"]
    assert lines[7] == "trixie 13"  # Debian 13, supported until 2030 (bullseye ended 2026-08-31)
    assert made.version("iptables").startswith("1.8.")
