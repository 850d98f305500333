"""`tkedistro source` as the installed script runs it: the tree's `git status` starts before
the code loads (``StatusProbe``), and still nothing a maintainer did in `_src` is missed or
lost, and a changed input still gets the full run's checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.distro import Distro, big, make_distro
from tests.helpers.gitrepo import IDENTITY, git
from tkedistro.cli.app import app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def prepared(tmp_path: Path) -> Distro:
    """A distro whose _src/1.20 was prepared with two patches."""
    distro = make_distro(tmp_path)
    one = distro.mbox("0001-kubectl.patch", {"cmd/kubectl/main.go": "package main\n"}, "kubectl")
    two = distro.mbox("0002-ten.patch", {"pkg/big/lines.go": big(l10="ours10")}, "ten")
    distro.manifest([one, two])
    result = CliRunner().invoke(app, ["--root", str(distro.root), "source", "1.20"])
    assert result.exit_code == 0, result.output
    return distro


def wrap_git(tmp_path: Path, early: str = "", after_early: str = "") -> tuple[Path, Path]:
    """A ``git`` first on PATH that logs its arguments; for the early (read-only) status it
    runs the Python statement ``early`` instead of git when given (a stale answer), and
    ``after_early`` after it (an edit the maintainer makes while the tool runs). Returns (its
    folder, the log)."""
    real = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    folder, log = tmp_path / "bin", tmp_path / "git.log"
    folder.mkdir()
    wrapper = folder / "git"
    status = early or f"code = subprocess.call([{real!r}, *sys.argv[1:]])"
    wrapper.write_text(
        f"#!{sys.executable}\nimport subprocess, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n    f.write(' '.join(sys.argv[1:]) + '\\n')\n"
        "if '--no-optional-locks' not in sys.argv:\n"
        f"    sys.exit(subprocess.call([{real!r}, *sys.argv[1:]]))\n"
        f"code = 0\n{status}\n{after_early or 'pass'}\nsys.exit(code)\n")
    wrapper.chmod(0o755)
    return folder, log


def script(distro: Distro, *args: str, path: Path | None = None, verbose: bool = False,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``tkedistro --root DISTRO source 1.20 ARGS`` as the installed script runs it."""
    environ = {**os.environ, **IDENTITY, "PYTHONPATH": str(REPO), **(env or {})}
    if path is not None:
        environ["PATH"] = f"{path}{os.pathsep}{environ['PATH']}"
    return subprocess.run([sys.executable, "-m", "tkedistro", "--root", str(distro.root),
                           *(["--verbose"] if verbose else []), "source", "1.20", *args],
                          env=environ, cwd=REPO, capture_output=True, text=True, check=False)


def test_unchanged_rerun_runs_one_read_only_git_status(prepared: Distro,
                                                        tmp_path: Path) -> None:
    folder, log = wrap_git(tmp_path)
    done = script(prepared, path=folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("_src/1.20: up to date: ")
    assert log.read_text().splitlines() == [
        f"-C {prepared.src} --no-optional-locks status --porcelain=v2 -z --branch "
        "--untracked-files=normal"]
    assert not (prepared.src / ".git" / "index.lock").exists()


@pytest.mark.parametrize("change", ["edit", "staged", "untracked"])
def test_work_in_progress_is_refused_as_ever(prepared: Distro, change: str) -> None:
    target = prepared.src / ("notes.txt" if change == "untracked" else "README.md")
    target.write_text("my work\n")
    if change == "staged":
        git(prepared.src, "add", "README.md")
    done = script(prepared)
    assert done.returncode == 8, done.stderr
    name = target.name
    assert (f"error: _src/1.20 holds work in progress: uncommitted changes in 1 file(s): "
            f"{name}; refusing to touch it") in done.stderr
    assert target.read_text() == "my work\n"


def test_a_run_that_changes_the_tree_looks_at_it_again_itself(prepared: Distro,
                                                              tmp_path: Path) -> None:
    """The early status answers "clean" (as if git had looked before the maintainer's edit);
    a run with a patch to re-apply checks the tree itself, so the edit is refused, not lost."""
    head = git(prepared.src, "rev-parse", "HEAD")
    clean = f"sys.stdout.write('# branch.oid {head}\\0# branch.head tkedistro\\0')"
    folder, _ = wrap_git(tmp_path, early=clean)
    readme = prepared.src / "README.md"
    readme.write_text("mine\n")
    prepared.mbox("0002-ten.patch", {"pkg/big/lines.go": big(l10="theirs10")}, "ten")
    done = script(prepared, path=folder)
    assert done.returncode == 8, done.stderr
    assert "uncommitted changes in 1 file(s): README.md; refusing to touch it" in done.stderr
    assert readme.read_text() == "mine\n"  # the edit is kept
    assert git(prepared.src, "rev-parse", "HEAD") == head


def test_an_edit_after_the_early_status_is_refused_by_the_next_run(
    prepared: Distro, tmp_path: Path
) -> None:
    readme = prepared.src / "README.md"
    folder, _ = wrap_git(tmp_path, after_early=f"open({str(readme)!r}, 'a').write('mine\\n')")
    first = script(prepared, path=folder)  # answers for the tree as the command started
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("_src/1.20: up to date: ")
    second = script(prepared)
    assert second.returncode == 8, second.stderr
    assert "uncommitted changes in 1 file(s): README.md" in second.stderr
    assert readme.read_text().endswith("mine\n")


def test_a_changed_manifest_is_still_checked(prepared: Distro, tmp_path: Path) -> None:
    manifest = prepared.root / "releases" / "1.20.yaml"
    manifest.write_text(manifest.read_text().replace("patches:", "patchez:"))
    done = script(prepared)
    assert done.returncode == 3  # ManifestError
    assert "error: releases/1.20.yaml:14: patchez: unknown key; did you mean 'patches'?" \
        in done.stderr
    assert done.stdout == ""


def test_a_redirecting_git_variable_does_not_reach_the_early_status(prepared: Distro,
                                                                     tmp_path: Path) -> None:
    elsewhere = tmp_path / "other-index"
    done = script(prepared, env={"GIT_INDEX_FILE": str(elsewhere),
                                 "GIT_DIR": str(tmp_path / "nothing")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("_src/1.20: up to date: ")
    assert not elsewhere.exists()


def test_verbose_shows_the_status_it_runs_and_starts_none_early(prepared: Distro,
                                                                 tmp_path: Path) -> None:
    folder, log = wrap_git(tmp_path)
    done = script(prepared, path=folder, verbose=True)
    assert done.returncode == 0, done.stderr
    assert "$ git status --porcelain=v2 -z --branch --untracked-files=normal" in done.stderr
    assert "--no-optional-locks" not in log.read_text()


def test_a_changed_patch_starts_no_early_status(prepared: Distro, tmp_path: Path) -> None:
    folder, log = wrap_git(tmp_path)
    prepared.mbox("0002-ten.patch", {"pkg/big/lines.go": big(l10="theirs10")}, "ten")
    done = script(prepared, path=folder)
    assert done.returncode == 0, done.stderr
    assert "  1/2  unchanged  patches/1.20/0001-kubectl.patch" in done.stdout
    assert "  2/2  3-way      patches/1.20/0002-ten.patch  ten" in done.stdout
    assert "--no-optional-locks" not in log.read_text()  # no status started to be thrown away
