"""After `rebase --continue` and `patches export`, `tkedistro source` finds the tree current
(no `git am` run, same HEAD, "up to date"); `_src` carries the upstream tags of its mirror."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.gitrepo import git
from tests.helpers.series import Distro, make_distro
from tests.unit.test_rebase import P, cli
from tkedistro.git.patching import Entered, Patcher


@pytest.fixture
def distro(tmp_path: Path) -> Distro:
    return make_distro(tmp_path)


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every patch file `git am` is run on, in order."""
    seen: list[Path] = []
    real = Patcher.apply

    def counting(self: Patcher, mail: Path, **kwargs: object) -> Entered:
        seen.append(mail)
        return real(self, mail, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Patcher, "apply", counting)
    return seen


def rebase_with_a_resolved_conflict(d: Distro) -> None:
    assert cli(d, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    (d.src / "README.md").write_text("# tiny kubernetes (upstream, tke)\n")
    git(d.src, "add", "README.md")
    done = cli(d, "rebase", "1.20", "--continue")
    assert done.exit_code == 0, done.output


def test_source_after_rebase_continue_and_export_applies_nothing(
        distro: Distro, applied: list[Path]) -> None:
    rebase_with_a_resolved_conflict(distro)
    head = git(distro.src, "rev-parse", "HEAD")
    exported = cli(distro, "patches", "export", "1.20")
    assert exported.exit_code == 0, exported.output
    applied.clear()

    res = cli(distro, "source", "1.20")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == (
        f"_src/1.20: up to date: v1.20.2 ({distro.upstream.tags['v1.20.2'][:12]}) + 4 patches, "
        f"HEAD {head[:12]}")
    assert applied == []  # not one `git am`
    assert git(distro.src, "rev-parse", "HEAD") == head
    data = json.loads(cli(distro, "source", "1.20", "--json").stdout)
    assert data["up_to_date"] is True
    assert [o["method"] for o in data["outcomes"]] == ["unchanged"] * 4
    assert [o["file"] for o in data["outcomes"]] == [P[0], P[1], P[3], P[4]]


def test_source_right_after_rebase_continue_is_current_too(
        distro: Distro, applied: list[Path]) -> None:
    rebase_with_a_resolved_conflict(distro)
    applied.clear()
    res = cli(distro, "source", "1.20")
    assert res.exit_code == 0, res.output
    assert "up to date" in res.stdout and applied == []


def test_a_commit_made_by_hand_is_applied_again_from_its_file_alone(
        distro: Distro, applied: list[Path]) -> None:
    """A maintainer's own commit (their committer, not the author date) is not what `git am`
    of its file makes: `source` applies that one patch again, keeps the others."""
    git(distro.src, "commit", "-q", "--amend", "-m", "kubelet: print tke, reworded",
        "-m", "Patch-Kind: carry\nUpstream-Ref: none\nUpstream-Status: not-submitted",
        env={"GIT_COMMITTER_DATE": "2022-02-02T00:00:00Z"})
    assert cli(distro, "patches", "export", "1.20").exit_code == 0
    applied.clear()

    res = cli(distro, "source", "1.20")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert [line.split()[1] for line in lines[1:]] == ["unchanged"] * 4 + ["applied"]
    assert applied == [distro.root / P[4]]
    assert git(distro.src, "log", "-1", "--format=%cn %ct %at").split() == \
        ["tkedistro", *git(distro.src, "log", "-1", "--format=%at %at").split()]
    again = cli(distro, "source", "1.20")
    assert "up to date" in again.stdout and len(applied) == 1


def test_uncommitted_edit_after_export_is_still_refused(distro: Distro) -> None:
    rebase_with_a_resolved_conflict(distro)
    assert cli(distro, "patches", "export", "1.20").exit_code == 0
    (distro.src / "README.md").write_text("edited\n")
    res = cli(distro, "source", "1.20")
    assert res.exit_code == 8
    assert "_src/1.20 holds work in progress" in res.stderr


def test_src_carries_the_upstream_tags_of_its_mirror(tmp_path: Path) -> None:
    distro = make_distro(tmp_path, prepare=False)
    assert cli(distro, "source", "1.20").exit_code == 0
    assert git(distro.src, "tag").split() == ["v1.20.0"]
    rebase_with_a_resolved_conflict(distro)
    assert git(distro.src, "tag").split() == ["v1.20.0", "v1.20.2"]
    diff = git(distro.src, "diff", "--stat", "v1.20.2")
    assert "4 files changed" in diff
    assert git(distro.src, "rev-parse", "v1.20.0^{commit}") == distro.upstream.tags["v1.20.0"]
    assert not list((distro.src / ".git" / "objects" / "pack").iterdir())  # refs, no copy


def test_one_status_run_names_head_and_every_changed_path(distro: Distro) -> None:
    """The unchanged re-run's only git command: HEAD from its header, every kind of entry."""
    from tkedistro.git.repo import Repo

    tree = Repo(distro.src)
    assert tree.head_and_status() == (git(distro.src, "rev-parse", "HEAD"), [])
    git(distro.src, "mv", "README.md", "READ ME.md")
    (distro.src / "cmd" / "kubelet" / "main.go").write_text("edited\n")
    (distro.src / "new file.txt").write_text("new\n")
    head, changed = tree.head_and_status()
    assert head == git(distro.src, "rev-parse", "HEAD")
    assert sorted(changed) == ["READ ME.md", "cmd/kubelet/main.go", "new file.txt"]
    res = cli(distro, "source", "1.20")
    assert res.exit_code == 8 and "uncommitted changes in 3 file(s)" in res.stderr
