"""The local conformance cluster from really built v1.20 binaries: a focused subset passes and
teardown leaves no processes, mounts or network devices.

Needs root, the host packages of ``tkedistro.conformance.hostcheck``, and a bin folder with
the components plus e2e.test built from the same tree. Point at them with
``TKEDISTRO_REAL_BIN_DIR`` (default: ``_output/1.20/bin/linux/amd64`` of this repo) and at the
tree with ``TKEDISTRO_REAL_SRC`` (default: ``_src/1.20``; used to build pause and agnhost).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tkedistro.conformance import hostcheck, teardown
from tkedistro.conformance.cluster import BRIDGE, COMPONENTS
from tkedistro.conformance.pipeline import ConformanceOptions, run_conformance
from tkedistro.conformance.processes import pids_matching
from tkedistro.workspace import Workspace

pytestmark = [pytest.mark.real_k8s, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("TKEDISTRO_REAL_BIN_DIR", REPO / "_output/1.20/bin/linux/amd64"))
SRC = Path(os.environ.get("TKEDISTRO_REAL_SRC", REPO / "_src/1.20"))
IMAGE_BIN_CACHE = Path("/var/tmp/tkedistro-real-cache/images-bin")


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the local cluster needs root"
    if missing := hostcheck.missing_binaries(BIN, (*COMPONENTS, "e2e.test")):
        return f"not built in {BIN}: {', '.join(missing)} (set TKEDISTRO_REAL_BIN_DIR)"
    if packages := hostcheck.missing_packages():
        return "host packages missing: apt-get install -y " + " ".join(packages)
    return None


@pytest.fixture
def workspace() -> Iterator[Workspace]:
    if reason := _skip_reason():
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="tkc-", dir="/var/tmp"))  # short: unix socket paths
    (root / "releases").mkdir()
    shutil.copy(REPO / "releases/1.20.yaml", root / "releases/1.20.yaml")
    (root / "_output/1.20/bin/linux").mkdir(parents=True)
    (root / "_output/1.20/bin/linux/amd64").symlink_to(BIN.resolve())
    (root / "_src").mkdir()
    (root / "_src/1.20").symlink_to(SRC.resolve())
    IMAGE_BIN_CACHE.mkdir(parents=True, exist_ok=True)
    (root / "_output/1.20/conformance/images").mkdir(parents=True)
    (root / "_output/1.20/conformance/images/bin").symlink_to(IMAGE_BIN_CACHE)
    yield Workspace(root=root, cache=root / "cache")
    shutil.rmtree(root, ignore_errors=True)


def test_local_cluster_runs_crd_conformance_specs_and_cleans_up(workspace: Workspace) -> None:
    netns_before = teardown.netns_names()
    result = run_conformance(workspace, "1.20", ConformanceOptions(quick=True, timeout_min=20))

    assert result.ok, result.format_text()
    assert result.results.passed >= 5
    assert result.results.failed == 0
    report = workspace.output_dir("1.20") / "conformance"
    for name in ("e2e.log", "junit_01.xml", "PRODUCT.yaml", "README.md"):
        assert (report / name).is_file(), name
    assert "k8s.gcr.io/pause:3.2" in result.loaded_images

    cluster_root = report / "cluster"
    assert pids_matching(str(cluster_root)) == []
    assert teardown.mounts_under(cluster_root) == []
    assert not Path(f"/sys/class/net/{BRIDGE}").exists()
    assert teardown.netns_names() <= netns_before
