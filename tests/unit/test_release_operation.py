"""The one release-build operation (``release/operation.py``): ``build``, ``images`` and the
build ``conformance`` starts for its missing tools publish the same ``_output/<release>``
(the same files, the same SHA256SUMS), and one build loads the manifest, hashes each patch and
selects its targets once.

The container build is faked (each binary's bytes depend only on what it is) and so are the
component images (one small archive per image); the tarballs, checksums, SBOM and provenance
are the real ones, made from a tiny git tree.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.helpers.engines import fake_engines
from tests.helpers.gitrepo import K8S_LIKE_FILES, make_upstream
from tests.helpers.manifests import manifest_text
from tests.helpers.published import published, take_published
from tests.unit.test_build_plan import FakeBackend, FakeSession, FakeSource, fake_source
from tkedistro.artifacts import context
from tkedistro.artifacts import finish as finish_mod
from tkedistro.build import container, output, pipeline, targets
from tkedistro.build.plan import BuildPlan
from tkedistro.build.publish import Staging
from tkedistro.cli.app import app
from tkedistro.conformance import pipeline as conf
from tkedistro.core import files
from tkedistro.core.workspace import Workspace
from tkedistro.engine import engines as engines_mod
from tkedistro.engine.protocols import ContainerSpec, RunResult
from tkedistro.images.ocilayout import pack_layout
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
        index, manifest = tiny_oci_archive(archive, f"{component} {ctx.distro_version}")
        made.append(ShippedImage(component, f"tkedistro.local/k8s/{component}:"
                                 f"{ctx.distro_version}", index, {"linux/amd64": manifest},
                                 f"images/{component}.oci.tar", archive.stat().st_size,
                                 "3" * 64, "inputs").to_json())
    return made


def tiny_oci_archive(archive: Path, text: str) -> tuple[str, str]:
    """A real OCI archive of one linux/amd64 image without layers (its config holds
    ``text``); returns the digests of its index and manifest."""
    layout = archive.with_suffix(".layout")

    def blob(data: dict[str, Any], media: str) -> dict[str, Any]:
        raw = json.dumps(data).encode()
        digest = hashlib.sha256(raw).hexdigest()
        (layout / "blobs/sha256").mkdir(parents=True, exist_ok=True)
        (layout / "blobs/sha256" / digest).write_bytes(raw)
        return {"mediaType": media, "digest": "sha256:" + digest, "size": len(raw)}

    config = blob({"architecture": "amd64", "os": "linux", "comment": text},
                  "application/vnd.oci.image.config.v1+json")
    manifest = blob({"schemaVersion": 2, "config": config, "layers": []},
                    "application/vnd.oci.image.manifest.v1+json")
    index = blob({"schemaVersion": 2, "manifests": [
        {**manifest, "platform": {"os": "linux", "architecture": "amd64"}}]},
        "application/vnd.oci.image.index.v1+json")
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [index]}))
    pack_layout(layout, archive, 0)
    shutil.rmtree(layout)
    return index["digest"], manifest["digest"]


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
    assert {"SHA256SUMS", "SHA512SUMS", "sbom.spdx.json", "sbom.cdx.json",
            "provenance.intoto.json", "images/kube-apiserver.oci.tar",
            "release/kubernetes-src.tar.gz", "bin/linux/amd64/kubelet",
            "build-info.json"} <= set(files)
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


# --- the output is the tool's own: a symlink in it is refused, an interrupt leaves no half ---

REAL_BUILD_IN_CONTAINER = container.build_in_container


def outside_folder(tmp_path: Path) -> Path:
    """A folder outside the distro repo a planted symlink points at."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep\n")
    return outside


def refused(root: Path, link: Path, *args: str) -> str:
    """``tkedistro build 1.20 ARGS`` exits 3 naming ``link``; the output it printed."""
    result = CliRunner().invoke(app, ["--root", str(root), "build", "1.20", *args])
    assert result.exit_code == 3, result.output
    assert f"error: {link} is a symlink; tkedistro does not follow symlinks" in result.output
    assert f"hint: remove the symlink ({link}) and re-run" in result.output
    return result.output


@pytest.mark.parametrize(("planted", "args"), [
    ("_output", ()), ("_output/1.20", ()), ("_output/1.20.verify", ("--verify-reproducible",)),
    ("_output/1.20.failed.log", ()), ("_output/.1.20.tmp-planted", ())])
def test_a_symlinked_output_folder_is_refused_and_nothing_outside_changes(
        root: Path, tmp_path: Path, planted: str, args: tuple[str, ...]) -> None:
    outside = outside_folder(tmp_path)
    link = root / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside if planted != "_output/1.20.failed.log" else outside / "precious")
    refused(root, link, *args)
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]
    assert (outside / "precious").read_text() == "keep\n"


def test_a_symlink_planted_in_the_staged_output_is_refused_and_the_old_output_kept(
        root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli(root, "build", "1.20")
    final = root / "_output" / "1.20"
    before = published(final)
    outside = outside_folder(tmp_path)
    planted: list[Path] = []

    def plants_a_link(backend: object, plan: BuildPlan, ws: object, tree: Path,
                      staging: Staging, final: Path) -> container.Built:
        built = fake_container_build(staging, plan)
        (staging.out / "release").symlink_to(outside)  # where the tarballs go
        planted.append(staging.out / "release")
        return built

    monkeypatch.setattr(container, "build_in_container", plants_a_link)
    result = CliRunner().invoke(app, ["--root", str(root), "build", "1.20", "--force"])
    assert result.exit_code == 3, result.output
    assert f"error: {planted[0]} is a symlink" in result.output
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]
    assert published(final) == before
    assert sorted(p.name for p in final.parent.iterdir()) == [".1.20.lock", "1.20",
                                                              "1.20.failed.log"]


def test_a_built_binary_that_is_a_symlink_is_refused_not_copied_into_the_output(
        root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real container step with a fake engine whose ``make`` leaves ``kubectl`` in the
    tree as a symlink to a file outside: nothing of it reaches ``_output``."""
    outside = outside_folder(tmp_path)

    class Make(FakeSession):
        tree = Path()

        def run(self, argv: Sequence[str], **kwargs: Any) -> RunResult:
            if argv[0] == "make":
                bins = self.tree / "_output" / "local" / "bin" / "linux" / "amd64"
                bins.mkdir(parents=True, exist_ok=True)
                for component in COMPONENTS:
                    (bins / component).write_text(f"#!/bin/sh\n# {component}\n")
                (bins / "kubectl").unlink()
                (bins / "kubectl").symlink_to(outside / "precious")
            return super().run(argv)

    class Backend(FakeBackend):
        @contextmanager
        def session(self, spec: ContainerSpec) -> Iterator[FakeSession]:
            Make.tree = spec.mounts[0].source
            yield Make(self.go)

    monkeypatch.setattr(container, "build_in_container", REAL_BUILD_IN_CONTAINER)
    monkeypatch.setattr(engines_mod, "docker_engines", lambda: fake_engines(Backend(IMAGES)))
    result = CliRunner().invoke(app, ["--root", str(root), "build", "1.20"])
    assert result.exit_code == 3, result.output
    link = Make.tree / "_output" / "local" / "bin" / "linux" / "amd64" / "kubectl"
    assert f"error: {link} is a symlink" in result.output
    assert sorted(p.name for p in (root / "_output").iterdir()) == [".1.20.lock",
                                                                    "1.20.failed.log"]
    assert (outside / "precious").read_text() == "keep\n"


def interrupting_at(n: int) -> Callable[[str, Path], None]:
    """A ``files.watch`` watcher that is Ctrl-C after the file layer's ``n``-th operation."""
    done: list[tuple[str, Path]] = []

    def watcher(op: str, path: Path) -> None:
        done.append((op, path))
        if len(done) == n:
            raise KeyboardInterrupt

    return watcher


def test_ctrl_c_at_any_step_of_the_publish_leaves_the_old_or_the_new_output_whole(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupted after each thing the file layer does from the first write of the staged
    output's build-info.json on: exit 130, ``_output/1.20`` is the old output or the complete
    new one (after the swap), and no staging or old-output folder is left."""
    output_dir = root / "_output"
    final = output_dir / "1.20"
    cli(root, "build", "1.20")
    old = published(final)

    def first_build(backend: object, plan: BuildPlan, ws: object, tree: Path,
                    staging: Staging, final: Path) -> container.Built:
        return fake_container_build(staging, plan)

    def second_build(backend: object, plan: BuildPlan, ws: object, tree: Path,
                     staging: Staging, final: Path) -> container.Built:
        built = fake_container_build(staging, plan)
        with (staging.out / built.binaries[0]).open("a") as binary:
            binary.write("# the second build\n")
        return built

    def build(watcher: Callable[[str, Path], None], content: Callable[..., container.Built]
              ) -> Any:
        monkeypatch.setattr(container, "build_in_container", content)
        with files.watch(watcher):
            return CliRunner().invoke(app, ["--root", str(root), "build", "1.20", "--force"])

    seen: list[tuple[str, Path]] = []
    assert build(lambda op, path: seen.append((op, path)), second_build).exit_code == 0
    new = published(final)
    assert new != old
    first = next(i for i, (op, path) in enumerate(seen)
                 if op == "write" and path.name == output.INFO_NAME)
    swap = next(i for i, (op, path) in enumerate(seen) if op == "rename" and path == final)
    for n in range(first + 1, len(seen) + 1):
        assert build(lambda op, path: None, first_build).exit_code == 0  # the old output back
        assert published(final) == old
        result = build(interrupting_at(n), second_build)
        assert result.exit_code == 130, (n, seen[n - 1], result.output)
        assert "error: interrupted" in result.output
        assert published(final) == (old if n <= swap else new), (n, seen[n - 1])
        left = sorted(p.name for p in output_dir.iterdir())
        assert left == [".1.20.lock", "1.20", *(["1.20.failed.log"] if n <= swap else [])], \
            (n, seen[n - 1])
