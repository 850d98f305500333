"""Docker tier: the offline agnhost image layout runs curl and OpenBSD nc (the network
conformance specs dial through them inside agnhost). The archive is loaded into the real engine
and run with no network; a stand-in binary takes agnhost's place (the real one is built in the
real_k8s tier)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tkedistro.conformance import images

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


@pytest.mark.skipif(not images.CURL.exists() or not images.BUSYBOX.exists(),
                    reason="needs the host's curl and busybox (make install)")
def test_agnhost_image_carries_working_curl_and_netcat(tmp_path: Path) -> None:
    porter = tmp_path / "porter"
    porter.mkdir()
    for name in ("localhost.crt", "localhost.key"):
        (porter / name).write_text("x\n")
    name = f"tkedistro-test/agnhost:{uuid.uuid4().hex[:8]}"
    plan = images.agnhost_plan(name, images.BUSYBOX, porter)
    archive = tmp_path / "agnhost.tar"
    images.write_archive(plan, archive)
    subprocess.run(["docker", "load", "-i", str(archive)], check=True, capture_output=True)
    try:
        proc = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", name,
             "-c", "curl --version && curl -sS -m 2 http://127.0.0.1:9/ ; echo rc=$? ; "
                   "echo hi | nc -w 1 -u 127.0.0.1 9; echo nc=$?"],
            capture_output=True, text=True, timeout=120)
    finally:
        subprocess.run(["docker", "rmi", "-f", name], capture_output=True)
    assert proc.stdout.startswith("curl "), proc.stdout + proc.stderr
    assert "Failed to connect to 127.0.0.1 port 9" in proc.stderr  # curl ran and dialled
    assert "rc=7" in proc.stdout
    assert "nc=0" in proc.stdout  # OpenBSD netcat: -u (UDP) exists, unlike busybox's nc
