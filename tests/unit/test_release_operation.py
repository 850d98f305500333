"""The one release-build operation (``release/operation.py``): ``build``, ``images`` and the
build ``conformance`` starts for its missing tools publish the same ``_output/<release>``
(the same files, the same SHA256SUMS), and one build loads the manifest, hashes each patch and
selects its targets once.

The container build is faked (each binary's bytes depend only on what it is) and so are the
component images (one small archive per image); the tarballs, checksums, SBOM and provenance
are the real ones, made from a tiny git tree.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.helpers.engines import fake_engines
from tests.helpers.gitrepo import K8S_LIKE_FILES, make_upstream
from tests.helpers.manifests import manifest_text
from tests.helpers.published import take_published
from tests.unit.test_build_plan import FakeBackend, FakeSource, fake_source
from tkedistro.artifacts import context
from tkedistro.artifacts import finish as finish_mod
from tkedistro.build import container, output, pipeline, targets
from tkedistro.build.plan import BuildPlan
from tkedistro.build.publish import Staging
from tkedistro.cli.app import app
from tkedistro.conformance import pipeline as conf
from tkedistro.core.workspace import Workspace
from tkedistro.engine import engines as engines_mod
from tkedistro.images.shipped import ShippedImage
from tkedistro.model import manifest as manifest_mod
from tkedistro.release import operation
from tkedistro.source import prepared

IMAGES = {"tkedistro/builder:go1.15-bullseye": "sha256:" + "a" * 64}
PATCH = "patches/1.20/0001-kubelet-a-fix.patch"
PATCH_TEXT = """\
From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001
From: A U Thor <author@example.com>
Date: Wed, 13 Jan 2021 12:00:00 +0000
Subject: [PATCH] kubelet: a fix

Patch-Kind: fix
Upstream-Ref: none
Upstream-Status: not-submitted
---
 README.md | 1 +
 1 file changed, 1 insertion(+)

diff --git a/README.md b/README.md
--- a/README.md
+++ b/README.md
@@ -1 +1,2 @@
 # tiny kubernetes
+fixed
"""
TREE_FILES = {**K8S_LIKE_FILES, "LICENSES/LICENSE": "Apache License 2.0\n"}
COMPONENTS = ("kubectl", "kubelet", "kube-proxy", "kubeadm", "kube-apiserver",
              "kube-controller-manager", "kube-scheduler")


def fake_container_build(staging: Staging, plan: BuildPlan) -> container.Built:
    """Binaries whose bytes depend only on the target: two builds of a plan are identical."""
    rel = [str(t.output_path) for t in plan.targets]
    for name in rel:
        (staging.out / name).parent.mkdir(parents=True, exist_ok=True)
        (staging.out / name).write_text(f"#!/bin/sh\n# {name} {plan.distro_version}\n")
        (staging.out / name).chmod(0o755)
    staging.log.write_text("# the build's log\n")
    return container.Built("1.15.15", rel, [])


def fake_make_images(request: context.FinishRequest, ctx: context.ReleaseContext,
                     engines: object) -> list[dict[str, Any]]:
    """One small archive per shipped image, named and listed as ``images/shipped.py`` does."""
    made = []
    for component in ctx.image_components:
        archive = request.out / "images" / f"{component}.oci.tar"
        archive.parent.mkdir(exist_ok=True)
        archive.write_text(f"{component} {ctx.distro_version}\n")
        made.append(ShippedImage(component, f"tkedistro.local/k8s/{component}:"
                                 f"{ctx.distro_version}", "sha256:" + "1" * 64,
                                 {"linux/amd64": "sha256:" + "2" * 64},
                                 f"images/{component}.oci.tar", archive.stat().st_size,
                                 "3" * 64, "inputs").to_json())
    return made


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distro repo of one release (seven components, one patch, the images of the
    control plane) whose source and container build are faked."""
    root = tmp_path / "distro"
    (root / "releases").mkdir(parents=True)
    (root / PATCH).parent.mkdir(parents=True)
    (root / PATCH).write_text(PATCH_TEXT)
    images = "images: [kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy]\n"
    (root / "releases" / "1.20.yaml").write_text(
        manifest_text(components=COMPONENTS, patches=[PATCH], extra=images))
    up = make_upstream(tmp_path / "up", tags={"v1.20.2": TREE_FILES})
    fake_source(monkeypatch, FakeSource(up.work, up.tags["v1.20.2"]))
    monkeypatch.setattr(container, "build_in_container",
                        lambda backend, plan, ws, tree, staging, final: fake_container_build(
                            staging, plan))
    monkeypatch.setattr(finish_mod, "make_images", fake_make_images)
    monkeypatch.setattr(engines_mod, "docker_engines",
                        lambda: fake_engines(FakeBackend(IMAGES)))
    return root


def cli(root: Path, *args: str) -> None:
    result = CliRunner().invoke(app, ["--root", str(root), *args])
    assert result.exit_code == 0, result.output


def conformance_build(root: Path, tmp_path: Path) -> None:
    """``tkedistro conformance`` up to the suite: the build of its missing tools."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")
    ws = Workspace(root=root, cache=tmp_path / "cache")
    options = conf.ConformanceOptions(kubeconfig=kubeconfig)
    conf.ensure_binaries(ws, manifest_mod.load_release(ws, "1.20"), options,
                         ws.output_dir("1.20") / "bin" / "linux" / "amd64",
                         fake_engines(FakeBackend(IMAGES)))


def test_images_publishes_what_build_publishes(root: Path) -> None:
    cli(root, "build", "1.20")
    files, sums = take_published(root / "_output" / "1.20")
    assert {"SHA256SUMS", "SHA512SUMS", "sbom.spdx.json", "provenance.intoto.json",
            "images/kube-apiserver.oci.tar", "release/kubernetes-src.tar.gz",
            "bin/linux/amd64/kubelet", "build-info.json"} <= set(files)
    cli(root, "images", "1.20")
    assert take_published(root / "_output" / "1.20") == (files, sums)


def test_a_conformance_started_build_publishes_what_build_publishes(
        root: Path, tmp_path: Path) -> None:
    cli(root, "build", "1.20", "--with-conformance-tools")
    files, sums = take_published(root / "_output" / "1.20")
    assert {"bin/linux/amd64/e2e.test", "images/kube-scheduler.oci.tar", "SHA512SUMS",
            "sbom.spdx.json", "provenance.intoto.json"} <= set(files)
    conformance_build(root, tmp_path)
    assert take_published(root / "_output" / "1.20") == (files, sums)


def counting(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[int]:
    calls: list[int] = []
    real: Callable[..., Any] = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_one_build_loads_the_manifest_hashes_each_patch_and_selects_targets_once(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tkedistro.build import plan as plan_mod
    from tkedistro.core import files as files_mod

    loads = counting(monkeypatch, manifest_mod, "load_release")
    parses = counting(monkeypatch, prepared, "parse_patch")
    selects = counting(monkeypatch, targets, "select_targets")
    monkeypatch.setattr(operation, "select_targets", targets.select_targets)
    monkeypatch.setattr(plan_mod, "select_targets", targets.select_targets)
    hashed: list[str] = []
    real_sha256 = files_mod.sha256_file

    def sha256_file(path: Path) -> str:
        hashed.append(path.name)
        return real_sha256(path)

    for module in (files_mod, pipeline, finish_mod, context):
        if hasattr(module, "sha256_file"):
            monkeypatch.setattr(module, "sha256_file", sha256_file)
    cli(root, "build", "1.20")
    assert (len(loads), len(parses), len(selects)) == (1, 1, 1)
    assert Path(PATCH).name not in hashed  # read once, by the prepared source's parse
    out = root / "_output" / "1.20"
    info = output.read_build_info(out) or {}
    assert [p["file"] for p in info["patches"]] == [PATCH]
    assert PATCH in (out / "sbom.spdx.json").read_text()
    assert info["patches"][0]["sha256"] in (out / "provenance.intoto.json").read_text()


def test_the_cli_makes_the_engines_once_and_the_build_uses_them(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FakeBackend(IMAGES)
    made: list[int] = []

    def docker_engines() -> Any:
        made.append(1)
        return fake_engines(backend)

    used: list[object] = []

    def build_in_container(backend: object, plan: BuildPlan, ws: object, tree: Path,
                           staging: Staging, final: Path) -> container.Built:
        used.append(backend)
        return fake_container_build(staging, plan)

    monkeypatch.setattr(engines_mod, "docker_engines", docker_engines)
    monkeypatch.setattr(container, "build_in_container", build_in_container)
    cli(root, "build", "1.20", "--with-conformance-tools")
    assert made == [1] and used == [backend]
