"""real_k8s tier, issue 23: the build ``tkedistro conformance 1.20`` starts for its missing
tools publishes what ``tkedistro build 1.20 --with-conformance-tools`` publishes from the real
v1.20.2 tree: the same files (both platforms' binaries, the five multi-arch images, the release
tarballs, SHA512SUMS, SBOM, provenance) and the same SHA256SUMS.

The persistent distro's output (built by ``build``, a no-op when warm) is moved aside, the
conformance build path (``ensure_binaries``, not the suite) builds it again, and the two are
compared. Should that build fail, the moved output is put back.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.published import published
from tests.real_k8s.conftest import ensure_k8s_upstream
from tkedistro.conformance import pipeline as conf
from tkedistro.core.workspace import Workspace
from tkedistro.engine.engines import docker_engines
from tkedistro.model.manifest import load_release

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(5400)]

IMAGES = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "pause"]


def test_a_conformance_started_build_publishes_what_build_publishes(
        built_release: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = built_release.output_dir("1.20")
    files, sums = published(out)
    assert {"SHA512SUMS", "sbom.spdx.json", "provenance.intoto.json",
            "bin/linux/amd64/e2e.test", "bin/linux/amd64/ginkgo",
            "release/kubernetes-server-linux-arm64.tar.gz",
            *(f"images/{image}.oci.tar" for image in IMAGES)} <= set(files)

    aside = out.with_name(f".{out.name}.by-build")
    shutil.rmtree(aside, ignore_errors=True)
    out.rename(aside)
    kubeconfig = tmp_path / "kubeconfig"  # a --kubeconfig run: the suite is not started
    kubeconfig.write_text("apiVersion: v1\n")
    monkeypatch.setenv("TKEDISTRO_CACHE", str(built_release.cache))
    try:
        options = conf.ConformanceOptions(kubeconfig=kubeconfig,
                                          upstream=ensure_k8s_upstream().as_uri())
        conf.ensure_binaries(built_release, load_release(built_release, "1.20"), options,
                             out / "bin" / "linux" / "amd64", docker_engines())
    finally:
        if not out.exists():
            aside.rename(out)
    assert published(out) == (files, sums)
    shutil.rmtree(aside, ignore_errors=True)
