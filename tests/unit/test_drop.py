"""Issue 28 item 3 through the CLI: `tkedistro drop RELEASE` and `tkedistro new RELEASE
--abort` take away a release line `new` made, finished or stopped at a conflict, saving every
edit first where the removal cannot reach and printing the commands that bring it back; no
lock folder is left; a release `new` did not make is refused; a busy lock names its holder."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.gitrepo import git
from tests.helpers.series import Distro, make_distro
from tests.unit.test_rebase import cli

NEW = ("new", "1.21", "--from", "1.20", "--onto")


def snapshot(d: Distro) -> dict[str, bytes]:
    """Every file of the distro repo outside the trees of _src (their folders are listed)."""
    found: dict[str, bytes] = {}
    for path in sorted(d.root.rglob("*")):
        rel = path.relative_to(d.root)
        if rel.parts[0] == "_src" and len(rel.parts) > 2 and not rel.parts[1].startswith("."):
            continue  # inside a release tree
        found[str(rel)] = path.read_bytes() if path.is_file() else b"<folder>"
    return found


def distro_repo(tmp_path: Path) -> Distro:
    """A prepared distro that is itself a git repository (its _src ignored), as a real one."""
    d = make_distro(tmp_path)
    (d.root / ".gitignore").write_text("/_src/\n/_output/\n")
    git(d.root, "init", "-q")
    git(d.root, "add", "-A")
    git(d.root, "commit", "-q", "-m", "distro")
    return d


def restore_commands(output: str) -> list[str]:
    prefix = "get them back with: "
    return [line[len(prefix):] for line in output.splitlines() if line.startswith(prefix)]


def run_shown(d: Distro, command: str) -> None:
    """Run a command exactly as the tool printed it, from the distro root."""
    subprocess.run(shlex.split(command), cwd=d.root, check=True, capture_output=True)


def assert_gone(d: Distro) -> None:
    assert not (d.root / "releases/1.21.yaml").exists()
    assert not (d.root / "patches/1.21").exists()
    assert not (d.root / "_src/1.21").exists()
    assert not (d.root / "_src/.1.21.tkedistro").exists()  # no lock folder left


def test_new_then_drop_leaves_the_repo_as_before(tmp_path: Path) -> None:
    d = distro_repo(tmp_path)
    before, status = snapshot(d), git(d.root, "status", "--porcelain", "--ignored")
    assert cli(d, *NEW, "v1.20.1").exit_code == 0
    assert git(d.root, "status", "--porcelain") != ""
    res = cli(d, "drop", "1.21")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        "dropped release 1.21: removed releases/1.21.yaml, _src/1.21, patches/1.21/ (4 files), "
        "_src/.1.21.tkedistro/"]
    assert res.stderr == ""  # nothing to save
    assert git(d.root, "status", "--porcelain", "--ignored") == status
    assert snapshot(d) == before
    assert_gone(d)


def stop_with_edits(d: Distro) -> Path:
    """`new` stopped at the README conflict; then a staged resolution, an unstaged edit and
    an untracked file in its tree."""
    assert cli(d, *NEW, "v1.20.2").exit_code == 7
    src = d.root / "_src/1.21"
    (src / "README.md").write_text("# tiny kubernetes (upstream, tke)\n")
    git(src, "add", "README.md")
    (src / "cmd/kubectl/main.go").write_text("package main // unstaged\n")
    (src / "scratch.txt").write_text("untracked\n")
    return src


@pytest.mark.parametrize("abort", [("new", "1.21", "--abort"), ("rebase", "1.21", "--abort")])
def test_abort_of_a_stopped_new_keeps_every_edit(tmp_path: Path, abort: tuple[str, ...]) -> None:
    d = make_distro(tmp_path, prepare=False)
    before = snapshot(d)
    src = stop_with_edits(d)
    start = time.monotonic()
    res = cli(d, *abort)
    took = time.monotonic() - start
    assert res.exit_code == 0, res.output
    assert_gone(d)
    [command] = restore_commands(res.stdout) or [
        line.split("; get them back with: ", 1)[1] for line in res.stdout.splitlines()
        if "; get them back with: " in line]
    [backup] = (d.root / "_src/.1.21.dropped").iterdir()
    shown = backup.relative_to(d.root)
    assert command == f"git clone -q -b edits {shown}/edits.git _src/1.21"
    assert f"warning: edits to release line 1.21 were saved to {shown}/" in res.stderr
    assert sorted(p.name for p in (d.root / "_src").iterdir()) == [".1.21.dropped"]
    after = {k: v for k, v in snapshot(d).items() if k != "_src" and ".1.21.dropped" not in k}
    assert after == before  # only the backup is left
    run_shown(d, command)
    assert (src / "README.md").read_text() == "# tiny kubernetes (upstream, tke)\n"
    assert (src / "cmd/kubectl/main.go").read_text() == "package main // unstaged\n"
    assert (src / "scratch.txt").read_text() == "untracked\n"
    assert '"kubectl-tke"' not in (src / "cmd/kubectl/main.go").read_text()
    assert took < 10, took  # the synthetic tree: well under a second on an idle machine


def test_drop_after_new_finished_saves_edits_and_changed_patch_files(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    assert cli(d, *NEW, "v1.20.1").exit_code == 0
    src = d.root / "_src/1.21"
    (src / "NOTES").write_text("committed by hand\n")
    git(src, "add", "NOTES")
    git(src, "commit", "-q", "-m", "my notes")
    mine_commit = git(src, "rev-parse", "HEAD")
    (src / "scratch.txt").write_text("untracked\n")
    patch = d.root / "patches/1.21/0001-kubectl-print-tke.patch"
    mine = patch.read_text().replace("Why: tke needs it.", "Why: tke needs it (edited).")
    patch.write_text(mine)
    (d.root / "patches/1.21/0099-extra.patch").write_text("my new patch\n")
    manifest = (d.root / "releases/1.21.yaml").read_text()
    res = cli(d, "drop", "1.21")
    assert res.exit_code == 0, res.output
    assert_gone(d)
    [backup] = (d.root / "_src/.1.21.dropped").iterdir()
    shown = backup.relative_to(d.root)
    assert res.stdout.splitlines()[1] == (
        f"edits saved to {shown}/: _src/1.21: scratch.txt, _src/1.21: commit {mine_commit[:12]} "
        "my notes, patches/1.21/0001-kubectl-print-tke.patch, patches/1.21/0099-extra.patch")
    assert restore_commands(res.stdout) == [
        f"git clone -q -b edits {shown}/edits.git _src/1.21", f"cp -R {shown}/files/. ."]
    for command in restore_commands(res.stdout):
        run_shown(d, command)
    assert (src / "NOTES").read_text() == "committed by hand\n"
    assert (src / "scratch.txt").read_text() == "untracked\n"
    assert patch.read_text() == mine
    assert (d.root / "patches/1.21/0099-extra.patch").read_text() == "my new patch\n"
    assert (d.root / "releases/1.21.yaml").read_text() == manifest


def test_drop_refuses_a_release_new_did_not_make(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    before = snapshot(d)
    res = cli(d, "drop", "1.20")
    assert res.exit_code == 3
    assert res.stderr.splitlines() == [
        "error: tkedistro drop 1.20: refused: release 1.20 was not made by `tkedistro new` "
        "(releases/1.20.yaml exists, but _src/.1.20.tkedistro/new-line.json, the record new "
        "writes, does not)",
        "hint: tkedistro drop removes only release lines `tkedistro new` made; remove any "
        "other release by hand (git rm its manifest and patch folder)"]
    assert snapshot(d) == before
    gone = cli(d, "new", "1.22", "--abort")
    assert gone.exit_code == 3
    assert gone.stderr.startswith(
        "error: tkedistro new --abort 1.22: refused: release 1.22: no release line made by "
        "`tkedistro new` (_src/.1.22.tkedistro/new-line.json is missing)\n")
    assert snapshot(d) == before  # not even a lock folder for the release that is not there


def test_a_busy_release_lock_names_the_process_holding_it(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    assert cli(d, *NEW, "v1.20.1").exit_code == 0
    lock = d.root / "_src/.1.21.tkedistro/source.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from pathlib import Path\nfrom tkedistro.core.locks import exclusive_lock\n"
         "with exclusive_lock(Path(sys.argv[1]), 'busy'):\n"
         "    print('held', flush=True)\n    time.sleep(60)\n", str(lock)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        res = cli(d, "drop", "1.21")
    finally:
        holder.kill()
        holder.wait()
    assert res.exit_code == 13
    assert res.stderr.splitlines()[0] == (
        f"error: another tkedistro run is working on _src/1.21 (lock {lock}); held by "
        f"process {holder.pid}")
    assert (d.root / "releases/1.21.yaml").exists()
    assert cli(d, "drop", "1.21").exit_code == 0  # the lock is free again: no stale PID matters


def test_a_new_that_fails_before_its_rebase_leaves_no_trace(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    before = snapshot(d)
    res = cli(d, *NEW, "v9.9.9")  # no such tag upstream
    assert res.exit_code == 5, res.output
    assert snapshot(d) == before  # no manifest, no patch folder, no lock folder


def test_drop_json_names_what_went_and_how_to_get_edits_back(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    assert cli(d, *NEW, "v1.20.1").exit_code == 0
    (d.root / "_src/1.21/scratch.txt").write_text("untracked\n")
    res = cli(d, "drop", "1.21", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    [backup] = (d.root / "_src/.1.21.dropped").iterdir()
    shown = str(backup.relative_to(d.root))
    assert data == {
        "release": "1.21", "status": "dropped",
        "removed": ["releases/1.21.yaml", "_src/1.21", "patches/1.21/ (4 files)",
                    "_src/.1.21.tkedistro/"],
        "backup": shown, "saved": ["_src/1.21: scratch.txt"],
        "restore": [f"git clone -q -b edits {shown}/edits.git _src/1.21"], "kept": []}


def test_rebase_abort_prints_how_to_restore_the_backup_ref(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    assert cli(d, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    (d.src / "README.md").write_text("half resolved\n")
    res = cli(d, "rebase", "1.20", "--abort", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    ref = data["backup_ref"]
    assert data["restore"] == [f"git -C _src/1.20 checkout {ref} -- ."]
    run_shown(d, data["restore"][0])
    assert (d.src / "README.md").read_text() == "half resolved\n"
    git(d.src, "checkout", "-q", "HEAD", "--", ".")
    assert cli(d, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    (d.src / "README.md").write_text("again\n")
    text = cli(d, "rebase", "1.20", "--abort")
    [ref2] = [r for r in git(d.src, "for-each-ref", "--format=%(refname)",
                             "refs/tkedistro/backup/").split() if r != ref]
    assert text.stdout.splitlines()[-2:] == [
        f"edits saved to {ref2}; get them back with: git -C _src/1.20 checkout {ref2} -- .",
        "rebase aborted: releases/1.20.yaml, patches/1.20/ and _src/1.20 are back as they were"]
