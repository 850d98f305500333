"""The pure build plan (make argv, version file, fingerprint, smoke commands) and the build
command's errors through the CLI, with a fake container backend (no Docker here)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
from typer.testing import CliRunner

from tests.helpers.engines import fake_engines
from tests.helpers.gitrepo import git
from tests.helpers.manifests import manifest_text
from tkedistro.build import container, output, pipeline, plan, publish
from tkedistro.cli.app import app
from tkedistro.core import files
from tkedistro.core.errors import BuilderImageError, ManifestError, UnsafePathError
from tkedistro.core.workspace import Workspace
from tkedistro.engine.protocols import ContainerSpec, ImageInfo, RunResult
from tkedistro.model.manifest import parse_manifest

MANIFEST = manifest_text(components=("kubectl", "kubelet", "kube-apiserver"))
HEAD = "0123456789abcdef0123456789abcdef01234567"


def make(**overrides: object) -> plan.BuildPlan:
    manifest = parse_manifest(MANIFEST, Path("releases/1.20.yaml"), "releases/1.20.yaml")
    args: dict[str, object] = {
        "tree_commit": HEAD, "source_date_epoch": 1610544000, "image": "img:1",
        "image_id": "sha256:aa", "host_platform": "linux/amd64",
    }
    args.update(overrides)
    return plan.plan_build(manifest, **args)  # type: ignore[arg-type]


def test_make_argv_is_a_list_with_what_and_platforms_in_canonical_order() -> None:
    p = make(components=["kubectl", "kube-apiserver"], platforms=["linux/arm64", "linux/amd64"])
    assert p.make_argv == ("make", "all", "WHAT=cmd/kube-apiserver cmd/kubectl",
                           "KUBE_BUILD_PLATFORMS=linux/amd64 linux/arm64")
    assert [str(t.output_path) for t in p.targets] == [
        "bin/linux/amd64/kube-apiserver", "bin/linux/amd64/kubectl",
        "bin/linux/arm64/kube-apiserver", "bin/linux/arm64/kubectl"]
    assert str(p.targets[3].tree_path) == "_output/local/bin/linux/arm64/kubectl"


def test_defaults_come_from_the_manifest() -> None:
    p = make()
    assert p.components == ("kube-apiserver", "kubelet", "kubectl")
    assert p.platforms == ("linux/amd64",)


def test_version_file_stamps_distro_version_and_patched_commit() -> None:
    assert make().version_file == (
        "KUBE_GIT_VERSION=v1.20.2-tke.1\n"
        f"KUBE_GIT_COMMIT={HEAD}\n"
        "KUBE_GIT_TREE_STATE=clean\n"
        "KUBE_GIT_MAJOR=1\n"
        "KUBE_GIT_MINOR=20\n")
    env = make().env
    assert env["KUBE_GIT_VERSION_FILE"] == "/tkedistro/work/kube-git-version"
    assert env["SOURCE_DATE_EPOCH"] == "1610544000"


def test_smoke_commands_run_the_host_platform_and_say_why_others_are_not_run() -> None:
    p = make(components=["kubectl", "kubelet"], platforms=["linux/amd64", "linux/arm64"])
    assert [(c.argv, c.mode) for c in p.smoke] == [
        (("/tkedistro/out/bin/linux/amd64/kubelet", "--version"), "native"),
        (("/tkedistro/out/bin/linux/amd64/kubectl", "version", "--client"), "native"),
        (("/tkedistro/out/bin/linux/arm64/kubelet", "--version"), "not run"),
        (("/tkedistro/out/bin/linux/arm64/kubectl", "version", "--client"), "not run")]
    assert p.smoke[2].how == "linux/arm64 binaries do not run on linux/amd64"
    kubeadm = make(components=["kubeadm"]).smoke[0].argv
    assert kubeadm[1:] == ("version", "-o", "short")


def test_conformance_tools_are_built_by_the_same_make_for_the_host_platform_alone() -> None:
    p = make(components=["kubectl"], conformance_tools=True)
    assert p.make_argv == ("make", "all", "WHAT=cmd/kubectl test/e2e/e2e.test "
                           "vendor/github.com/onsi/ginkgo/ginkgo",
                           "KUBE_BUILD_PLATFORMS=linux/amd64")
    assert p.extra_argv == ()
    assert p.tools == ("e2e.test", "ginkgo")
    assert p.components == ("kubectl",)
    assert [str(t.output_path) for t in p.targets] == [
        "bin/linux/amd64/kubectl", "bin/linux/amd64/e2e.test", "bin/linux/amd64/ginkgo"]
    assert str(p.targets[1].tree_path) == "_output/local/bin/linux/amd64/e2e.test"
    assert p.version_file == make(components=["kubectl"]).version_file  # same stamp


def test_conformance_tools_smoke_check_e2e_version_and_ginkgo_runs() -> None:
    smoke = make(components=["kubectl"], conformance_tools=True).smoke
    assert [(c.argv, c.stamped) for c in smoke] == [
        (("/tkedistro/out/bin/linux/amd64/kubectl", "version", "--client"), True),
        (("/tkedistro/out/bin/linux/amd64/e2e.test", "--version"), True),
        (("/tkedistro/out/bin/linux/amd64/ginkgo", "version"), False)]


def test_conformance_tools_change_the_fingerprint_and_leave_the_old_one_alone() -> None:
    without = make()
    assert "tools" not in without.fingerprint_inputs  # outputs built before stay up to date
    assert make(conformance_tools=True).fingerprint != without.fingerprint
    assert make(conformance_tools=True).fingerprint == make(conformance_tools=True).fingerprint


def test_fingerprint_changes_with_every_input_that_changes_the_output() -> None:
    base = make().fingerprint
    assert make().fingerprint == base
    assert make(cpus=1.0, memory="4g").fingerprint == base  # limits do not change binaries
    for change in ({"tree_commit": "f" * 40}, {"image_id": "sha256:bb"},
                   {"components": ["kubectl"]}, {"platforms": ["linux/arm64"]},
                   {"source_date_epoch": 1}):
        assert make(**change).fingerprint != base, change


def test_unknown_component_and_platform_are_named_with_a_suggestion() -> None:
    with pytest.raises(ManifestError) as err:
        make(components=["kubectx", "kubelet"], platforms=["linux/amd46"])
    assert err.value.problems == [
        "unknown component 'kubectx'; did you mean 'kubectl'? (known: kube-apiserver, "
        "kube-controller-manager, kube-scheduler, kube-proxy, kubelet, kubectl, kubeadm)",
    ]
    with pytest.raises(ManifestError) as err:
        make(platforms=["linux/amd46"])
    assert err.value.problems == [
        "unknown platform 'linux/amd46'; did you mean 'linux/amd64'? "
        "(known: linux/amd64, linux/arm64)"]


@pytest.mark.parametrize(("pinned", "output", "found"), [
    ("1.15.15", "go version go1.15.15 linux/amd64\n", "1.15.15"),
    ("1.15", "go version go1.15.7 linux/amd64\n", "1.15.7"),
])
def test_go_version_accepted(pinned: str, output: str, found: str) -> None:
    assert plan.check_go_version(pinned, output, "img") == found


@pytest.mark.parametrize(("pinned", "output", "shown"), [
    ("1.15.15", "go version go1.19.8 linux/amd64\n", "Go 1.19.8"),
    ("1.15", "go version go1.150.1 linux/amd64\n", "Go 1.150.1"),
    ("1.15.15", "sh: go: not found\n", "Go unknown (sh: go: not found)"),
])
def test_go_version_mismatch_is_refused(pinned: str, output: str, shown: str) -> None:
    with pytest.raises(BuilderImageError) as err:
        plan.check_go_version(pinned, output, "img")
    assert err.value.message == f"builder image img has {shown}, but the manifest pins " \
                                f"go.version {pinned}"
    assert err.value.exit_code == 10


def test_intact_output_needs_same_fingerprint_and_unchanged_files(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "kubectl").write_bytes(b"binary")
    output.write_sha256sums(tmp_path, ["bin/kubectl"])
    output.write_state(tmp_path, "fp1")
    assert output.is_intact(tmp_path, "fp1")
    assert not output.is_intact(tmp_path, "fp2")
    (tmp_path / "bin" / "kubectl").write_bytes(b"changed!")
    assert not output.is_intact(tmp_path, "fp1")


def test_publish_swaps_and_a_failed_staging_leaves_the_old_output(tmp_path: Path) -> None:
    final = tmp_path / "_output" / "1.20"
    with publish.staging_for(final) as staging:
        (staging.out / "a").write_text("one")
        publish.publish(staging.out, final)
    with pytest.raises(RuntimeError), publish.staging_for(final) as staging:
        (staging.out / "a").write_text("two")
        staging.log.write_text("compiler said no\n")
        raise RuntimeError("build broke")
    assert (final / "a").read_text() == "one"
    assert sorted(p.name for p in final.parent.iterdir()) == ["1.20", "1.20.failed.log"]
    with publish.staging_for(final) as staging:
        (staging.out / "a").write_text("three")
        publish.publish(staging.out, final)
    assert sorted(p.name for p in final.parent.iterdir()) == ["1.20"]
    assert (final / "a").read_text() == "three"


def test_staging_left_by_a_killed_build_is_removed_by_the_next_one(tmp_path: Path) -> None:
    final = tmp_path / "_output" / "1.20"
    for leftover in (".1.20.tmp-killed/out/bin", ".1.20.old-4242/bin"):
        (final.parent / leftover).mkdir(parents=True)
    with publish.staging_for(final) as staging:
        (staging.out / "a").write_text("new")
        publish.publish(staging.out, final)
    assert sorted(p.name for p in final.parent.iterdir()) == ["1.20"]


def test_previous_output_that_cannot_be_removed_is_reported_not_fatal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # a stand-in for a mount point under the old output (EBUSY); the docker tier mounts one
    final = tmp_path / "_output" / "1.20"
    with publish.staging_for(final) as staging:
        (staging.out / "a").write_text("old")
        publish.publish(staging.out, final)

    def busy(path: str, *args: object, **kwargs: object) -> None:
        raise OSError(16, "Device or resource busy", path)

    # the file layer removes a tree with shutil.rmtree (through folder descriptors)
    monkeypatch.setattr(files.shutil, "rmtree", busy)
    with publish.staging_for(final) as staging:
        (staging.out / "a").write_text("new")
        publish.publish(staging.out, final)
    monkeypatch.undo()
    assert (final / "a").read_text() == "new"
    err = capsys.readouterr().err
    assert "could not remove" in err and "Device or resource busy" in err


@pytest.mark.parametrize("linked", ["tree", "work", "out", "cache/go"])
def test_a_symlinked_bind_mount_is_refused_before_the_container_starts(
        tmp_path: Path, linked: str) -> None:
    ws = Workspace(root=tmp_path / "distro", cache=tmp_path / "cache")
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("tree", "work", "out", "cache/go"):
        if name == linked:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).symlink_to(outside)
    folders = [tmp_path / name for name in ("tree", "work", "out")]
    with pytest.raises(UnsafePathError, match=f"^{re.escape(str(tmp_path / linked))} is a "):
        container.container_spec(make(), ws, *folders)
    assert list(outside.iterdir()) == []


# --- the CLI with a fake backend -------------------------------------------------------


@dataclass
class FakeSession:
    go: str
    ran: list[Sequence[str]] = field(default_factory=list)

    @property
    def container_id(self) -> str:
        return "fake"

    def run(self, argv: Sequence[str], *, log: Path | None = None,
            on_line: Callable[[str], None] | None = None) -> RunResult:
        self.ran.append(argv)
        return RunResult(tuple(argv), 0, self.go if argv[0] == "go" else "")


@dataclass
class FakeBackend:
    images: dict[str, str]
    go: str = "go version go1.15.15 linux/amd64\n"
    name: str = "fake"
    session_obj: FakeSession | None = None

    def check_available(self) -> None:
        pass

    def image_info(self, image: str) -> ImageInfo | None:
        return ImageInfo(image, self.images[image]) if image in self.images else None

    @contextmanager
    def session(self, spec: ContainerSpec) -> Iterator[FakeSession]:
        self.session_obj = FakeSession(self.go)
        yield self.session_obj


@dataclass(frozen=True)
class FakeSource:
    path: Path
    head_commit: str
    upstream_url: str = "https://example.invalid/k8s.git"
    tag: str = "v1.20.2"
    base_commit: str = HEAD


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "distro"
    (root / "releases").mkdir(parents=True)
    (root / "releases" / "1.20.yaml").write_text(MANIFEST)
    tree = tmp_path / "tree"
    tree.mkdir()
    git(tree, "init", "-q")
    git(tree, "commit", "-q", "--allow-empty", "-m", "base")
    fake_source(monkeypatch, FakeSource(tree, git(tree, "rev-parse", "HEAD")))
    return root


def fake_source(monkeypatch: pytest.MonkeyPatch, source: FakeSource) -> None:
    """``tkedistro source`` answers ``source`` (the patches are still read and hashed)."""
    from tkedistro.source import prepare

    monkeypatch.setattr(prepare, "prepare_source",
                        lambda ws, release, *, upstream=None, force=False: source)


def invoke(root: Path, backend: FakeBackend, *args: str, monkeypatch: pytest.MonkeyPatch
           ) -> tuple[int, str]:
    from tkedistro.engine import engines

    monkeypatch.setattr(engines, "docker_engines", lambda: fake_engines(backend))
    result = CliRunner().invoke(app, ["--root", str(root), "build", "1.20", *args])
    return result.exit_code, result.output


def test_cli_unknown_component_exits_3_before_any_work(repo: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FakeBackend({})
    code, out = invoke(repo, backend, "-c", "kubectx", monkeypatch=monkeypatch)
    assert code == 3
    assert "error: unknown component 'kubectx'; did you mean 'kubectl'?" in out
    assert "hint: pass --component once per component" in out


def test_cli_build_while_conformance_runs_from_the_output_is_refused_13(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from filelock import FileLock

    backend = FakeBackend({"tkedistro/builder:go1.15-bullseye": "sha256:aa"})
    lock = repo / "_output" / ".1.20.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock)):
        code, out = invoke(repo, backend, monkeypatch=monkeypatch)
    assert code == 13
    assert f"error: another tkedistro run is using _output/1.20 (lock {lock}); " \
           "cannot build 1.20 now" in out
    assert not (repo / "_output" / "1.20").exists()


def test_cli_unknown_platform(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = invoke(repo, FakeBackend({}), "-p", "windows/amd64", monkeypatch=monkeypatch)
    assert code == 3
    assert "unknown platform 'windows/amd64'" in out


def test_cli_missing_image_names_the_command(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = invoke(repo, FakeBackend({}), monkeypatch=monkeypatch)
    assert code == 10
    assert "error: builder image tkedistro/builder:go1.15-bullseye is not in the fake engine" \
        in out
    assert "hint: make it offline with `sudo tkedistro builder-image 1.20 --image " \
           "tkedistro/builder:go1.15-bullseye`" in out


def test_cli_go_mismatch_exits_10_without_building(repo: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FakeBackend({"new:go": "sha256:bb"}, go="go version go1.19.8 linux/amd64\n")
    code, out = invoke(repo, backend, "--builder-image", "new:go", monkeypatch=monkeypatch)
    assert code == 10
    assert "error: builder image new:go has Go 1.19.8, but the manifest pins go.version " \
           "1.15.15" in out
    assert "Go >= 1.18 compiles, but the binaries crash at run time" in out
    assert backend.session_obj is not None
    assert [a[0] for a in backend.session_obj.ran] == ["go"]  # make never ran
    assert not (repo / "_output" / "1.20").exists()




def test_ctrl_c_during_the_build_exits_130_and_leaves_no_staging(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Interrupting(FakeSession):
        def run(self, argv: Sequence[str], **kwargs: object) -> RunResult:
            if argv[0] == "make":
                raise KeyboardInterrupt
            return super().run(argv)

    closed: list[bool] = []

    class Backend(FakeBackend):
        @contextmanager
        def session(self, spec: ContainerSpec) -> Iterator[FakeSession]:
            try:
                yield Interrupting(self.go)
            finally:
                closed.append(True)

    backend = Backend({"tkedistro/builder:go1.15-bullseye": "sha256:aa"})
    code, out = invoke(repo, backend, monkeypatch=monkeypatch)
    assert code == 130
    assert "error: interrupted" in out
    assert closed == [True]  # the container session was closed (container removed)
    # no staging folder, no half-written 1.20; the log of the interrupted build is kept
    assert sorted(p.name for p in (repo / "_output").iterdir()) == [".1.20.lock",
                                                                    "1.20.failed.log"]


def test_smoke_check_accepts_ginkgo_own_version_but_not_an_unstamped_e2e_test() -> None:
    from tkedistro.build.smoke import run_smoke_check
    from tkedistro.core.errors import SmokeCheckError

    outputs = {"e2e.test": "v1.20.2-tke.1\n", "ginkgo": "Ginkgo Version 1.11.0\n"}

    class Session(FakeSession):
        def run(self, argv: Sequence[str], **kwargs: object) -> RunResult:
            return RunResult(tuple(argv), 0, outputs[PurePosixPath(argv[0]).name])

    smoke = make(components=["kubectl"], conformance_tools=True).smoke[1:]
    results = run_smoke_check(Session(""), smoke, "v1.20.2-tke.1")
    assert [(r.component, r.version) for r in results] == [("e2e.test", "v1.20.2-tke.1"),
                                                           ("ginkgo", None)]
    outputs["e2e.test"] = "v0.0.0-master\n"
    with pytest.raises(SmokeCheckError) as err:
        run_smoke_check(Session(""), smoke, "v1.20.2-tke.1")
    assert err.value.message == "smoke check failed: 1 of 2 binaries"
    assert "e2e.test (linux/amd64): reports v0.0.0-master, expected v1.20.2-tke.1" \
        in str(err.value.details)


def test_conformance_without_its_tools_and_no_build_names_the_build_command(
        repo: Path, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("")
    result = CliRunner().invoke(app, ["--root", str(repo), "conformance", "1.20",
                                      "--kubeconfig", str(kubeconfig), "--no-build"])
    assert result.exit_code == 16
    assert "error: not built in _output/1.20/bin/linux/amd64: e2e.test, ginkgo, kubectl" \
        in result.output
    assert "hint: build them from the same tree first: " \
           "tkedistro build 1.20 --with-conformance-tools" in result.output


def test_conformance_builds_its_missing_tools_through_the_build_pipeline(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tkedistro.release import operation

    asked: list[pipeline.BuildOptions] = []

    def build_release(ws: object, manifest: object, options: pipeline.BuildOptions,
                      engines: object) -> None:
        asked.append(options)
        raise BuilderImageError("stop here")

    monkeypatch.setattr(operation, "build_release", build_release)
    monkeypatch.delenv("TKEDISTRO_UPSTREAM", raising=False)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("")
    result = CliRunner().invoke(app, ["--root", str(repo), "conformance", "1.20",
                                      "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 10, result.output
    assert "running tkedistro build 1.20 --with-conformance-tools" in result.output
    assert asked == [pipeline.BuildOptions(conformance_tools=True)]
