"""The one routine by which a patch enters a tree (``git/patching.py``), on a tiny repo."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

import tkedistro
from tests.helpers.gitrepo import git
from tkedistro.git.patching import Patcher, fell_back
from tkedistro.git.repo import Repo

DATE = "Wed, 13 Jan 2021 12:00:00 +0000"


@pytest.fixture()
def tree(tmp_path: Path) -> Repo:
    work = tmp_path / "tree"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "a.txt").write_text("one\ntwo\n")
    (work / "crlf.txt").write_bytes(b"one\r\ntwo\r\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "base")
    return Repo(work)


def plain_diff(tree: Repo, name: str, new: bytes) -> str:
    old = (tree.path / name).read_bytes()
    (tree.path / name).write_bytes(new)
    diff = subprocess.run(["git", "diff"], cwd=tree.path, check=True,
                          capture_output=True).stdout.decode()  # bytes: CRs kept
    (tree.path / name).write_bytes(old)
    return diff


def test_a_plain_diff_becomes_one_commit_from_the_tool_dated_as_given(
        tree: Repo, tmp_path: Path) -> None:
    diff = plain_diff(tree, "a.txt", b"one\n2\n")
    entered = Patcher(tree).commit_plain(diff, "TKE: two", "Why.\n\nPatch-Kind: fix", DATE,
                                         tmp_path / "mail")
    assert (entered.ok, entered.three_way) == (True, False)
    assert git(tree.path, "log", "-1", "--format=%an <%ae> %aI|%cn %cI|%B") == (
        "tkedistro <tkedistro@invalid> 2021-01-13T12:00:00+00:00|"
        "tkedistro 2021-01-13T12:00:00+00:00|TKE: two\n\nWhy.\n\nPatch-Kind: fix")
    assert (tree.path / "a.txt").read_text() == "one\n2\n"
    assert not (tmp_path / "mail").exists()


def test_a_plain_diff_keeps_its_carriage_returns_as_git_apply_does(
        tree: Repo, tmp_path: Path) -> None:
    patcher = Patcher(tree)
    diff = plain_diff(tree, "crlf.txt", b"one\r\n2\r\n")
    assert "\r" in diff
    assert patcher.commit_plain(diff, "crlf", "", DATE, tmp_path / "mail").ok
    assert (tree.path / "crlf.txt").read_bytes() == b"one\r\n2\r\n"
    lf_made_crlf = plain_diff(tree, "a.txt", b"one\nzwei\n").replace("\n", "\r\n")
    refused = patcher.commit_plain(lf_made_crlf, "crlf", "", DATE, tmp_path / "mail")
    assert not refused.ok and patcher.in_progress()
    patcher.discard()
    assert not patcher.in_progress() and tree.status() == []


def test_a_3way_merge_is_read_from_what_git_am_says() -> None:
    assert fell_back("Applying: x\nUsing index info to reconstruct a base tree...\n"
                     "Falling back to patching base and 3-way merge...\n")
    assert not fell_back("Applying: about the 3-way merge\n")


def test_git_am_and_apply_are_run_only_by_the_patcher() -> None:
    """Every way a patch enters a tree goes through ``Patcher`` (one set of ``git am``
    options, one plain-diff conversion): no other module passes ``am`` or ``apply`` to git."""
    package = Path(tkedistro.__file__).parent
    runs = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "run" and any(
                        isinstance(a, ast.Constant) and a.value in ("am", "apply")
                        for a in node.args):
                runs.add(str(path.relative_to(package)))
    assert runs == {"git/patching.py"}
