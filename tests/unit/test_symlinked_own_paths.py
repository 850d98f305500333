"""Issue 24's symlink findings for ``source``, ``ci render``, the manifest and the cache mirror,
through the CLI: a symlink where the tool keeps its own files is refused with exit 3 naming
it, or replaced without being followed; nothing outside the distro repo changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.gitrepo import git
from tests.helpers.series import Distro, make_distro
from tests.helpers.trees import tree_digest
from tkedistro.cli.app import app
from tkedistro.git.mirror import mirror_path

REFUSED = ("is a symlink; tkedistro does not follow symlinks in the paths it writes, reads "
           "back or deletes (its own state, output, results, cluster and cache folders)")


def cli(d: Distro, *args: str) -> Result:
    return CliRunner().invoke(app, ["--root", str(d.root), *args])


def assert_refused(result: Result, link: Path) -> None:
    assert result.exit_code == 3, result.output
    assert f"error: {link} {REFUSED}" in result.stderr
    assert f"hint: remove the symlink ({link}) and re-run" in result.stderr


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the distro repo, with a file an attacker would like overwritten."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "victim").write_text("keep me\n")
    return folder


def test_committed_tmp_symlinks_are_never_written_through(tmp_path: Path,
                                                          outside: Path) -> None:
    """``<name>.tmp`` links (git can commit them) beside the manifest, the workflows and the
    source state: the layer's temporary files have random names, made exclusively."""
    d = make_distro(tmp_path / "repo", prepare=False)
    links = [d.root / "releases" / "1.20.yaml.tmp",
             d.root / ".github" / "workflows" / "nightly.yml.tmp",
             d.root / ".github" / "workflows" / "ci.yml.tmp",
             d.root / "_src" / ".1.20.tkedistro" / "source.json.tmp"]
    for link in links:
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(outside / "victim")
    before = tree_digest(outside)

    for argv in (["source", "1.20"], ["ci", "render"],
                 ["patches", "reorder", "1.20", "--move", "0005", "--before", "0004"]):
        result = cli(d, *argv)
        assert result.exit_code == 0, (argv, result.output)

    assert tree_digest(outside) == before
    assert all(link.is_symlink() for link in links)
    assert "0003a-kubelet-print-tke.patch" in (d.root / "releases" / "1.20.yaml").read_text()
    assert (d.root / ".github" / "workflows" / "nightly.yml").is_file()


@pytest.mark.parametrize("folder", [".github", ".github/workflows"])
def test_ci_render_refuses_a_symlinked_workflows_folder(tmp_path: Path, outside: Path,
                                                        folder: str) -> None:
    d = make_distro(tmp_path / "repo", prepare=False)
    link = d.root / folder
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    before = tree_digest(outside)

    assert_refused(cli(d, "ci", "render"), link)
    assert tree_digest(outside) == before


def test_writing_a_manifest_refuses_a_symlinked_releases_folder(tmp_path: Path,
                                                                outside: Path) -> None:
    d = make_distro(tmp_path / "repo")
    shutil.move(d.root / "releases", outside / "releases")
    (d.root / "releases").symlink_to(outside / "releases")
    before = tree_digest(outside)

    assert_refused(cli(d, "new", "1.21", "--from", "1.20", "--onto", "v1.20.1"),
                   d.root / "releases")
    assert tree_digest(outside) == before


def test_source_force_refuses_a_tree_that_links_to_another_repository(
        tmp_path: Path, outside: Path) -> None:
    d = make_distro(tmp_path / "repo")
    other = outside / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    (other / "work.txt").write_text("committed\n")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "mine")
    (other / "work.txt").write_text("not committed yet\n")
    shutil.rmtree(d.src)
    d.src.symlink_to(other)
    before = tree_digest(outside)

    assert_refused(cli(d, "source", "1.20", "--force"), d.src)
    assert tree_digest(outside) == before
    assert (other / "work.txt").read_text() == "not committed yet\n"
    assert git(other, "log", "--format=%s") == "mine"


@pytest.mark.parametrize("moved", [True, False], ids=["state moved out", "empty folder"])
def test_source_refuses_a_symlinked_state_folder(tmp_path: Path, outside: Path,
                                                 moved: bool) -> None:
    d = make_distro(tmp_path / "repo")
    state = d.root / "_src" / ".1.20.tkedistro"
    target = outside / "state"
    if moved:
        shutil.move(state, target)
        (d.src / "README.md").write_text("an edit: the full run must not start\n")
    else:
        shutil.rmtree(state)
        shutil.rmtree(d.src)
        target.mkdir()
    state.symlink_to(target)
    before = tree_digest(outside)

    assert_refused(cli(d, "source", "1.20", "--force"), state)
    assert tree_digest(outside) == before


@pytest.mark.parametrize("where", ["mirrors", "mirror"])
def test_source_refuses_a_symlinked_cache_mirror(tmp_path: Path, outside: Path,
                                                 where: str) -> None:
    d = make_distro(tmp_path / "repo", prepare=False)
    cache = tmp_path / "cache"
    mirrors = cache / "mirrors"
    if where == "mirrors":
        link = mirrors
        cache.mkdir()
        target = outside / "mirrors"
        target.mkdir()
    else:  # a bare repository git would happily fetch into
        link = mirror_path(mirrors, d.upstream.url)
        mirrors.mkdir(parents=True)
        target = outside / "mirror.git"
        git(outside, "init", "-q", "--bare", str(target))
    link.symlink_to(target)
    before = tree_digest(outside)

    result = CliRunner().invoke(app, ["--root", str(d.root), "--cache-dir", str(cache),
                                      "source", "1.20"])
    assert_refused(result, link)
    assert tree_digest(outside) == before
    assert not d.src.exists()


@pytest.mark.parametrize("command", ["render", "check"])
def test_a_committed_workflow_symlink_is_neither_shown_nor_replaced(
        tmp_path: Path, outside: Path, command: str) -> None:
    """``ci check`` runs as root in the nightly: a workflow linked to a secret must not get
    the secret printed in a diff."""
    d = make_distro(tmp_path / "repo", prepare=False)
    assert cli(d, "ci", "render").exit_code == 0
    (outside / "victim").write_text("root's secret\n")
    link = d.root / ".github" / "workflows" / "ci.yml"
    link.unlink()
    link.symlink_to(outside / "victim")
    before = tree_digest(outside)

    result = cli(d, "ci", command)
    assert_refused(result, link)
    assert "secret" not in result.output
    assert tree_digest(outside) == before
    assert link.is_symlink()
