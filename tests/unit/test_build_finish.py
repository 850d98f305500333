"""The release operation's artifacts step (``release/operation.py``): the artifacts are made in
the staged output before it is published, an unchanged release rewrites nothing, and when only the
artifacts' inputs change (``--no-images`` then ``images``) the binaries are kept, not rebuilt.
The container build is faked here (a counter in each binary); the real artifacts are tested in
the docker and real_k8s tiers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.engines import fake_engines
from tests.helpers.gitrepo import git
from tests.helpers.manifests import manifest_text
from tests.unit.test_build_plan import FakeBackend, FakeSource, fake_source
from tkedistro.artifacts.context import Finished, FinishRequest
from tkedistro.build import container, output, pipeline
from tkedistro.build.plan import BuildPlan
from tkedistro.build.publish import Staging, failed_log_path
from tkedistro.core.errors import BuildError
from tkedistro.core.files import json_digest, sha256_file
from tkedistro.core.workspace import Workspace
from tkedistro.model.manifest import Manifest, load_release
from tkedistro.release import operation

IMAGES = {"tkedistro/builder:go1.15-bullseye": "sha256:aa"}


@dataclass
class FakeFinisher:
    """Writes ``extra/made-by`` naming its inputs and the checksums of everything."""

    label: str = "one"
    fail: bool = False
    calls: list[FinishRequest] = field(default_factory=list)

    def inputs(self, manifest: Manifest) -> Mapping[str, object]:
        return {"label": self.label}

    def digest(self, plan: BuildPlan, manifest: Manifest) -> str:
        return json_digest({"binaries": plan.fingerprint, **self.inputs(manifest)})

    def finish(self, request: FinishRequest) -> Finished:
        self.calls.append(request)
        if self.fail:
            raise BuildError("the finisher failed")
        extra = request.out / "extra" / "made-by"
        extra.parent.mkdir()
        extra.write_text(self.label + "\n")
        sums = {rel: sha256_file(request.out / rel)
                for rel in [*request.binaries, "extra/made-by"]}
        output.write_sha256sums(request.out, list(sums))
        return Finished(sums, {"label": self.label})


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    root = tmp_path / "distro"
    (root / "releases").mkdir(parents=True)
    (root / "releases" / "1.20.yaml").write_text(manifest_text(components=("kubectl",)))
    tree = tmp_path / "tree"
    tree.mkdir()
    git(tree, "init", "-q")
    git(tree, "commit", "-q", "--allow-empty", "-m", "base")
    fake_source(monkeypatch, FakeSource(tree, git(tree, "rev-parse", "HEAD")))

    def build_in_container(backend: object, plan: BuildPlan, ws: Workspace, tree: Path,
                           staging: Staging, final: Path) -> container.Built:
        BUILDS.append(1)
        rel = [str(t.output_path) for t in plan.targets]
        for name in rel:
            (staging.out / name).parent.mkdir(parents=True, exist_ok=True)
            (staging.out / name).write_text(f"#!/bin/sh\n# build {len(BUILDS)}\n")
        staging.log.write_text("# the build's log\n")
        return container.Built("1.15.15", rel, [])

    BUILDS.clear()
    monkeypatch.setattr(container, "build_in_container", build_in_container)
    return Workspace(root=root, cache=tmp_path / "cache")


BUILDS: list[int] = []


def build(ws: Workspace, finisher: FakeFinisher,
          options: pipeline.BuildOptions | None = None) -> pipeline.BuildResult:
    """The release operation, finished by ``finisher`` instead of ``ReleaseFinisher``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(operation, "ReleaseFinisher",
                      lambda engines, images=True, signing=None: finisher)
        return operation.build_release(ws, load_release(ws, "1.20"),
                                       options or pipeline.BuildOptions(),
                                       fake_engines(FakeBackend(IMAGES)))


def test_the_artifacts_are_made_before_publishing_and_listed_in_the_checksums(
        ws: Workspace) -> None:
    finisher = FakeFinisher()
    result = build(ws, finisher)
    out = ws.output_dir("1.20")
    assert result.status == "built" and len(finisher.calls) == 1
    assert finisher.calls[0].out != out  # the staged output, not the published one
    assert (out / "extra" / "made-by").read_text() == "one\n"
    sums = output.read_sha256sums(out / "SHA256SUMS")
    assert sorted(sums) == ["bin/linux/amd64/kubectl", "extra/made-by"]
    info = json.loads((out / "build-info.json").read_text())
    assert info["artifacts"] == {"label": "one"}
    assert list(info["binaries"]) == ["bin/linux/amd64/kubectl"]


def test_an_unchanged_release_is_up_to_date_and_the_finisher_is_not_called(
        ws: Workspace) -> None:
    build(ws, FakeFinisher())
    again = FakeFinisher()
    result = build(ws, again)
    assert result.status == "up_to_date"
    assert again.calls == [] and len(BUILDS) == 1
    assert result.artifacts == {"label": "one"}


def test_new_artifact_inputs_remake_only_the_artifacts_on_the_same_binaries(
        ws: Workspace) -> None:
    build(ws, FakeFinisher("without images"))
    out = ws.output_dir("1.20")
    kubectl = out / "bin" / "linux" / "amd64" / "kubectl"
    inode = kubectl.stat().st_ino
    finisher = FakeFinisher("with images")
    result = build(ws, finisher)
    assert result.status == "finished" and len(BUILDS) == 1
    assert finisher.calls[0].previous == out
    assert (out / "extra" / "made-by").read_text() == "with images\n"
    assert kubectl.read_text() == "#!/bin/sh\n# build 1\n"
    assert kubectl.stat().st_ino == inode  # a hard link of the published binary, not a copy
    assert (out / "build.log").read_text().startswith("# the build's log\n")
    assert "artifacts remade" in result.format_text() or "remade the artifacts" in \
        result.format_text()
    assert build(ws, FakeFinisher("with images")).status == "up_to_date"


def test_a_failing_finisher_leaves_the_published_output_untouched(ws: Workspace) -> None:
    build(ws, FakeFinisher("one"))
    out = ws.output_dir("1.20")
    before = (out / "SHA256SUMS").read_text()
    with pytest.raises(BuildError, match="the finisher failed"):
        build(ws, FakeFinisher("two", fail=True), pipeline.BuildOptions(force=True))
    assert (out / "SHA256SUMS").read_text() == before
    assert (out / "extra" / "made-by").read_text() == "one\n"
    assert failed_log_path(out).is_file()
    assert [p.name for p in out.parent.iterdir() if ".tmp-" in p.name] == []
