"""Docker tier: the build ``tkedistro conformance`` starts for its missing tools (its
``ensure_binaries``, not the suite) and the one ``tkedistro images`` starts publish the same
``_output/<release>`` as a plain ``tkedistro build``: the same files (binaries, pause as an OCI
archive, release tarballs, both checksum files, SBOM, provenance) and the same SHA256SUMS.
A synthetic k8s-shaped upstream built for linux/amd64 in the real builder image."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.gitrepo import make_upstream, write_manifest
from tests.helpers.published import take_published
from tests.integration.test_build_arm64_docker import PAUSE_C
from tests.integration.test_build_docker import COMPONENTS, TOOL_FILES, upstream_files
from tkedistro.cli.app import app
from tkedistro.conformance import pipeline as conf
from tkedistro.core.workspace import Workspace
from tkedistro.engine.engines import docker_engines
from tkedistro.model.manifest import load_release

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

FILES: dict[str, str | bytes | None] = {
    **upstream_files(), **TOOL_FILES,
    "build/pause/linux/pause.c": PAUSE_C,
    "build/pause/Makefile": "REGISTRY ?= staging-k8s.gcr.io\nTAG = 3.4\n",
}
SHIPPED = {"SHA256SUMS", "SHA512SUMS", "sbom.spdx.json", "provenance.intoto.json",
           "images/pause.oci.tar", "release/kubernetes-src.tar.gz",
           "release/kubernetes-client-linux-amd64.tar.gz", "bin/linux/amd64/kubectl",
           "bin/linux/amd64/pause", "build-info.json"}


@pytest.fixture(scope="module")
def go_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tkedistro-cache")


@pytest.fixture
def root(tmp_path: Path, go_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TKEDISTRO_CACHE", str(go_cache))
    upstream = make_upstream(tmp_path / "up", {"v1.20.4": FILES})
    distro = tmp_path / "distro"
    write_manifest(distro, "1.20", url=upstream.url, tag="v1.20.4",
                   commit=upstream.tags["v1.20.4"], components=COMPONENTS,
                   extra="images: [pause]\n")
    return distro


def cli(root: Path, *args: str) -> None:
    result = CliRunner().invoke(app, ["--root", str(root), *args])
    assert result.exit_code == 0, result.output


def test_a_conformance_started_build_publishes_what_build_publishes(root: Path,
                                                                    tmp_path: Path) -> None:
    cli(root, "build", "1.20", "--with-conformance-tools")
    files, sums = take_published(root / "_output" / "1.20")
    assert SHIPPED | {"bin/linux/amd64/e2e.test", "bin/linux/amd64/ginkgo"} <= set(files)

    kubeconfig = tmp_path / "kubeconfig"  # a --kubeconfig run: the build needs no root
    kubeconfig.write_text("apiVersion: v1\n")
    ws = Workspace.discover(root)
    conf.ensure_binaries(ws, load_release(ws, "1.20"), conf.ConformanceOptions(
        kubeconfig=kubeconfig), ws.output_dir("1.20") / "bin" / "linux" / "amd64",
        docker_engines())
    assert take_published(root / "_output" / "1.20") == (files, sums)


def test_images_publishes_what_build_publishes(root: Path) -> None:
    cli(root, "build", "1.20")
    files, sums = take_published(root / "_output" / "1.20")
    assert SHIPPED <= set(files)
    cli(root, "images", "1.20")
    assert take_published(root / "_output" / "1.20") == (files, sums)
