"""The local conformance cluster from really built v1.20 binaries: a focused subset passes and
teardown leaves no processes, mounts or network devices.

By default everything comes through the tool: the persistent distro of the build tier
(``/var/tmp/tkedistro-realk8s/distro``, see conftest.py) is built with
``tkedistro build 1.20 --with-conformance-tools`` (a no-op when warm), then the quick subset
runs on a local cluster from its ``_output/1.20``. Needs root, Docker with the builder image,
and the host packages of ``tkedistro.conformance.hostcheck`` (``make install``).

To test binaries built elsewhere instead, point ``TKEDISTRO_REAL_BIN_DIR`` at a bin folder with
the components plus e2e.test and ginkgo, and ``TKEDISTRO_REAL_SRC`` at the tree they came from
(default: ``_src/1.20`` of this repo; the conformance images are built from it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.real_k8s.conftest import PERSIST, refresh_persistent_distro
from tkedistro.cli.app import app
from tkedistro.conformance import hostcheck, teardown
from tkedistro.conformance.cluster import BRIDGE, COMPONENTS
from tkedistro.conformance.pipeline import TOOLS, ConformanceOptions, run_conformance
from tkedistro.conformance.processes import pids_matching
from tkedistro.core.workspace import Workspace

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(3600)]

REPO = Path(__file__).resolve().parents[2]
BIN_OVERRIDE = os.environ.get("TKEDISTRO_REAL_BIN_DIR")
SRC = Path(os.environ.get("TKEDISTRO_REAL_SRC", REPO / "_src/1.20"))
IMAGE_CACHE = Path("/var/tmp/tkedistro-real-cache")  # registry and image binaries, kept warm
IMAGE_SPECS = ("Docker Containers should use the image defaults if command and args are blank",
               "Deployment RollingUpdateDeployment should delete old pods and create new ones")


def _host_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the local cluster needs root"
    if packages := hostcheck.missing_packages():
        return "host packages missing (make install): apt-get install -y " + " ".join(packages)
    return None


def _given_binaries(bin_dir: Path) -> Iterator[Workspace]:
    """A throwaway distro repo whose _output/1.20 bin folder is ``bin_dir`` (no build)."""
    if missing := hostcheck.missing_binaries(bin_dir, (*COMPONENTS, *TOOLS)):
        pytest.skip(f"not built in {bin_dir}: {', '.join(missing)} (TKEDISTRO_REAL_BIN_DIR)")
    root = Path(tempfile.mkdtemp(prefix="tkc-", dir="/var/tmp"))  # short: unix socket paths
    (root / "releases").mkdir()
    shutil.copy(REPO / "releases/1.20.yaml", root / "releases/1.20.yaml")
    (root / "_output/1.20/bin/linux").mkdir(parents=True)
    (root / "_output/1.20/bin/linux/amd64").symlink_to(bin_dir.resolve())
    (root / "_src").mkdir()
    (root / "_src/1.20").symlink_to(SRC.resolve())
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    yield Workspace(root=root, cache=IMAGE_CACHE)
    shutil.rmtree(root, ignore_errors=True)


def _built_by_the_tool(monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The persistent distro, built with the conformance tools through the CLI."""
    root = refresh_persistent_distro(monkeypatch)
    result = CliRunner().invoke(
        app, ["--root", str(root), "build", "1.20", "--with-conformance-tools"])
    assert result.exit_code == 0, result.output
    return Workspace(root=root, cache=PERSIST / "cache")


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    if reason := _host_skip_reason():
        pytest.skip(reason)
    if BIN_OVERRIDE:
        yield from _given_binaries(Path(BIN_OVERRIDE))
    else:
        yield _built_by_the_tool(monkeypatch)


def test_local_cluster_runs_crd_conformance_specs_and_cleans_up(workspace: Workspace) -> None:
    bin_dir = workspace.output_dir("1.20") / "bin/linux/amd64"
    assert hostcheck.missing_binaries(bin_dir, (*COMPONENTS, *TOOLS)) == []
    netns_before = teardown.netns_names()
    options = ConformanceOptions(quick=True, timeout_min=20, build=False)
    result = run_conformance(workspace, "1.20", options)

    assert result.ok, result.format_text()
    assert result.results.passed >= 7
    assert result.results.failed == 0
    passed = {spec.name for spec in result.results.specs if spec.status.value == "passed"}
    for name in IMAGE_SPECS:  # their pods pulled agnhost and httpd from the local registry
        assert any(name in spec for spec in passed), (name, sorted(passed))
    report = workspace.conformance_results_dir("1.20") / "latest"
    assert report.resolve() == result.report_dir.resolve()
    for name in ("e2e.log", "junit_01.xml", "PRODUCT.yaml", "README.md"):
        assert (report / name).is_file(), name
    if (workspace.output_dir("1.20") / "build-info.json").is_file():  # built by the tool
        assert (report / "build-info.json").read_bytes() == \
            (workspace.output_dir("1.20") / "build-info.json").read_bytes()
    assert any(i.endswith("/k8s.gcr.io/pause:3.2") for i in result.loaded_images), \
        result.loaded_images
    assert result.unavailable_images == ()

    cluster_root = workspace.cluster_dir("1.20")
    assert pids_matching(str(cluster_root)) == []
    assert teardown.mounts_under(cluster_root) == []
    assert not Path(f"/sys/class/net/{BRIDGE}").exists()
    assert teardown.netns_names() <= netns_before
