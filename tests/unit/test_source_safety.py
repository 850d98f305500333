"""`tkedistro source` never loses a maintainer's work and recovers from interrupted runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from filelock import FileLock
from typer.testing import CliRunner, Result

from tests.helpers.distro import Distro, big, make_distro
from tests.helpers.gitrepo import IDENTITY, git
from tkedistro.cli.app import app
from tkedistro.git.patching import Patcher

runner = CliRunner()

HINT = (
    "hint: keep it: commit it in _src/1.20 and run `tkedistro patches export 1.20` (writes it "
    "into patches/ and the manifest; give --kind, --upstream-ref and --upstream-status for a "
    "commit whose message lacks those trailers); discard it: `git -C _src/1.20 reset --hard && "
    "git -C _src/1.20 clean -fd`; or run again with --force to save it to a backup ref first"
)


def source(distro: Distro, *args: str) -> Result:
    return runner.invoke(app, ["--root", str(distro.root), "source", "1.20", *args])


def errors(result: Result) -> str:
    """stderr without progress lines and timestamps."""
    lines = [re.sub(r"^\d\d:\d\d:\d\d ", "", line)
             for line in result.stderr.splitlines(keepends=True)]
    return "".join(line for line in lines if not line.startswith(("[", "fetching ")))


@pytest.fixture()
def prepared(tmp_path: Path) -> Distro:
    """A distro whose _src/1.20 was prepared with two patches."""
    distro = make_distro(tmp_path)
    one = distro.mbox("0001-kubectl.patch", {"cmd/kubectl/main.go": "package main\n"}, "kubectl")
    two = distro.mbox("0002-ten.patch", {"pkg/big/lines.go": big(l10="ours10")}, "ten")
    distro.manifest([one, two])
    assert source(distro).exit_code == 0
    return distro


def head(distro: Distro) -> str:
    return git(distro.src, "rev-parse", "HEAD")


def test_uncommitted_edit_is_refused_and_kept(prepared: Distro) -> None:
    (prepared.src / "README.md").write_text("my edit\n")
    (prepared.src / "notes.txt").write_text("untracked\n")
    prepared.plain("0002-ten.patch", {"go.mod": "module changed\n"})  # something to do
    result = source(prepared)
    assert result.exit_code == 8
    assert errors(result) == (
        "error: _src/1.20 holds work in progress: uncommitted changes in 2 file(s): "
        "README.md, notes.txt; refusing to touch it\n" + HINT + "\n"
    )
    assert (prepared.src / "README.md").read_text() == "my edit\n"
    assert (prepared.src / "notes.txt").read_text() == "untracked\n"


def test_edit_refused_even_when_inputs_are_unchanged(prepared: Distro) -> None:
    (prepared.src / "README.md").write_text("my edit\n")
    result = source(prepared)
    assert result.exit_code == 8
    assert "uncommitted changes in 1 file(s): README.md" in result.stderr
    assert (prepared.src / "README.md").read_text() == "my edit\n"


def test_force_saves_edits_and_untracked_files_to_a_backup_ref(prepared: Distro) -> None:
    before = head(prepared)
    (prepared.src / "README.md").write_text("my edit\n")
    (prepared.src / "notes.txt").write_text("untracked\n")
    result = source(prepared, "--force")
    assert result.exit_code == 0, result.output
    match = re.search(r"work in progress saved to (refs/tkedistro/backup/\d{8}T\d{6}Z)$",
                      result.stdout)
    assert match, result.stdout
    ref = match.group(1)
    assert (f"warning: saved the work in progress of _src/1.20 to {ref} "
            f"(restore: git -C _src/1.20 checkout -b my-work {ref})") in result.stderr
    assert git(prepared.src, "show", f"{ref}:README.md") == "my edit"
    assert git(prepared.src, "show", f"{ref}:notes.txt") == "untracked"
    assert git(prepared.src, "rev-parse", f"{ref}~1") == before
    assert git(prepared.src, "status", "--porcelain") == ""
    assert head(prepared) == before
    assert source(prepared).stdout.startswith("_src/1.20: up to date")


def test_extra_commit_is_refused_and_force_keeps_it(prepared: Distro) -> None:
    (prepared.src / "README.md").write_text("mine\n")
    git(prepared.src, "commit", "-qam", "my fix")
    mine = head(prepared)
    prepared.plain("0002-ten.patch", {"go.mod": "module changed\n"})
    result = source(prepared)
    assert result.exit_code == 8
    assert errors(result).splitlines()[0] == (
        f"error: _src/1.20 holds work in progress: 1 commit(s) not made by tkedistro: "
        f"{mine[:12]} my fix; refusing to touch it")
    assert head(prepared) == mine
    forced = source(prepared, "--force")
    assert forced.exit_code == 0, forced.output
    ref = forced.stdout.rsplit(" ", 1)[-1].strip()
    assert git(prepared.src, "rev-parse", ref) == mine
    assert git(prepared.src, "log", "-1", "--format=%s") == "ten"  # from the file name


def test_amended_tool_commit_counts_as_work_in_progress(prepared: Distro) -> None:
    git(prepared.src, "commit", "-q", "--amend", "-m", "ten, reworded")
    result = source(prepared)
    assert result.exit_code == 8
    assert "1 commit(s) not made by tkedistro" in result.stderr


def test_maintainer_git_am_in_progress_is_refused(prepared: Distro) -> None:
    bad = prepared.mbox("0003-seven.patch", {"pkg/big/lines.go": big(l07="x")}, "seven")
    proc = subprocess.run(["git", "am", "-q", str(prepared.root / bad)],
                          cwd=prepared.src, capture_output=True, env={**os.environ, **IDENTITY})
    assert proc.returncode != 0
    result = source(prepared)
    assert result.exit_code == 8
    assert errors(result).splitlines()[0] == (
        "error: _src/1.20 holds work in progress: a `git am` or rebase is in progress; "
        "refusing to touch it")
    assert (prepared.src / ".git" / "rebase-apply").is_dir()


def test_reset_by_hand_to_an_older_tool_commit_is_not_work_in_progress(
    prepared: Distro,
) -> None:
    top = head(prepared)
    git(prepared.src, "reset", "-q", "--hard", "HEAD~1")
    result = source(prepared)
    assert result.exit_code == 0, result.output
    assert head(prepared) == top


def test_killed_apply_is_recovered_on_the_next_run(
    prepared: Distro, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = git(prepared.src, "rev-parse", "HEAD~1")
    conflicting = prepared.mbox("0009-seven.patch", {"pkg/big/lines.go": big(l07="x")}, "seven")
    real_apply = Patcher.apply

    def killed(self: Patcher, patch: Path) -> object:
        real_apply(self, prepared.root / conflicting)  # leaves a `git am` stopped mid-way
        raise SystemExit(137)  # like kill -9: no clean-up code runs

    prepared.mbox("0002-ten.patch", {"pkg/big/lines.go": big(l10="ten2")}, "ten2")
    monkeypatch.setattr(Patcher, "apply", killed)
    assert source(prepared).exit_code == 137
    monkeypatch.undo()
    assert (prepared.src / ".git" / "rebase-apply").exists()
    result = source(prepared)
    assert result.exit_code == 0, result.output
    assert re.search(r"warning: _src/1.20: recovering from an interrupted tkedistro run "
                     r"\(its leftover changes are saved to refs/tkedistro/backup/\S+\)",
                     result.stderr), result.stderr
    assert git(prepared.src, "rev-parse", "HEAD~1") == first
    assert git(prepared.src, "log", "-1", "--format=%s") == "ten2"
    assert git(prepared.src, "status", "--porcelain") == ""
    assert not (prepared.src / ".git" / "rebase-apply").exists()
    assert source(prepared).stdout.startswith("_src/1.20: up to date")


def test_ctrl_c_while_applying_leaves_a_clean_tree_and_says_where(
    prepared: Distro, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = git(prepared.src, "rev-parse", "HEAD~1")
    conflicting = prepared.mbox("0009-seven.patch", {"pkg/big/lines.go": big(l07="x")}, "seven")
    real_apply = Patcher.apply

    def interrupted(self: Patcher, patch: Path) -> object:
        real_apply(self, prepared.root / conflicting)
        raise KeyboardInterrupt

    prepared.mbox("0002-ten.patch", {"pkg/big/lines.go": big(l10="ten2")}, "ten2")
    monkeypatch.setattr(Patcher, "apply", interrupted)
    result = source(prepared)
    assert result.exit_code == 130
    assert errors(result) == (
        f"warning: interrupted: _src/1.20 is left clean at HEAD {first[:12]}: "
        "patches 1-1 of 2 are applied\nerror: interrupted\n")
    assert head(prepared) == first
    assert git(prepared.src, "status", "--porcelain") == ""
    monkeypatch.undo()
    assert "2/2  3-way      patches/1.20/0002-ten.patch  ten2" in source(prepared).stdout


def test_interrupted_fetch_leftovers_are_cleaned_up(prepared: Distro) -> None:
    mirrors = Path(os.environ["TKEDISTRO_CACHE"]) / "mirrors"
    (mirror,) = mirrors.glob("*.git")
    git(mirror, "tag", "-d", "v1.20.1")  # the fetch never finished
    (mirror / "packed-refs.lock").write_text("")
    (mirror / "refs" / "tags" / "v1.20.1.lock").write_text("")
    (mirror / "objects" / "pack" / "tmp_pack_XYZ").write_text("partial")
    (mirrors / (mirror.name + ".creating")).mkdir()
    prepared.plain("0002-ten.patch", {"go.mod": "module changed\n"})
    result = source(prepared)
    assert result.exit_code == 0, result.output
    assert f"warning: removing packed-refs.lock left in {mirror.name} by an interrupted fetch" \
        in result.stderr
    assert not list(mirror.rglob("*.lock")) and not (mirror / "objects/pack/tmp_pack_XYZ").exists()
    assert git(mirror, "rev-parse", "v1.20.1^{commit}") == prepared.upstream.tags["v1.20.1"]


def test_half_created_mirror_is_rebuilt(tmp_path: Path) -> None:
    distro = make_distro(tmp_path)
    distro.manifest([])
    from tkedistro.git.mirror import mirror_path

    path = mirror_path(Path(os.environ["TKEDISTRO_CACHE"]) / "mirrors", distro.upstream.url)
    path.mkdir(parents=True)
    (path / "config").write_text("half")  # no HEAD, no objects/
    result = source(distro)
    assert result.exit_code == 0, result.output
    assert (path / "HEAD").is_file()


def test_a_second_run_at_the_same_time_is_refused(prepared: Distro) -> None:
    lock = prepared.root / "_src" / ".1.20.tkedistro" / "source.lock"
    with FileLock(str(lock)):
        result = source(prepared)
    assert result.exit_code == 13
    assert result.stderr.splitlines() == [
        f"error: another tkedistro run is working on _src/1.20 (lock {lock})",
        "hint: wait for it to finish; the lock is freed when that process exits",
    ]


def test_a_folder_that_is_not_a_git_tree_is_refused(tmp_path: Path) -> None:
    distro = make_distro(tmp_path)
    distro.manifest([])
    distro.src.mkdir(parents=True)
    (distro.src / "precious.txt").write_text("mine")
    result = source(distro, "--force")
    assert result.exit_code == 8
    assert errors(result).splitlines()[0] == (
        "error: _src/1.20 exists but is not a git work tree; refusing to touch it")
    assert (distro.src / "precious.txt").read_text() == "mine"


def test_deleted_cache_is_refetched(prepared: Distro) -> None:
    shutil.rmtree(Path(os.environ["TKEDISTRO_CACHE"]))
    top = head(prepared)
    result = source(prepared)
    assert result.exit_code == 0, result.output
    assert head(prepared) == top
    assert git(prepared.src, "status", "--porcelain") == ""


def test_build_output_in_the_tree_is_not_work_in_progress(prepared: Distro) -> None:
    out = prepared.src / "_output" / "local" / "bin"
    out.mkdir(parents=True)
    (out / "kubectl").write_text("binary")
    assert source(prepared).stdout.startswith("_src/1.20: up to date")
    prepared.plain("0002-ten.patch", {"go.mod": "module changed\n"})
    assert source(prepared).exit_code == 0
    assert (out / "kubectl").read_text() == "binary"
