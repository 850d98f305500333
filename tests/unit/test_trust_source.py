"""Issue 17, items 2-4: `source` and `build` trust what is the series' or the build's and
still protect the maintainer's work: a commit exported by hand is the series; files a failed
build left are removed (a killed build's are saved first); the builder image is checked for
every command the build runs; upstream's commits between two tags are not local work."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.engines import use_engines
from tests.helpers.gitrepo import git
from tests.helpers.series import TRAILERS, Distro, make_distro
from tkedistro.build import plan
from tkedistro.cli.app import app
from tkedistro.engine.protocols import ContainerSpec, ImageInfo, RunResult
from tkedistro.setup import doctor

IMAGE = "tkedistro/builder:go1.15-bullseye"
LEFTOVER = "test/e2e/generated/bindata.go.tmp"
HAND_FIX = "patches/1.20/0006-kubelet-fix-by-hand.patch"


def cli(d: Distro, *args: str) -> Result:
    return CliRunner().invoke(app, ["--root", str(d.root), *args])


def errors(result: Result) -> list[str]:
    """stderr lines without timestamps and progress lines."""
    lines = [re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in result.stderr.splitlines()]
    return [line for line in lines if not line.startswith(("[", "fetching "))]


def backups(d: Distro) -> list[str]:
    return git(d.src, "for-each-ref", "--format=%(refname)", "refs/tkedistro/backup").split()


@pytest.fixture
def distro(tmp_path: Path) -> Distro:
    return make_distro(tmp_path)


def commit_fix(d: Distro, subject: str = "kubelet: fix by hand") -> str:
    (d.src / "pkg" / "kubelet" / "fix.go").write_text("package kubelet\n\nconst Fixed = true\n")
    git(d.src, "add", "-A")
    git(d.src, "commit", "-q", "-m", f"{subject}\n\nFound in review.\n\n{TRAILERS}")
    return git(d.src, "rev-parse", "HEAD")


# --- item 2: fix by hand, export, source / build --------------------------------------------


def test_a_commit_exported_by_hand_is_the_series_for_source(distro: Distro) -> None:
    commit_fix(distro)
    exported = cli(distro, "patches", "export", "1.20")
    assert exported.exit_code == 0, exported.output
    assert f"added      {HAND_FIX}  kubelet: fix by hand" in exported.stdout
    result = cli(distro, "source", "1.20")
    assert result.exit_code == 0, result.output
    assert f"  6/6  applied    {HAND_FIX}  kubelet: fix by hand" in result.stdout
    assert "work in progress saved" not in result.stdout
    assert backups(distro) == []  # nothing needed saving: the commit is in the patch file
    assert git(distro.src, "log", "-1", "--format=%s %ce") == \
        "kubelet: fix by hand tkedistro@invalid"  # re-made from the file by the tool
    assert cli(distro, "source", "1.20").stdout.startswith("_src/1.20: up to date")


def test_a_commit_exported_by_hand_is_the_series_for_build(distro: Distro,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    commit_fix(distro)
    assert cli(distro, "patches", "export", "1.20").exit_code == 0
    use_engines(monkeypatch, containers=FakeBackend({}))
    result = cli(distro, "build", "1.20")
    # the source step passed without --force; the (fake) engine has no builder image
    assert result.exit_code == 10, result.output
    assert errors(result)[0] == f"error: builder image {IMAGE} is not in the fake engine"


def test_a_commit_changed_after_the_export_is_still_protected(distro: Distro) -> None:
    commit_fix(distro)
    assert cli(distro, "patches", "export", "1.20").exit_code == 0
    git(distro.src, "commit", "-q", "--amend", "-m", f"kubelet: fix by hand, v2\n\n{TRAILERS}")
    amended = git(distro.src, "rev-parse", "HEAD")
    result = cli(distro, "source", "1.20")
    assert result.exit_code == 8
    assert errors(result)[0] == (
        f"error: _src/1.20 holds work in progress: 1 commit(s) not made by tkedistro: "
        f"{amended[:12]} kubelet: fix by hand, v2; refusing to touch it")
    assert "run `tkedistro patches export 1.20`" in result.stderr
    assert git(distro.src, "rev-parse", "HEAD") == amended


# --- item 4: the old pin restored after a finished rebase ------------------------------------


def restore(d: Distro, saved: Path) -> None:
    shutil.rmtree(d.patch_dir)
    shutil.copytree(saved / "patches", d.patch_dir)
    shutil.copy2(saved / "1.20.yaml", d.manifest)


def save(d: Distro, where: Path) -> Path:
    shutil.copytree(d.patch_dir, where / "patches")
    shutil.copy2(d.manifest, where / "1.20.yaml")
    return where


def test_old_pin_restored_after_a_rebase_is_prepared_without_force(distro: Distro,
                                                                   tmp_path: Path) -> None:
    saved = save(distro, tmp_path / "saved")
    old_head = git(distro.src, "rev-parse", "HEAD")
    rebased = cli(distro, "rebase", "1.20", "--onto", "v1.20.1")
    assert rebased.exit_code == 0, rebased.output
    restore(distro, saved)  # e.g. `git checkout releases/ patches/` in the distro repo
    result = cli(distro, "source", "1.20")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("_src/1.20: v1.20.0 (")
    assert git(distro.src, "rev-parse", "HEAD") == old_head  # the old pin + the old series
    assert git(distro.src, "status", "--porcelain") == ""
    assert backups(distro) == []


def test_local_commit_on_a_rebased_tree_is_still_refused_and_only_it(distro: Distro,
                                                                    tmp_path: Path) -> None:
    saved = save(distro, tmp_path / "saved")
    assert cli(distro, "rebase", "1.20", "--onto", "v1.20.1").exit_code == 0
    (distro.src / "notes.go").write_text("package main\n")
    git(distro.src, "add", "-A")
    git(distro.src, "commit", "-q", "-m", "my local work")
    mine = git(distro.src, "rev-parse", "HEAD")
    restore(distro, saved)
    result = cli(distro, "source", "1.20")
    assert result.exit_code == 8
    # upstream's two commits between v1.20.0 and v1.20.1 are not named, only the local one
    assert errors(result)[0] == (
        f"error: _src/1.20 holds work in progress: 1 commit(s) not made by tkedistro: "
        f"{mine[:12]} my local work; refusing to touch it")
    assert git(distro.src, "rev-parse", "HEAD") == mine


# --- item 3: what a build leaves in the tree; the builder's commands -------------------------


@dataclass
class FakeSession:
    tree: Path
    go: str = "go version go1.15.15 linux/amd64\n"
    missing: str = ""  # what the command check prints
    make_exit: int = 2
    ran: list[Sequence[str]] = field(default_factory=list)

    @property
    def container_id(self) -> str:
        return "fake"

    def run(self, argv: Sequence[str], *, log: Path | None = None,
            on_line: Callable[[str], None] | None = None) -> RunResult:
        self.ran.append(argv)
        if argv[0] == "make":  # as hack/generate-bindata.sh does when gofmt is missing
            (self.tree / LEFTOVER).parent.mkdir(parents=True, exist_ok=True)
            (self.tree / LEFTOVER).write_text("package generated\n")
            built = self.tree / "_output" / "local" / "bin" / "linux" / "amd64" / "kubectl"
            built.parent.mkdir(parents=True, exist_ok=True)
            built.write_text("binary")  # ignored (_output/): the build's product, kept
            return RunResult(tuple(argv), self.make_exit, "gofmt: command not found\n")
        output = self.go if argv[0] == "go" else self.missing if argv[0] == "sh" else ""
        return RunResult(tuple(argv), 0, output)


@dataclass
class FakeBackend:
    images: dict[str, str]
    missing: str = ""
    name: str = "fake"
    sessions: list[FakeSession] = field(default_factory=list)

    def check_available(self) -> None:
        pass

    def image_info(self, image: str) -> ImageInfo | None:
        return ImageInfo(image, self.images[image]) if image in self.images else None

    @contextmanager
    def session(self, spec: ContainerSpec) -> Iterator[FakeSession]:
        tree = spec.mounts[0].source if spec.mounts else Path("/nonexistent")
        self.sessions.append(FakeSession(tree, missing=self.missing))
        yield self.sessions[-1]


def build(d: Distro, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> Result:
    use_engines(monkeypatch, containers=backend)
    return cli(d, "build", "1.20")


def test_files_a_failed_build_wrote_are_removed_and_the_next_build_runs(
        distro: Distro, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FakeBackend({IMAGE: "sha256:aa"})
    first = build(distro, backend, monkeypatch)
    assert first.exit_code == 11, first.output
    assert f"removed 1 file(s) ({LEFTOVER}) the build wrote into _src/1.20 " \
           "(not tracked, not ignored; saved to refs/tkedistro/backup/" in first.stderr
    assert not (distro.src / LEFTOVER).exists()
    saved = first.stderr.split("saved to ", 1)[1].split(")", 1)[0]
    assert git(distro.src, "show", f"{saved}:{LEFTOVER}") != ""  # nothing is lost
    assert (distro.src / "_output/local/bin/linux/amd64/kubectl").read_text() == "binary"
    assert git(distro.src, "status", "--porcelain") == ""
    assert not (distro.root / "_src" / ".1.20.tkedistro" / "build-run.json").exists()
    second = build(distro, backend, monkeypatch)
    assert second.exit_code == 11, second.output  # it built again: no "work in progress"
    assert "holds work in progress" not in second.stderr
    assert [a[0] for a in backend.sessions[1].ran] == ["go", "sh", "make"]


def test_files_of_a_killed_build_are_saved_then_removed_and_older_files_kept(
        distro: Distro) -> None:
    (distro.src / "notes.txt").write_text("mine, there before the build\n")
    record = distro.root / "_src" / ".1.20.tkedistro" / "build-run.json"
    record.write_text(json.dumps({"version": 1, "started_ns": time.time_ns() - 10**9,
                                  "before": ["notes.txt"]}))
    (distro.src / LEFTOVER).parent.mkdir(parents=True, exist_ok=True)
    (distro.src / LEFTOVER).write_text("package generated\n")  # the killed build's
    result = cli(distro, "source", "1.20")
    ref = backups(distro)
    assert len(ref) == 1
    assert errors(result)[0] == (f"warning: _src/1.20: a build was interrupted; removed 1 "
                                 f"file(s) ({LEFTOVER}) it may have written (saved to {ref[0]})")
    assert git(distro.src, "show", f"{ref[0]}:{LEFTOVER}") == "package generated"
    assert not (distro.src / LEFTOVER).exists() and not record.exists()
    # the maintainer's file stays, and is work in progress as ever
    assert result.exit_code == 8
    assert errors(result)[1] == ("error: _src/1.20 holds work in progress: uncommitted changes "
                                 "in 1 file(s): notes.txt; refusing to touch it")
    assert (distro.src / "notes.txt").read_text() == "mine, there before the build\n"


def test_builder_without_gofmt_is_refused_before_make_runs(
        distro: Distro, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FakeBackend({IMAGE: "sha256:aa"}, missing="gofmt\nrsync\n")
    result = build(distro, backend, monkeypatch)
    assert result.exit_code == 10, result.output
    lines = errors(result)
    assert lines[0] == (f"error: builder image {IMAGE} lacks gofmt, rsync, which the build "
                        "runs; nothing was built")
    assert "  gofmt: hack/generate-bindata.sh (Debian package golang-go (link gofmt into the " \
           "PATH))" in lines
    assert "  rsync: hack/lib/golang.sh copies the binaries (Debian package rsync)" in lines
    assert (f"hint: make it again offline with `sudo tkedistro builder-image 1.20 --force "
            f"--image {IMAGE}`, "
            "or add `apt-get install -y golang-go rsync` to the image, or pass --builder-image "
            "with one that has them") in lines
    assert [a[0] for a in backend.sessions[0].ran] == ["go", "sh"]  # make never ran
    assert not (distro.src / LEFTOVER).exists()


def test_builder_commands_follow_the_platforms() -> None:
    amd = plan.builder_commands(["linux/amd64"], "linux/amd64")
    assert {"make", "gofmt", "rsync", "bash", "gcc"} <= set(amd)
    assert "aarch64-linux-gnu-gcc" not in amd
    both = plan.builder_commands(["linux/amd64", "linux/arm64"], "linux/amd64")
    assert both["aarch64-linux-gnu-gcc"] == ("cgo for linux/arm64 (the kubelet)",
                                             "gcc-aarch64-linux-gnu libc6-dev-arm64-cross")
    assert "gcc" not in plan.builder_commands(["linux/arm64"], "linux/amd64")


def test_doctor_names_the_commands_a_builder_image_lacks() -> None:
    backend = FakeBackend({IMAGE: "sha256:aa"}, missing="gofmt\n")
    check = doctor.check_builder_commands(backend, IMAGE, "1.20", ["linux/amd64"])
    assert check == doctor.Check("builder commands 1.20", False, f"{IMAGE} lacks gofmt",
                                 "sudo tkedistro builder-image 1.20 --force")
    assert doctor.check_builder_commands(FakeBackend({IMAGE: "sha256:aa"}), IMAGE, "1.20",
                                         ["linux/amd64"]).ok
