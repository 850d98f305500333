"""Series writes are transactions (issue 24, item 7): `patches export`, `reorder` and
`import`, interrupted at every write the tool makes, leave the series (manifest and patch
files) exactly as before or exactly as after, with no temporary or orphan files; the re-run
completes, and `source` afterwards keeps the imported commits. A run killed after the commit
point is finished by the next one. Also item 5: a patch file another release lists is never
overwritten or deleted by export or reorder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import Result

from tests.helpers.gitrepo import FIXED_DATE, git, write_manifest
from tests.helpers.series import Distro, make_distro
from tests.unit.test_import import plain_diff
from tests.unit.test_rebase import P, cli
from tkedistro.core import files

DATES = {"GIT_AUTHOR_DATE": FIXED_DATE, "GIT_COMMITTER_DATE": FIXED_DATE}
WRITES = {"write", "rename", "remove", "mkdir", "link", "chmod"}
BANNER = {"cmd/kubectl/banner.go": "package main\n\nconst banner = \"tke\"\n"}
DOCS = {"docs/tke.md": "# tke\n"}


def series_of(d: Distro) -> dict[str, bytes]:
    """The manifest and every file in the patch folder, by name (the URL of this test's
    upstream written as @URL@, so two distros compare)."""
    out = {"manifest": d.manifest.read_bytes().replace(d.upstream.url.encode(), b"@URL@")}
    out.update({p.name: p.read_bytes() for p in sorted(d.patch_dir.iterdir())})
    return out


@contextmanager
def interrupted(at: int, *, killed: bool = False) -> Iterator[list[str]]:
    """Ctrl-C right after the ``at``-th write (``killed``: every write from there on fails
    too, as when the process dies and nothing of it runs any more)."""
    seen: list[str] = []

    def watcher(operation: str, path: Path) -> None:
        if operation in WRITES:
            seen.append(f"{operation} {path}")
            if len(seen) == at or (killed and len(seen) > at):
                raise KeyboardInterrupt

    with files.watch(watcher):
        yield seen


@dataclass
class Case:
    """One series write: how to set a distro up for it, run it, and run it again."""

    setup: Callable[[Distro], None]
    run: Callable[[Distro], Result]
    rerun_when_done: bool  # a finished reorder or import is not run again (it would refuse)


def _export_setup(d: Distro) -> None:
    """Rewrite patch 5, drop patch 3, add a new commit: writes, a delete and a new file."""
    shas = git(d.src, "rev-list", "--reverse", "HEAD").split()[-5:]
    (d.src / "cmd/kubelet/main.go").write_text("package main\n\nfunc main() {}\n")
    git(d.src, "commit", "-q", "-a", "--amend", "--no-edit", env=DATES)
    git(d.src, "rebase", "-q", "--onto", shas[1], shas[2], env=DATES)
    (d.src / "docs").mkdir()
    (d.src / "docs/tke.md").write_text("# tke\n")
    git(d.src, "add", "-A")
    git(d.src, "commit", "-q", "-m", "docs: say tke\n\nPatch-Kind: carry\nUpstream-Ref: none\n"
        "Upstream-Status: not-submitted", env=DATES)


def _import_from(d: Distro) -> Path:
    folder = d.root.parent / "third-party"
    if not folder.exists():
        folder.mkdir()
        (folder / "0001-TKE-FIX-banner.patch").write_text(plain_diff(d.src, BANNER))
        (folder / "0002-TKE-FIX-docs.patch").write_text(plain_diff(d.src, DOCS))
    return folder


def _confirm_setup(d: Distro) -> None:
    """Three imported patches whose trailers are inferred or defaulted, so marked."""
    folder = _import_from(d)
    (folder / "0003-revert-pr63066-c.patch").write_text(
        plain_diff(d.src, {"pkg/c/c.go": "package c\n"}))
    res = cli(d, "patches", "import", "1.20", "--from", str(folder))
    assert res.exit_code == 0, res.output


def _resume_setup(d: Distro) -> None:
    """An import of 0001 and 0003: the re-run (with 0002 too) inserts 0002 between them."""
    folder = d.root.parent / "third-party"
    folder.mkdir()
    (folder / "0001-TKE-FIX-banner.patch").write_text(plain_diff(d.src, BANNER))
    (folder / "0003-TKE-FIX-docs.patch").write_text(plain_diff(d.src, DOCS))
    assert cli(d, "patches", "import", "1.20", "--from", str(folder)).exit_code == 0
    (folder / "0002-TKE-FIX-notes.patch").write_text(plain_diff(d.src, {"notes.md": "n\n"}))


CASES = {
    "confirm": Case(_confirm_setup, lambda d: cli(d, "patches", "confirm", "1.20"), True),
    "export": Case(_export_setup, lambda d: cli(d, "patches", "export", "1.20"), True),
    "reorder": Case(lambda d: None, lambda d: cli(
        d, "patches", "reorder", "1.20", "--move", "0005", "--before", "0002"), False),
    "import": Case(lambda d: None, lambda d: cli(
        d, "patches", "import", "1.20", "--from", str(_import_from(d))), False),
    "import-resume": Case(_resume_setup, lambda d: cli(  # issue 28: _src rebuilt from 0002
        d, "patches", "import", "1.20", "--from", str(d.root.parent / "third-party")), True),
}


def _fresh(tmp_path: Path, name: str, case: Case) -> Distro:
    d = make_distro(tmp_path / name)
    case.setup(d)
    return d


def _no_debris(d: Distro) -> None:
    """No temporary file beside the series, no patch file the manifest does not list."""
    listed = {Path(line.split("file: ")[1]).name for line in d.manifest.read_text().splitlines()
              if "file: " in line}
    assert sorted(p.name for p in d.patch_dir.iterdir()) == sorted(listed)
    assert not [p for p in (*d.patch_dir.iterdir(), *d.manifest.parent.iterdir())
                if p.name.endswith(".tmp")]


def _source_keeps_head(d: Distro) -> None:
    head = git(d.src, "rev-parse", "HEAD")
    res = cli(d, "source", "1.20")
    assert res.exit_code == 0, res.output
    assert "up to date" in res.stdout
    assert git(d.src, "rev-parse", "HEAD") == head


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_interrupt_at_every_write_leaves_the_series_before_or_after(
        tmp_path: Path, name: str) -> None:
    case = CASES[name]
    ref = _fresh(tmp_path, "ref", case)
    before = series_of(ref)
    with interrupted(0) as writes:  # never interrupts: counts the writes
        res = case.run(ref)
    assert res.exit_code == 0, res.output
    after = series_of(ref)
    assert after != before and len(writes) > 5
    for at in range(1, len(writes) + 1):
        d = _fresh(tmp_path, f"at{at}", case)
        with interrupted(at):
            res = case.run(d)
        assert res.exit_code == 130, (at, writes[at - 1], res.output)
        assert series_of(d) in (before, after), (at, writes[at - 1])
        _no_debris(d)
        done = series_of(d) == after
        if not done or case.rerun_when_done:
            rerun = case.run(d)
            assert rerun.exit_code == 0, (at, writes[at - 1], rerun.output)
        assert series_of(d) == after, (at, writes[at - 1])
        _no_debris(d)
        state = d.root / "_src/.1.20.tkedistro"
        assert not (state / "series-tx").exists() and not (state / "series-tx.json").exists()
        if name.startswith("import"):
            _source_keeps_head(d)


def _reference(tmp_path: Path, case: Case) -> tuple[dict[str, bytes], int]:
    """The series an uninterrupted run leaves, and the write that is its commit point."""
    ref = _fresh(tmp_path, "ref", case)
    with interrupted(0) as writes:
        assert case.run(ref).exit_code == 0
    journal = next(i for i, w in enumerate(writes, 1) if w.endswith("series-tx.json"))
    return series_of(ref), journal


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_run_killed_after_the_commit_point_is_finished_by_the_next(
        tmp_path: Path, name: str) -> None:
    case = CASES[name]
    after, journal = _reference(tmp_path, case)
    for at in (journal, journal + 2):  # at the commit point, and in the middle of applying
        d = _fresh(tmp_path, f"at{at}", case)
        with interrupted(at, killed=True):
            assert case.run(d).exit_code == 130
        assert (d.root / "_src/.1.20.tkedistro/series-tx.json").is_file()
        nothing = cli(d, "patches", "reorder", "1.20", "--move", "0001", "--after", "0001")
        assert nothing.exit_code == 3  # refused, after finishing the interrupted change
        assert "finishing the series change an interrupted run committed" in nothing.stderr
        assert series_of(d) == after
        _no_debris(d)
        assert not (d.root / "_src/.1.20.tkedistro/series-tx").exists()
        if name.startswith("import"):
            _source_keeps_head(d)


@pytest.mark.parametrize("name", sorted(CASES))
def test_source_finishes_a_killed_runs_committed_change_before_reading_the_series(
        tmp_path: Path, name: str) -> None:
    case = CASES[name]
    after, journal = _reference(tmp_path, case)
    d = _fresh(tmp_path, "killed", case)
    with interrupted(journal + 1, killed=True):
        assert case.run(d).exit_code == 130
    res = cli(d, "source", "1.20")
    assert "finishing the series change an interrupted run committed" in res.stderr
    assert series_of(d) == after
    if name == "export":  # the exported commits are noted as the series after the swap:
        # a kill before that leaves them the maintainer's, kept until export notes them
        assert res.exit_code == 8 and "tkedistro patches export 1.20" in res.stderr
        assert cli(d, "patches", "export", "1.20").exit_code == 0
        assert series_of(d) == after
        res = cli(d, "source", "1.20")
    assert res.exit_code == 0, res.output
    _no_debris(d)
    assert not (d.root / "_src/.1.20.tkedistro/series-tx.json").exists()


def test_a_damaged_journal_is_refused_with_how_to_recover(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    journal = d.root / "_src/.1.20.tkedistro/series-tx.json"
    journal.write_text('{"version": 1, "writes": [{"file": "../../etc/passwd", "staged": "0", '
                       '"sha256": "' + "0" * 64 + '"}], "deletes": [], "manifest": null, '
                       '"record": null}\n')
    before = series_of(d)
    res = cli(d, "patches", "export", "1.20")
    assert res.exit_code == 17
    assert res.stderr.splitlines() == [
        "error: _src/.1.20.tkedistro/series-tx.json: not a version-1 series journal tkedistro "
        "wrote; tkedistro cannot finish the interrupted series change it describes",
        "hint: delete _src/.1.20.tkedistro/series-tx.json and _src/.1.20.tkedistro/series-tx/ "
        "to drop it, then check releases/1.20.yaml and the patch files (git status) and re-run"]
    assert series_of(d) == before


# --- item 5: a patch file two releases list ---------------------------------------------

def _second_release(d: Distro) -> None:
    """Release 1.20-lts lists 1.20's third patch file too."""
    write_manifest(d.root, "1.20-lts", url=d.upstream.url, tag="v1.20.0",
                   commit=d.upstream.tags["v1.20.0"], patches=[P[2]])


def test_export_never_deletes_or_overwrites_a_file_another_release_lists(
        tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    _second_release(d)
    shas = git(d.src, "rev-list", "--reverse", "HEAD").split()[-5:]
    git(d.src, "rebase", "-q", "--onto", shas[1], shas[2])  # drop patch 3
    before = series_of(d)
    shared = (d.root / P[2]).read_bytes()
    res = cli(d, "patches", "export", "1.20")
    assert res.exit_code == 3
    assert res.stderr.splitlines() == [
        f"error: {P[2]}: listed by releases/1.20-lts.yaml too; `patches export 1.20` would "
        "overwrite or delete it, and release 1.20-lts still needs it",
        "hint: give release 1.20 its own copy (copy the file under patches/1.20/ and list the "
        "copy in releases/1.20.yaml), then re-run"]
    assert series_of(d) == before and (d.root / P[2]).read_bytes() == shared
    assert not (d.root / "_src/.1.20.tkedistro/series-tx").exists()


def test_export_of_a_change_to_a_shared_patch_is_refused(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    _second_release(d)
    assert cli(d, "patches", "export", "1.20").exit_code == 0  # unchanged: nothing refused
    shas = git(d.src, "rev-list", "--reverse", "HEAD").split()[-5:]
    git(d.src, "checkout", "-q", shas[2])
    git(d.src, "commit", "-q", "--amend", "-m", "feature: add TKEFeature, reworded\n\n"
        "Patch-Kind: backport\nUpstream-Ref: https://github.com/kubernetes/kubernetes/pull/9\n"
        "Upstream-Status: merged", env=DATES)
    git(d.src, "cherry-pick", shas[3], shas[4], env=DATES)
    shared = (d.root / P[2]).read_bytes()
    res = cli(d, "patches", "export", "1.20")
    assert res.exit_code == 3
    assert res.stderr.startswith(f"error: {P[2]}: listed by releases/1.20-lts.yaml too")
    assert (d.root / P[2]).read_bytes() == shared


def test_reorder_never_renames_away_a_file_another_release_lists(tmp_path: Path) -> None:
    d = make_distro(tmp_path, prepare=False)
    _second_release(d)
    before = series_of(d)
    res = cli(d, "patches", "reorder", "1.20", "--move", "0005", "--before", "0002",
              "--renumber")  # issue 28: only --renumber renames the files not moved
    assert res.exit_code == 3
    assert res.stderr.splitlines()[0] == (
        f"error: {P[2]}: listed by releases/1.20-lts.yaml too; `patches reorder 1.20` would "
        "overwrite or delete it, and release 1.20-lts still needs it")
    assert series_of(d) == before
    moved = cli(d, "patches", "reorder", "1.20", "--move", "0005", "--after", "0003",
                "--renumber")
    assert moved.exit_code == 0, moved.output  # 0001-0003 keep their names
    assert (d.root / P[2]).is_file()
