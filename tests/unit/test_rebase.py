"""`tkedistro rebase`: clean / 3-way / already upstream / conflict, --continue, --skip,
--abort (byte-identical), crash recovery, refusals — in-process through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from tests.helpers.gitrepo import git
from tests.helpers.series import TRAILERS, Distro, fingerprint, make_distro
from tkedistro.core.errors import RebaseStateError
from tkedistro.core.rebasemark import refuse_if_rebasing
from tkedistro.model.manifest import load_manifest
from tkedistro.series import rebase as rebase_mod
from tkedistro.series import replay
from tkedistro.series.rebase import abort_rebase, continue_rebase, rebase, suggest_version
from tkedistro.series.state import state_path
from tkedistro.source.prepare import prepare_source

P = [
    "patches/1.20/0001-kubectl-print-tke.patch",
    "patches/1.20/0002-kubelet-kmem-accounting-off.patch",
    "patches/1.20/0003-feature-add-TKEFeature.patch",
    "patches/1.20/0004-README-say-tke.patch",
    "patches/1.20/0005-kubelet-print-tke.patch",
]
NEXT = [
    "resolve the conflicts in _src/1.20, stage them (git -C _src/1.20 add FILE), then run one of:",
    "  tkedistro rebase 1.20 --continue",
    "  tkedistro rebase 1.20 --skip      (drop this patch from the series)",
    "  tkedistro rebase 1.20 --abort     (put everything back as it was)",
]


def make_app() -> typer.Typer:
    from tkedistro.cli.app import app

    return app


def cli(d: Distro, *args: str) -> Result:
    return CliRunner().invoke(make_app(), ["--root", str(d.root), *args])


@pytest.fixture
def distro(tmp_path: Path) -> Distro:
    return make_distro(tmp_path)


def table_row(result: Result, n: int) -> str:
    return next(line for line in result.stdout.splitlines() if line.startswith(f"  {n:>3}  "))


def test_clean_3way_and_upstream_patches_rebase_and_update_the_pin(distro: Distro) -> None:
    before = {p: (distro.root / p).read_bytes() for p in P}
    res = cli(distro, "rebase", "1.20", "--onto", "v1.20.1")
    assert res.exit_code == 0, res.output
    rows = [table_row(res, n).split(None, 2)[2] for n in range(1, 6)]
    up = distro.upstream.tags["v1.20.1"]
    assert rows == [
        "applied clean",
        "applied with 3-way",
        f"already upstream — dropped: {up[:12]} (patch-id) feature: add TKEFeature (#9) "
        "[Upstream-Ref: https://github.com/kubernetes/kubernetes/pull/9]",
        "applied clean",
        "applied clean",
    ]
    out = res.stdout
    assert f"note: {P[2]} removed from the series (already upstream in {up[:12]})" in out
    assert ("distro_version: v1.20.0-tke.1 -> v1.20.1-tke.1 (suggested; edit "
            "releases/1.20.yaml to change it)") in out
    m = load_manifest(distro.manifest)
    assert (m.upstream.tag, m.upstream.commit, m.distro_version) == ("v1.20.1", up, "v1.20.1-tke.1")
    assert [e.file for e in m.patches] == [P[0], P[1], P[3], P[4]]
    assert not (distro.root / P[2]).exists()
    for p in (P[0], P[3], P[4]):  # unchanged patches keep their bytes
        assert (distro.root / p).read_bytes() == before[p]
    assert (distro.root / P[1]).read_bytes() != before[P[1]]
    assert not state_path(distro.workspace(), "1.20").exists()
    assert git(distro.src, "symbolic-ref", "--short", "HEAD") == "tkedistro"
    assert git(distro.src, "status", "--porcelain") == ""


def test_regenerated_series_reproduces_the_rebased_tree_with_tkedistro_source(
        distro: Distro) -> None:
    assert cli(distro, "rebase", "1.20", "--onto", "v1.20.1").exit_code == 0
    rebased = git(distro.src, "rev-parse", "HEAD")
    result = prepare_source(distro.workspace(), "1.20")
    assert result.head_commit == rebased  # same commits, same SHAs from the patch files


def test_conflict_stops_with_files_and_next_commands_then_continue(distro: Distro) -> None:
    res = cli(distro, "rebase", "1.20", "--onto", "v1.20.2")
    assert res.exit_code == 7
    assert table_row(res, 4).split(None, 2)[2] == "conflict: README.md"
    lines = res.stdout.splitlines()
    start = lines.index(f"stopped at patch 4 of 5 ({P[3]}); conflicted files:")
    assert lines[start + 1] == "  README.md"
    assert lines[-4:] == NEXT
    assert res.stderr.splitlines()[-1] == (
        f"error: rebase of 1.20 stopped: patch 4 of 5 ({P[3]}) conflicts")
    assert "<<<<<<<" in (distro.src / "README.md").read_text()

    again = cli(distro, "rebase", "1.20", "--continue")
    assert again.exit_code == 7
    assert "error: patch 4 (patches/1.20/0004-README-say-tke.patch): still conflicted: README.md" \
        in again.stderr

    (distro.src / "README.md").write_text("# tiny kubernetes (upstream, tke)\n")
    git(distro.src, "add", "README.md")
    done = cli(distro, "rebase", "1.20", "--continue")
    assert done.exit_code == 0, done.output
    assert table_row(done, 4).split(None, 2)[2] == "conflict resolved"
    assert table_row(done, 5).split(None, 2)[2] == "applied clean"
    assert "rebased 1.20 onto v1.20.2: 4 patches kept, 1 dropped" in done.stdout
    m = load_manifest(distro.manifest)
    assert m.upstream.tag == "v1.20.2" and [e.file for e in m.patches] == [P[0], P[1], P[3], P[4]]
    assert "+# tiny kubernetes (upstream, tke)" in (distro.root / P[3]).read_text()
    rebased = git(distro.src, "rev-parse", "HEAD")
    assert prepare_source(distro.workspace(), "1.20").head_commit == rebased


def test_skip_drops_the_conflicting_patch_from_the_series(distro: Distro) -> None:
    assert cli(distro, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    res = cli(distro, "rebase", "1.20", "--skip")
    assert res.exit_code == 0, res.output
    assert table_row(res, 4).split(None, 2)[2] == "skipped — dropped"
    assert f"note: {P[3]} removed from the series (skipped at your request)" in res.stdout
    assert [e.file for e in load_manifest(distro.manifest).patches] == [P[0], P[1], P[4]]
    assert not (distro.root / P[3]).exists()
    assert (distro.src / "README.md").read_text() == "# tiny kubernetes (upstream)\n"


def test_abort_restores_manifest_patches_and_src_byte_identical(distro: Distro) -> None:
    before = fingerprint(distro)
    assert cli(distro, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    (distro.src / "README.md").write_text("half resolved\n")
    (distro.src / "scratch.txt").write_text("notes\n")
    res = cli(distro, "rebase", "1.20", "--abort")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[-1] == (
        "rebase aborted: releases/1.20.yaml, patches/1.20/ and _src/1.20 are back as they were")
    assert fingerprint(distro) == before
    assert not state_path(distro.workspace(), "1.20").exists()
    ref = git(distro.src, "for-each-ref", "--format=%(refname)", "refs/tkedistro/backup/")
    assert git(distro.src, "show", f"{ref}:scratch.txt") == "notes"  # the edits are kept
    assert f"warning: edits made during the rebase were saved to {ref}" in res.stderr


def test_abort_after_finished_patches_restores_even_rewritten_files(distro: Distro) -> None:
    before = fingerprint(distro)
    assert cli(distro, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    (distro.root / P[1]).write_text("scribbled over\n")  # as if export had run
    (distro.root / "patches/1.20/0009-new.patch").write_text("new\n")
    assert cli(distro, "rebase", "1.20", "--abort").exit_code == 0
    assert fingerprint(distro) == before


def test_abort_without_a_prepared_tree_removes_it_again(tmp_path: Path) -> None:
    d = make_distro(tmp_path, prepare=False)
    before = fingerprint(d)
    assert cli(d, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    assert d.src.is_dir()
    assert cli(d, "rebase", "1.20", "--abort").exit_code == 0
    assert not d.src.exists()
    assert fingerprint(d) == before


def test_other_commands_refuse_mid_rebase(distro: Distro) -> None:
    assert cli(distro, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    expected = ("error: release 1.20 is mid-rebase onto v1.20.2; finish or abandon the rebase "
                "first\nhint: tkedistro rebase 1.20 --continue | --skip | --abort\n")
    for command in (("patches", "export", "1.20"), ("source", "1.20"), ("build", "1.20")):
        res = cli(distro, *command)
        assert res.exit_code == 17, command
        assert res.stderr.endswith(expected), command  # build announces its first step
    again = cli(distro, "rebase", "1.20", "--onto", "v1.20.1")
    assert again.exit_code == 17
    assert again.stderr.startswith("error: release 1.20 is already mid-rebase onto v1.20.2\n")
    with pytest.raises(RebaseStateError):
        refuse_if_rebasing(distro.workspace().release("1.20"))


def test_continue_without_a_rebase_says_how_to_start_one(distro: Distro) -> None:
    res = cli(distro, "rebase", "1.20", "--continue")
    assert res.exit_code == 17
    assert "error: release 1.20 is not being rebased" in res.stderr
    assert "hint: start one with: tkedistro rebase 1.20 --onto TAG" in res.stderr


def test_exactly_one_action_is_required(distro: Distro) -> None:
    res = cli(distro, "rebase", "1.20", "--onto", "v1.20.1", "--abort")
    assert res.exit_code == 2
    assert "give exactly one of --onto TAG, --continue, --skip, --abort" in res.stderr


def test_pinned_commit_must_match_the_tag(distro: Distro) -> None:
    before = fingerprint(distro)
    res = cli(distro, "rebase", "1.20", "--onto", "v1.20.1", "--commit", "0" * 40)
    assert res.exit_code == 6
    found = distro.upstream.tags["v1.20.1"]
    assert (f"error: tag v1.20.1 of {distro.upstream.url} points to commit {found}, "
            f"but --commit {'0' * 40} was given") in res.stderr
    assert fingerprint(distro) == before


def test_refuses_uncommitted_changes_in_src(distro: Distro) -> None:
    (distro.src / "README.md").write_text("my edit\n")
    before = fingerprint(distro)
    res = cli(distro, "rebase", "1.20", "--onto", "v1.20.1")
    assert res.exit_code == 8
    assert res.stderr.startswith(
        "error: _src/1.20 holds work in progress (uncommitted changes in 1 file(s)); "
        "a rebase would lose it\n  README.md\n")
    assert fingerprint(distro) == before


def test_refuses_commits_not_exported(distro: Distro) -> None:
    (distro.src / "NOTES").write_text("x\n")
    git(distro.src, "add", "NOTES")
    git(distro.src, "commit", "-q", "-m", "my fix")
    res = cli(distro, "rebase", "1.20", "--onto", "v1.20.1")
    assert res.exit_code == 8
    assert ("error: _src/1.20 holds commits that are not in the patch files; a rebase would "
            "lose them\n  added: patches/1.20/0006-my-fix.patch\n"
            "hint: run `tkedistro patches export 1.20` first, then rebase") in res.stderr


def test_json_output(distro: Distro) -> None:
    res = cli(distro, "rebase", "1.20", "--onto", "v1.20.1", "--json")
    data = json.loads(res.stdout)
    assert data["status"] == "done"
    assert [p["status"] for p in data["patches"]] == ["clean", "3way", "upstream", "clean",
                                                       "clean"]
    assert data["dropped"] == [P[2]]
    assert data["distro_version"] == {"old": "v1.20.0-tke.1", "suggested": "v1.20.1-tke.1"}


class PowerCut(Exception):
    pass


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("then", ["continue", "abort"])
def test_crash_mid_rebase_recovers(distro: Distro, monkeypatch: pytest.MonkeyPatch,
                                   when: str, then: str) -> None:
    before = fingerprint(distro)
    real = replay.apply_batch

    def crashing(*args: Any, **kwargs: Any) -> Any:
        if when == "after":
            real(*args, **kwargs)  # the commits are made, the state does not know yet
        raise PowerCut()

    monkeypatch.setattr(rebase_mod, "apply_batch", crashing)
    ws = distro.workspace()
    with pytest.raises(PowerCut):
        rebase(ws, "1.20", "v1.20.1")
    monkeypatch.setattr(rebase_mod, "apply_batch", real)
    assert state_path(ws, "1.20").exists()
    if then == "abort":
        abort_rebase(ws, "1.20")
        assert fingerprint(distro) == before
        return
    result = continue_rebase(ws, "1.20")
    assert result.status == "done"
    assert [o.status for o in result.outcomes] == ["clean", "3way", "upstream", "clean", "clean"]
    assert load_manifest(distro.manifest).upstream.tag == "v1.20.1"
    assert git(distro.src, "status", "--porcelain") == ""


def test_crash_after_a_resolved_conflict_keeps_the_resolution(
        distro: Distro, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = distro.workspace()
    assert cli(distro, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    (distro.src / "README.md").write_text("# resolved\n")
    git(distro.src, "add", "README.md")

    def crashing(*args: Any, **kwargs: Any) -> Any:
        raise PowerCut()

    monkeypatch.setattr(rebase_mod, "apply_batch", crashing)
    with pytest.raises(PowerCut):
        continue_rebase(ws, "1.20")
    monkeypatch.undo()
    result = continue_rebase(ws, "1.20")
    assert [o.status for o in result.outcomes] == ["clean", "3way", "upstream", "resolved",
                                                   "clean"]
    assert "+# resolved" in (distro.root / P[3]).read_text()


def test_suggest_version() -> None:
    assert suggest_version("v1.20.2-tke.1", "v1.20.2", "v1.20.3") == "v1.20.3-tke.1"
    assert suggest_version("v1.20.2-tke.4", "v1.20.2", "v1.20.3") == "v1.20.3-tke.1"
    assert suggest_version("v9.9.9-x", "v1.20.2", "v1.21.0") == "v1.21.0-tke.1"


def test_new_release_line_from_an_old_series(distro: Distro) -> None:
    before = fingerprint(distro)
    res = cli(distro, "new", "1.21", "--from", "1.20", "--onto", "v1.20.1")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == (
        "created releases/1.21.yaml and patches/1.21/ (5 patches) from release 1.20; "
        "check go.version and builder.image for the new line")
    m = load_manifest(distro.root / "releases/1.21.yaml")
    assert (m.release, m.upstream.tag, m.distro_version) == ("1.21", "v1.20.1", "v1.20.1-tke.1")
    assert [e.file for e in m.patches] == [p.replace("/1.20/", "/1.21/")
                                           for p in (P[0], P[1], P[3], P[4])]
    assert (distro.root / "_src/1.21/cmd/kubelet/main.go").read_text().count("kubelet-tke") == 1
    assert fingerprint(distro) == before  # the old line is untouched
    again = cli(distro, "new", "1.21", "--from", "1.20", "--onto", "v1.20.1")
    assert again.exit_code == 3
    assert again.stderr.startswith("error: releases/1.21.yaml: already exists\n")


def test_a_plain_diff_in_the_series_is_replayed_and_kept_as_it_is(tmp_path: Path) -> None:
    d = make_distro(tmp_path, prepare=False)
    mail = (d.root / P[4]).read_text()
    diff = mail[mail.index("diff --git"):].removesuffix("-- \n2.39.5\n\n")
    (d.root / P[4]).write_text(f"{TRAILERS}\n\n{diff}")  # source checks trailers
    text = d.manifest.read_text().replace(f"  - file: {P[4]}\n",
                                          f"  - file: {P[4]}\n    subject: 'kubelet: print tke'\n")
    d.manifest.write_text(text)
    plain = (d.root / P[4]).read_bytes()
    prepare_source(d.workspace(), "1.20")
    res = cli(d, "rebase", "1.20", "--onto", "v1.20.1")
    assert res.exit_code == 0, res.output
    assert table_row(res, 5).split(None, 2)[2] == "applied clean"
    assert (d.root / P[4]).read_bytes() == plain
    assert git(d.src, "log", "-1", "--format=%an %s") == "tkedistro kubelet: print tke"
    rebased = git(d.src, "rev-parse", "HEAD")
    assert prepare_source(d.workspace(), "1.20").head_commit == rebased


def test_a_stale_tree_is_not_work_in_progress(distro: Distro) -> None:
    """Patch files edited or added after `tkedistro source` ran: the files are the truth."""
    text = (distro.root / P[0]).read_text().replace('"kubectl-tke"', '"kubectl-tke2"')
    (distro.root / P[0]).write_text(text)
    res = cli(distro, "rebase", "1.20", "--onto", "v1.20.1")
    assert res.exit_code == 0, res.output
    assert '"kubectl-tke2"' in (distro.src / "cmd/kubectl/main.go").read_text()
    assert (distro.root / P[0]).read_text() == text
