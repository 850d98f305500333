"""The Docker tier's floor: a real engine answers and runs a container from a locally made image."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import REPO
from tkedistro.model.manifest import load_manifest

pytestmark = pytest.mark.docker


def test_engine_runs_the_offline_builder_image_unprivileged_without_network() -> None:
    image = load_manifest(REPO / "releases" / "1.20.yaml").builder.image
    proc = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--user", "1000:1000", image,
         "sh", "-c", "id -u; go version; cat /sys/class/net/*/operstate 2>/dev/null | wc -l"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    uid, go_version, interfaces = proc.stdout.split("\n")[:3]
    assert uid == "1000"
    assert go_version.startswith("go version go1.15.")
    assert int(interfaces) <= 1  # only loopback: no network
