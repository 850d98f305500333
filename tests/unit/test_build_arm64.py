"""linux/arm64 beside linux/amd64: which binaries the smoke check runs natively, under qemu or
not at all (and says so), the conformance tools for the host alone, pause from the tree, and
the emulation check on a fake procfs. No Docker here (tests/integration has the real one)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.helpers.manifests import manifest_text
from tkedistro.build import pause, plan
from tkedistro.build.pipeline import BuildResult
from tkedistro.build.smoke import run_smoke_check
from tkedistro.core.errors import BuildError, SmokeCheckError
from tkedistro.core.workspace import Workspace
from tkedistro.engine import emulation
from tkedistro.engine.protocols import RunResult
from tkedistro.model.manifest import parse_manifest
from tkedistro.setup import doctor

HEAD = "0123456789abcdef0123456789abcdef01234567"
QEMU = (True, "qemu-aarch64 via binfmt_misc (F)")
NO_QEMU = (False, "no qemu-aarch64 binfmt: binfmt_misc is not mounted at /x; fix (as root): ...")
SEVEN = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet",
         "kubectl", "kubeadm")
PAUSE_MAKEFILE = "REGISTRY ?= staging-k8s.gcr.io\nTAG = 3.4\nREV = $(shell git describe)\n"


def make(images: Sequence[str] = (), **overrides: object) -> plan.BuildPlan:
    extra = "images: [" + ", ".join(images) + "]\n" if images else ""
    text = manifest_text(components=SEVEN, extra=extra)
    manifest = parse_manifest(text, Path("releases/1.20.yaml"), "releases/1.20.yaml")
    args: dict[str, object] = {
        "tree_commit": HEAD, "source_date_epoch": 1610544000, "image": "img:1",
        "image_id": "sha256:aa", "host_platform": "linux/amd64",
        "components": ["kubectl", "kubelet", "kube-apiserver"],
    }
    args.update(overrides)
    return plan.plan_build(manifest, **args)  # type: ignore[arg-type]


BOTH = ["linux/amd64", "linux/arm64"]


def test_arm64_binaries_run_under_qemu_and_the_cgo_kubelet_gets_the_arm64_libc() -> None:
    p = make(platforms=BOTH, runnable={"linux/arm64": QEMU})
    arm = [c for c in p.smoke if c.target.platform == "linux/arm64"]
    assert [(c.target.component, c.mode, c.how) for c in arm] == [
        ("kube-apiserver", "emulated", "qemu-aarch64 via binfmt_misc (F)"),
        ("kubelet", "emulated", "qemu-aarch64 via binfmt_misc (F)"),
        ("kubectl", "emulated", "qemu-aarch64 via binfmt_misc (F)")]
    assert arm[1].run_argv == ("env", "QEMU_LD_PREFIX=/usr/aarch64-linux-gnu",
                               "/tkedistro/out/bin/linux/arm64/kubelet", "--version")
    assert arm[2].run_argv == ("/tkedistro/out/bin/linux/arm64/kubectl", "version", "--client")
    assert all(c.mode == "native" and c.env == () for c in p.smoke[:3])


def test_without_emulation_arm64_binaries_are_planned_as_not_run_with_the_reason() -> None:
    p = make(platforms=BOTH, runnable={"linux/arm64": NO_QEMU})
    arm = [c for c in p.smoke if c.target.platform == "linux/arm64"]
    assert {(c.mode, c.how, c.env) for c in arm} == {("not run", NO_QEMU[1], ())}
    assert len(arm) == 3
    # checked and unchecked builds are different outputs: the state is in the fingerprint
    assert p.fingerprint_inputs["smoke"] == {"linux/arm64": "not run"}
    assert p.fingerprint != make(platforms=BOTH, runnable={"linux/arm64": QEMU}).fingerprint


def test_amd64_only_fingerprints_are_those_of_earlier_tkedistro() -> None:
    # computed with tkedistro before arm64 emulation, conformance tools split and pause
    from tests.unit.test_build_plan import make as old_make

    assert old_make().fingerprint == \
        "5efe181469b2c055e592a2b379760461449c226a0b6ad95ea52a58f7557157bc"
    assert old_make(conformance_tools=True).fingerprint == \
        "8c6caa68d96b2b54b4dfae0cf97e443c1cf077e335d62d9461ba7c2d3cc4b8ce"
    assert set(old_make().fingerprint_inputs) == {
        "fingerprint_version", "tree_commit", "image_id", "make_argv", "env", "version_file",
        "components", "platforms"}


def test_conformance_tools_are_made_for_the_host_platform_alone_in_a_second_make() -> None:
    p = make(platforms=BOTH, conformance_tools=True, runnable={"linux/arm64": QEMU})
    assert p.make_argv == ("make", "all", "WHAT=cmd/kube-apiserver cmd/kubelet cmd/kubectl",
                           "KUBE_BUILD_PLATFORMS=linux/amd64 linux/arm64")
    assert p.extra_argv == (("make", "all", "WHAT=test/e2e/e2e.test "
                             "vendor/github.com/onsi/ginkgo/ginkgo",
                             "KUBE_BUILD_PLATFORMS=linux/amd64"),)
    assert [str(t.output_path) for t in p.targets] == [
        "bin/linux/amd64/kube-apiserver", "bin/linux/amd64/kubelet", "bin/linux/amd64/kubectl",
        "bin/linux/amd64/e2e.test", "bin/linux/amd64/ginkgo",
        "bin/linux/arm64/kube-apiserver", "bin/linux/arm64/kubelet", "bin/linux/arm64/kubectl"]
    assert {c.target.platform for c in p.smoke if c.target.component in p.tools} == {
        "linux/amd64"}
    only_arm = make(platforms=["linux/arm64"], conformance_tools=True)
    assert [str(t.output_path) for t in only_arm.targets][-2:] == [
        "bin/linux/amd64/e2e.test", "bin/linux/amd64/ginkgo"]


def test_pause_is_compiled_from_the_tree_per_platform_as_its_makefile_does() -> None:
    p = make(images=["kube-proxy", "pause"], platforms=BOTH, runnable={"linux/arm64": QEMU},
             pause_tag=pause.pause_tag(PAUSE_MAKEFILE))
    assert p.extra_argv == (
        ("mkdir", "-p", "_output/local/bin/linux/amd64"),
        ("gcc", "-Os", "-Wall", "-Werror", "-static", "-DVERSION=v3.4-v1.20.2-tke.1",
         "-o", "_output/local/bin/linux/amd64/pause", "build/pause/linux/pause.c"),
        ("strip", "_output/local/bin/linux/amd64/pause"),
        ("mkdir", "-p", "_output/local/bin/linux/arm64"),
        ("aarch64-linux-gnu-gcc", "-Os", "-Wall", "-Werror", "-static",
         "-DVERSION=v3.4-v1.20.2-tke.1", "-o", "_output/local/bin/linux/arm64/pause",
         "build/pause/linux/pause.c"),
        ("aarch64-linux-gnu-strip", "_output/local/bin/linux/arm64/pause"))
    smoke = {(c.target.platform, c.run_argv) for c in p.smoke if c.target.component == "pause"}
    assert smoke == {("linux/amd64", ("/tkedistro/out/bin/linux/amd64/pause", "-v")),
                     ("linux/arm64", ("/tkedistro/out/bin/linux/arm64/pause", "-v"))}
    assert "bin/linux/arm64/pause" in {str(t.output_path) for t in p.targets}
    assert {"strip", "aarch64-linux-gnu-strip"} <= set(p.commands)
    without = make(images=["kube-proxy"], platforms=BOTH, runnable={"linux/arm64": QEMU})
    assert "extra_argv" not in without.fingerprint_inputs
    assert p.fingerprint != without.fingerprint


def test_pause_without_a_version_in_the_tree_is_a_build_error() -> None:
    with pytest.raises(BuildError) as err:
        pause.pause_tag("all:\n\techo\n")
    assert err.value.message == "build/pause/Makefile has no `TAG = ...` line, so pause has " \
                                "no version"
    with pytest.raises(BuildError):
        make(images=["pause"])


class Recording:
    container_id = "c1"

    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs
        self.ran: list[tuple[str, ...]] = []

    def run(self, argv: Sequence[str], **kwargs: object) -> RunResult:
        self.ran.append(tuple(argv))
        binary = next(a for a in argv if a.startswith("/tkedistro/out/"))
        return RunResult(tuple(argv), 0, self.outputs.get(binary, "Kubernetes v1.20.2-tke.1"))


def test_smoke_check_runs_emulated_binaries_and_skips_those_it_cannot_run() -> None:
    p = make(platforms=BOTH, runnable={"linux/arm64": QEMU})
    session = Recording({})
    results = run_smoke_check(session, p.smoke, "v1.20.2-tke.1")
    assert ("env", "QEMU_LD_PREFIX=/usr/aarch64-linux-gnu",
            "/tkedistro/out/bin/linux/arm64/kubelet", "--version") in session.ran
    assert [r.to_json()["run"] for r in results] == ["native"] * 3 + ["emulated"] * 3
    session.outputs["/tkedistro/out/bin/linux/arm64/kubectl"] = "v0.0.0-master"
    with pytest.raises(SmokeCheckError) as err:
        run_smoke_check(session, p.smoke, "v1.20.2-tke.1")
    assert "kubectl (linux/arm64): reports v0.0.0-master, expected v1.20.2-tke.1" in \
        str(err.value.details)
    unchecked = make(platforms=BOTH, runnable={"linux/arm64": NO_QEMU})
    session = Recording({})
    results = run_smoke_check(session, unchecked.smoke, "v1.20.2-tke.1")
    assert len(session.ran) == 3  # only amd64
    assert results[3].to_json() == {
        "component": "kube-apiserver", "platform": "linux/arm64",
        "command": "/tkedistro/out/bin/linux/arm64/kube-apiserver --version",
        "exit_code": None, "version": None, "run": "not run", "how": NO_QEMU[1]}


def text_of(p: plan.BuildPlan) -> str:
    results = run_smoke_check(Recording({}), p.smoke, "v1.20.2-tke.1")
    result = BuildResult("1.20", "built", Path("/d/_output/1.20"), "v1.20.2-tke.1",
                         p.components, p.platforms, HEAD, "img:1", (), "1.15.15",
                         binaries={str(t.output_path): "ab" * 32 for t in p.targets},
                         smoke=results, seconds=3.0)
    return result.format_text()


def test_text_output_says_qemu_for_emulated_and_plainly_which_were_not_checked() -> None:
    all_seven = list(SEVEN)
    text = text_of(make(platforms=BOTH, components=all_seven, runnable={"linux/arm64": QEMU}))
    assert "  bin/linux/amd64/kubectl  sha256:abababababababab  runs: v1.20.2-tke.1" in text
    assert "  bin/linux/arm64/kubelet  sha256:abababababababab  runs (qemu): v1.20.2-tke.1" \
        in text
    assert "not run" not in text
    text = text_of(make(platforms=BOTH, components=all_seven,
                        runnable={"linux/arm64": NO_QEMU}))
    assert "  bin/linux/arm64/kubelet  sha256:abababababababab  not run" in text
    assert text.splitlines()[-1] == f"linux/arm64: 7 binaries not run ({NO_QEMU[1]}); " \
                                    "they are not checked"


def binfmt(tmp_path: Path, entry: str | None, status: bool = True) -> Path:
    root = tmp_path / "binfmt_misc"
    root.mkdir(parents=True)
    if status:
        (root / "status").write_text("enabled\n")
    if entry is not None:
        (root / "qemu-aarch64").write_text(entry)
    return root


ENTRY = ("{state}\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: {flags}\n"
         "offset 0\nmagic 7f454c460201010000000000000000000200b700\n")


@pytest.fixture
def on_amd64(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulation, "host_platform", lambda: "linux/amd64")


@pytest.mark.usefixtures("on_amd64")
@pytest.mark.parametrize(("entry", "status", "expected"), [
    (ENTRY.format(state="enabled", flags="PF"), True,
     (True, "qemu-aarch64 via binfmt_misc (F)")),
    (ENTRY.format(state="enabled", flags="OCF"), True,
     (True, "qemu-aarch64 via binfmt_misc (F)")),
    (ENTRY.format(state="disabled", flags="PF"), True, (False, "registered but disabled")),
    (ENTRY.format(state="enabled", flags="P"), True,
     (False, "registered without F (flags: P), so its interpreter is not found inside a "
             "chroot or container")),
    (None, True, (False, "it is not registered")),
    (None, False, (False, "binfmt_misc is not mounted at {root}")),
])
def test_can_run_reads_the_qemu_aarch64_binfmt_entry(
        tmp_path: Path, entry: str | None, status: bool, expected: tuple[bool, str]) -> None:
    root = binfmt(tmp_path, entry, status)
    ok, how = emulation.can_run("linux/arm64", root, machine="x86_64")
    assert ok is expected[0]
    if ok:
        assert how == expected[1]
    else:
        assert expected[1].format(root=root) in how
        assert "apt-get install qemu-user-static binfmt-support" in how
        assert "`update-binfmts --enable qemu-aarch64`" in how


@pytest.mark.usefixtures("on_amd64")
def test_the_host_platform_is_native_and_unknown_ones_cannot_run(tmp_path: Path) -> None:
    assert emulation.can_run("linux/amd64", tmp_path / "none", machine="x86_64") == (
        True, "native")
    ok, how = emulation.can_run("linux/s390x", tmp_path / "none", machine="x86_64")
    assert not ok and "linux/s390x binaries cannot run on this amd64 host" in how


@pytest.mark.usefixtures("on_amd64")
def test_doctor_names_missing_emulation_as_bad_only_when_a_release_builds_arm64(
        tmp_path: Path) -> None:
    root = tmp_path / "distro"
    (root / "releases").mkdir(parents=True)
    manifest = root / "releases" / "1.20.yaml"
    manifest.write_text(manifest_text())
    ws = Workspace(root=root, cache=tmp_path / "cache")
    procfs = binfmt(tmp_path, None, status=False)
    check = doctor.check_arm64_emulation(ws, procfs)
    assert check.ok and check.detail.startswith("unavailable, no release builds linux/arm64 (")
    manifest.write_text(manifest_text(platforms=BOTH))
    check = doctor.check_arm64_emulation(ws, procfs)
    assert not check.ok
    assert f"binfmt_misc is not mounted at {procfs}" in check.detail
    assert check.detail.endswith(
        ": the linux/arm64 binaries of 1.20 would not be run, so not checked")
    assert check.fix == "sudo tkedistro host-setup"
    procfs = binfmt(tmp_path / "ok", ENTRY.format(state="enabled", flags="PF"))
    assert doctor.check_arm64_emulation(ws, procfs).detail == "qemu-aarch64 via binfmt_misc (F)"


def test_doctor_names_a_missing_buildah_with_its_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    check = doctor.check_host_tool("buildah")
    assert (check.ok, check.detail) == (False, "buildah not found")
    assert check.fix == "sudo tkedistro host-setup, or apt-get install -y buildah"
