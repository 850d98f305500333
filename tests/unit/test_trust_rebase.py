"""Issue 17 items 1, 9, 10: conflict markers never reach the series (`rebase --continue`,
`validate`), `forecast --fail-on-conflict` (exit 20) and its sparse tree, an `--abort` that
reports only real edits and undoes `tkedistro new`, and no `git am` advice of git's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.gitrepo import git
from tests.helpers.series import DATES, TRAILERS, Distro, fingerprint, make_distro
from tests.unit.test_rebase import P, cli, table_row
from tkedistro.model.diffscan import conflict_markers, describe_markers

CONFLICTED = ("<<<<<<< HEAD\n# tiny kubernetes (upstream)\n=======\n# tiny kubernetes (tke)\n"
              ">>>>>>> README: say tke\n")
GIT_ADVICE = ("git am --continue", "git am --skip", "git am --abort", "hint:",
              "You still have unmerged paths", "--show-current-patch", "Patch failed at")


@pytest.fixture
def distro(tmp_path: Path) -> Distro:
    return make_distro(tmp_path)


def stopped(d: Distro, release: str = "1.20") -> None:
    res = cli(d, "rebase", release, "--onto", "v1.20.2")
    assert res.exit_code == 7, res.output
    assert not any(a in res.output for a in GIT_ADVICE), res.output


def backup_refs(d: Distro) -> list[str]:
    return git(d.src, "for-each-ref", "--format=%(refname)", "refs/tkedistro/backup/").split()


# -- item 1: conflict markers ------------------------------------------------------------------

def test_continue_refuses_while_a_conflict_marker_is_staged(distro: Distro) -> None:
    stopped(distro)
    assert (distro.src / "README.md").read_text() == CONFLICTED
    git(distro.src, "add", "README.md")  # "resolved" without editing
    res = cli(distro, "rebase", "1.20", "--continue")
    assert res.exit_code == 17
    assert res.stderr == (
        f"error: patch 4 ({P[3]}): conflict marker left in README.md line 1: '<<<<<<< HEAD' "
        "(and 2 more marker line(s))\n"
        "hint: edit README.md to resolve the conflict, `git -C _src/1.20 add README.md`, then "
        "tkedistro rebase 1.20 --continue; or --skip to drop this patch; or --abort\n")
    assert (distro.src / ".git" / "rebase-apply").is_dir()  # still stopped at patch 4
    assert "<<<<<<<" not in (distro.root / P[3]).read_text()

    (distro.src / "README.md").write_text("# tiny kubernetes (upstream, tke)\n")
    git(distro.src, "add", "README.md")
    done = cli(distro, "rebase", "1.20", "--continue")
    assert done.exit_code == 0, done.output
    assert table_row(done, 4).split(None, 2)[2] == "conflict resolved"
    assert cli(distro, "validate", "1.20").exit_code == 0


def test_continue_refuses_markers_committed_by_hand(distro: Distro) -> None:
    stopped(distro)
    git(distro.src, "add", "README.md")
    git(distro.src, "am", "--continue")  # git takes it; tkedistro must not
    res = cli(distro, "rebase", "1.20", "--continue")
    assert res.exit_code == 17
    assert res.stderr.startswith(
        f"error: patch 4 ({P[3]}): conflict marker left in README.md line 1: '<<<<<<< HEAD'")
    assert ("hint: fix README.md, then `git -C _src/1.20 commit --amend -a`, then tkedistro "
            "rebase 1.20 --continue") in res.stderr


def work_clone(d: Distro) -> Path:
    """A clone of the upstream with v1.20.0 checked out (detached)."""
    work = d.root.parent / "patch-clone"
    if not work.exists():
        git(d.root.parent, "clone", "-q", str(d.upstream.bare), str(work))
    git(work, "checkout", "-q", "v1.20.0")
    return work


def write_patch(d: Distro, file: str, readme: str) -> None:
    """Replace patch ``file`` by one that sets README.md to ``readme`` on v1.20.0."""
    work = work_clone(d)
    (work / "README.md").write_text(readme)
    git(work, "commit", "-q", "-am", f"README: say tke\n\n{TRAILERS}", env=DATES)
    (d.root / file).write_text(git(work, "format-patch", "-1", "--stdout") + "\n")


def test_validate_rejects_a_patch_that_adds_conflict_markers(distro: Distro) -> None:
    write_patch(distro, P[3], CONFLICTED)
    res = cli(distro, "validate", "1.20")
    assert res.exit_code == 4
    assert res.stderr.startswith(
        f"error: {P[3]}: README.md line 1: '<<<<<<< HEAD' (and 2 more marker line(s)): adds a "
        "conflict marker; resolve the conflict in the file and write the patch again "
        "(tkedistro patches export), giving --kind, --upstream-ref, --upstream-status if its "
        "commit lacks those trailers\n")


def test_validate_accepts_heading_underlines(distro: Distro) -> None:
    write_patch(distro, P[3], "tiny kubernetes\n=======\n\nSee <<<<<<<< nothing\n")
    res = cli(distro, "validate", "1.20")
    assert res.exit_code == 0, res.output


def diff_adding(*lines: str, removed: tuple[str, ...] = ()) -> str:
    body = [f"-{line}" for line in removed] + [f"+{line}" for line in lines]
    return (f"diff --git a/doc.md b/doc.md\n--- a/doc.md\n+++ b/doc.md\n"
            f"@@ -1,{len(removed) + 1} +1,{len(lines) + 1} @@\n context\n" + "\n".join(body)
            + "\n")


def test_the_marker_rule() -> None:
    def found(diff: str) -> list[str]:
        return describe_markers(conflict_markers(diff, "x.patch"))

    assert found(diff_adding("Title", "=======")) == []  # a heading underline
    assert found(diff_adding("=======", "||||||| base", ">>>>>>>> eight")) == []
    assert found(diff_adding("a", "<<<<<<< ours", "b", "=======", "c")) == [
        "doc.md line 3: '<<<<<<< ours' (and 1 more marker line(s))"]
    assert found(diff_adding(">>>>>>> theirs")) == ["doc.md line 2: '>>>>>>> theirs'"]
    assert found(diff_adding("ok", removed=("<<<<<<< HEAD", "=======", ">>>>>>> x"))) == []


# -- item 9: forecast --fail-on-conflict ---------------------------------------------------------

def test_forecast_fail_on_conflict_exits_20_after_the_json(distro: Distro) -> None:
    before = fingerprint(distro)
    res = cli(distro, "forecast", "1.20", "--onto", "v1.20.1", "v1.20.2", "--fail-on-conflict",
              "--json")
    assert res.exit_code == 20
    data = json.loads(res.stdout)
    assert [(t["tag"], t["ok"]) for t in data["tags"]] == [("v1.20.1", True), ("v1.20.2", False)]
    assert res.stderr.endswith(
        "error: forecast 1.20: the series conflicts on v1.20.2\n"
        f"  v1.20.2: patch 4 ({P[3]}) in README.md\n"
        "hint: resolve them with: tkedistro rebase 1.20 --onto v1.20.2\n")
    assert fingerprint(distro) == before
    assert cli(distro, "forecast", "1.20", "--onto", "v1.20.1", "--fail-on-conflict").exit_code == 0
    assert cli(distro, "forecast", "1.20", "--onto", "v1.20.2").exit_code == 0  # without the flag


def test_forecast_tree_holds_only_the_files_the_series_touches(
        distro: Distro, monkeypatch: pytest.MonkeyPatch) -> None:
    from tkedistro.git.repo import Repo

    seen: list[list[str]] = []
    real = Repo.create

    def spy(self: Repo, mirror: Path, base: str, *, sparse: str | None = None) -> None:
        real(self, mirror, base, sparse=sparse)
        seen.append(sorted(git(self.path, "ls-files", "-t").splitlines()))
        seen.append(sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*")
                           if p.is_file() and ".git" not in p.parts))

    monkeypatch.setattr(Repo, "create", spy)
    res = cli(distro, "forecast", "1.20", "--onto", "v1.20.2", "--json")
    assert res.exit_code == 0, res.output
    statuses = [p["status"] for p in json.loads(res.stdout)["tags"][0]["patches"]]
    assert statuses == ["clean", "3way", "upstream", "conflict", "clean"]  # as rebase says
    index, files = seen
    assert files == ["README.md", "cmd/kubectl/main.go", "cmd/kubelet/main.go",
                     "pkg/feature/tke.go", "pkg/kubelet/cm/limits.go"]
    assert any(line.startswith("S ") for line in index)  # the rest: skip-worktree


def test_forecast_of_a_rename_agrees_with_rebase(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    work = work_clone(d)
    git(work, "mv", "pkg/kubelet/cm/limits.go", "pkg/kubelet/cm/limits_linux.go")
    git(work, "commit", "-q", "-m", f"cm: rename limits\n\n{TRAILERS}", env=DATES)
    extra = "patches/1.20/0006-cm-rename-limits.patch"
    (d.root / extra).write_text(git(work, "format-patch", "-1", "--stdout") + "\n")
    d.manifest.write_text(d.manifest.read_text().replace(
        f"  - file: {P[4]}\n", f"  - file: {P[4]}\n  - file: {extra}\n"))
    res = cli(d, "forecast", "1.20", "--onto", "v1.20.1", "--json")
    assert res.exit_code == 0, res.output
    forecast = [p["status"] for p in json.loads(res.stdout)["tags"][0]["patches"]]
    rebased = cli(d, "rebase", "1.20", "--onto", "v1.20.1", "--json")
    assert rebased.exit_code == 0, rebased.output
    assert forecast == [p["status"] for p in json.loads(rebased.stdout)["patches"]]
    assert forecast[-1] == "clean"
    assert (d.src / "pkg/kubelet/cm/limits_linux.go").is_file()


# -- item 10: --abort, new + --abort, git's advice ------------------------------------------------

def test_abort_without_edits_reports_none_and_makes_no_backup(distro: Distro) -> None:
    before = fingerprint(distro)
    stopped(distro)
    res = cli(distro, "rebase", "1.20", "--abort")
    assert res.exit_code == 0, res.output
    assert "edits made during the rebase" not in res.stderr
    assert backup_refs(distro) == []
    assert fingerprint(distro) == before


def test_abort_saves_real_edits_once(distro: Distro) -> None:
    for _ in range(2):
        stopped(distro)
        (distro.src / "README.md").write_text("half resolved\n")
        res = cli(distro, "rebase", "1.20", "--abort")
        assert res.exit_code == 0, res.output
        [ref] = backup_refs(distro)  # the second abort reuses the first one's ref
        assert res.stderr.endswith(
            f"warning: edits made during the rebase were saved to {ref}: README.md; get them "
            f"back with: git -C _src/1.20 checkout {ref} -- .\n")
        assert git(distro.src, "show", f"{ref}:README.md") == "half resolved"


def test_new_then_abort_leaves_no_half_made_release(distro: Distro) -> None:
    before = fingerprint(distro)
    res = cli(distro, "new", "1.21", "--from", "1.20", "--onto", "v1.20.2")
    assert res.exit_code == 7
    assert (distro.root / "releases/1.21.yaml").is_file()
    abort = cli(distro, "rebase", "1.21", "--abort")
    assert abort.exit_code == 0, abort.output
    assert abort.stdout.splitlines()[-1] == (
        "rebase aborted: releases/1.21.yaml, patches/1.21/ and _src/1.21, made by tkedistro new, "
        "are removed")
    assert not (distro.root / "releases/1.21.yaml").exists()
    assert not (distro.root / "patches/1.21").exists()
    assert not (distro.root / "_src/1.21").exists()
    assert fingerprint(distro) == before
    assert cli(distro, "validate").exit_code == 0


def test_new_onto_a_missing_tag_writes_nothing(distro: Distro) -> None:
    res = cli(distro, "new", "1.21", "--from", "1.20", "--onto", "v9.9.9")
    assert res.exit_code == 5
    assert not (distro.root / "releases/1.21.yaml").exists()
    assert not (distro.root / "patches/1.21").exists()


def test_continue_on_an_unresolved_conflict_gives_only_our_advice(distro: Distro) -> None:
    stopped(distro)
    res = cli(distro, "rebase", "1.20", "--continue")
    assert res.exit_code == 7
    assert res.stderr == (
        f"error: patch 4 ({P[3]}): still conflicted: README.md\n"
        "hint: resolve, `git -C _src/1.20 add FILE`, then tkedistro rebase 1.20 --continue; "
        "or --skip to drop this patch; or --abort\n")
    again = cli(distro, "rebase", "1.20", "--skip")
    assert again.exit_code == 0, again.output
    assert not any(a in again.output for a in GIT_ADVICE)


def test_forecast_follows_an_upstream_rename_as_rebase_does(tmp_path: Path) -> None:
    """The sparse tree lacks the renamed file; the 3-way merge still finds it."""
    from tests.helpers.series import LIMITS

    d = make_distro(tmp_path)
    d.upstream.commit({"pkg/kubelet/cm/limits.go": None,
                       "pkg/kubelet/cm/limits_linux.go": LIMITS.replace("line4 = 4", "line4 = 44")},
                      "cm: rename limits", tag="v1.20.3")
    res = cli(d, "forecast", "1.20", "--onto", "v1.20.3", "--json")
    assert res.exit_code == 0, res.output
    forecast = [p["status"] for p in json.loads(res.stdout)["tags"][0]["patches"]]
    assert forecast == ["clean", "3way", "upstream", "conflict", "clean"]
    rebased = cli(d, "rebase", "1.20", "--onto", "v1.20.3", "--json")
    assert [p["status"] for p in json.loads(rebased.stdout)["patches"]] == forecast[:4]
    assert "kmem = false" in (d.src / "pkg/kubelet/cm/limits_linux.go").read_text()


def test_a_second_series_on_the_same_minor_lives_beside_the_first(distro: Distro) -> None:
    """Item 11: distros keep several lines per Kubernetes minor (EKS-D ``1-20`` and variants):
    ``1.20-tke`` is started from ``1.20`` and both are prepared side by side."""
    res = cli(distro, "new", "1.20-tke", "--from", "1.20", "--onto", "v1.20.1")
    assert res.exit_code == 0, res.output
    assert (distro.root / "releases/1.20-tke.yaml").is_file()
    carried = {p.name for p in (distro.root / "patches/1.20-tke").iterdir()}
    assert carried and carried < {p.name for p in distro.patch_dir.iterdir()}  # one is upstream
    for release in ("1.20", "1.20-tke"):
        assert cli(distro, "source", release).exit_code == 0
    assert (distro.root / "_src/1.20-tke/.git").exists() and distro.src.is_dir()
    listing = cli(distro, "list")
    assert listing.exit_code == 0
    assert "1.20-tke" in listing.stdout and "1.20 " in listing.stdout + " "
