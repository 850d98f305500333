"""Issue 28, item 4: an import resumes (only what is missing, each at its position in the
series and in `_src`), and `patches reorder` keeps the numbers of the files it does not move."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.gitrepo import K8S_LIKE_FILES, git
from tests.helpers.series import Distro, make_distro
from tests.unit.test_import import PNG, plain_diff
from tests.unit.test_rebase import P, cli
from tkedistro.model.manifest import load_manifest

SUBJECTS = ["TKE FIX banner", "TKE FIX logo", "TKE FIX limits", "TKE FIX readme",
            "TKE FIX notes"]
NAMES = ["0001-TKE-FIX-banner.patch", "0002-TKE-FIX-logo.patch", "0003-TKE-FIX-limits.patch",
         "0004-TKE-FIX-readme.patch", "0005-TKE-FIX-notes.patch"]
NEW = [f"patches/1.20/{name}" for name in NAMES]


def third_party(d: Distro) -> Path:
    """Five plain diffs; 0002 has a binary diff without index lines (--text-only imports
    its text part) and 0004 was made on an older README (fails until it is fixed)."""
    folder = d.root.parent / "third-party"
    folder.mkdir()
    limits = K8S_LIKE_FILES["pkg/kubelet/cm/limits.go"].replace("line3 = 3", "line3 = 33")
    stale = plain_diff(d.src, {"README.md": "# tiny kubernetes (tke)\nmore\n"})
    stale = "\n".join(line for line in stale.split("\n") if not line.startswith("index "))
    diffs = [plain_diff(d.src, {"cmd/kubectl/banner.go": "package main\n\nconst b = 1\n"}),
             plain_diff(d.src, {"docs/logo.png": PNG, "docs/logo.md": "the logo\n"}),
             plain_diff(d.src, {"pkg/kubelet/cm/limits.go": limits}),
             stale.replace(" # tiny kubernetes (tke)", " # an older README"),
             plain_diff(d.src, {"docs/notes.md": "notes\n"})]
    for name, diff in zip(NAMES, diffs, strict=True):
        (folder / name).write_text(diff)
    return folder


def fix_readme(d: Distro, folder: Path) -> None:
    """The maintainer remakes 0004 on the current README."""
    (folder / NAMES[3]).write_text(plain_diff(d.src, {"README.md": "# tiny kubernetes (tke)\n"
                                                      "more\n"}))


def summary(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("1.20: "))


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def series(d: Distro) -> list[str]:
    return [e.file for e in load_manifest(d.manifest).patches]


def src_subjects(d: Distro, count: int) -> list[str]:
    return git(d.src, "log", f"-{count}", "--format=%s").splitlines()[::-1]


def test_rerunning_an_import_imports_only_the_missing_at_their_positions(
        tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    folder = third_party(d)
    first = cli(d, "patches", "import", "1.20", "--from", str(folder))
    assert first.exit_code == 7
    assert "--text-only" in first.stderr  # the hint this test follows
    assert series(d) == [*P, NEW[0], NEW[2], NEW[4]]
    base = git(d.src, "rev-parse", "HEAD~3")  # the commit of the last own patch

    again = cli(d, "patches", "import", "1.20", "--from", str(folder), "--text-only")
    assert again.exit_code == 7  # 0004 still does not apply
    assert again.stdout.splitlines()[0] == (
        f"already imported  {NAMES[0]} (in the series as {NEW[0]})")
    assert again.stdout.splitlines()[1] == f"imported  {NAMES[1]} -> {NEW[1]}"
    assert summary(again.stdout) == (
        f"1.20: 1 of 2 patches imported from {folder}; 3 already in the series")
    assert errors(again.stderr) == [
        f"error: 1 patch(es) could not be imported as they are: {NAMES[3]}"]
    assert series(d) == [*P, NEW[0], NEW[1], NEW[2], NEW[4]]
    assert src_subjects(d, 4) == [SUBJECTS[0], SUBJECTS[1], SUBJECTS[2], SUBJECTS[4]]
    assert git(d.src, "rev-parse", "HEAD~4") == base  # the own patches' commits reused

    fix_readme(d, folder)
    done = cli(d, "patches", "import", "1.20", "--from", str(folder), "--text-only", "--json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert (data["imported"], data["failed"]) == (1, [])
    assert data["already_imported"] == {NAMES[i]: NEW[i] for i in (0, 1, 2, 4)}
    assert series(d) == [*P, *NEW]
    assert sorted(p.name for p in d.patch_dir.iterdir()) == sorted(
        Path(f).name for f in series(d))
    assert src_subjects(d, 5) == SUBJECTS
    head = git(d.src, "rev-parse", "HEAD")
    src = cli(d, "source", "1.20")  # the import recorded what it applied, in the new order
    assert (src.exit_code, "up to date" in src.stdout) == (0, True), src.output
    assert git(d.src, "rev-parse", "HEAD") == head
    assert cli(d, "patches", "export", "1.20").stdout.splitlines()[-1] == (
        "1.20: 10 unchanged; 0 bytes written")


def test_importing_only_the_failed_files_lands_them_at_their_positions(
        tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    folder = third_party(d)
    assert cli(d, "patches", "import", "1.20", "--from", str(folder)).exit_code == 7
    fix_readme(d, folder)
    failed = d.root.parent / "failed"
    failed.mkdir()
    for name in (NAMES[1], NAMES[3]):
        (folder / name).rename(failed / name)

    res = cli(d, "patches", "import", "1.20", "--from", str(failed), "--text-only")
    assert res.exit_code == 0, res.output
    assert summary(res.stdout) == f"1.20: 2 of 2 patches imported from {failed}"
    assert series(d) == [*P, *NEW]
    assert src_subjects(d, 5) == SUBJECTS
    assert cli(d, "validate", "1.20").exit_code == 0


def test_an_inserted_patch_that_breaks_a_later_one_imports_nothing(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    folder = d.root.parent / "third-party"
    folder.mkdir()
    notes = {"docs/notes.md": "notes\n"}
    (folder / "0001-TKE-FIX-notes.patch").write_text(plain_diff(d.src, notes))
    (folder / "0003-TKE-FIX-more.patch").write_text(
        plain_diff(d.src, {"docs/more.md": "more\n"}))
    assert cli(d, "patches", "import", "1.20", "--from", str(folder)).exit_code == 0
    head, before = git(d.src, "rev-parse", "HEAD"), series(d)
    (folder / "0002-TKE-FIX-notes-too.patch").write_text(  # docs/more.md made first
        plain_diff(d.src, {"docs/more.md": "other\n"}))
    res = cli(d, "patches", "import", "1.20", "--from", str(folder))
    assert res.exit_code == 7
    assert errors(res.stderr)[0] == (
        "error: patches/1.20/0003-TKE-FIX-more.patch (patch 7 of the series) does not apply "
        "once 0002-TKE-FIX-notes-too.patch is inserted before it: docs/more.md: already "
        "exists in working directory; nothing imported")
    assert (series(d), git(d.src, "rev-parse", "HEAD")) == (before, head)
    assert not (d.patch_dir / "0002-TKE-FIX-notes-too.patch").exists()


def _imported_notes(tmp_path: Path, name: str) -> Distro:
    """A distro whose series ends with a third-party notes patch imported as ``name``
    (a number the series already has: two files share it)."""
    d = make_distro(tmp_path)
    folder = d.root.parent / "third-party"
    folder.mkdir()
    (folder / name).write_text(plain_diff(d.src, {"docs/n.md": "n\n"}))
    assert cli(d, "patches", "import", "1.20", "--from", str(folder)).exit_code == 0
    return d


def test_reorder_resolves_duplicate_numbers(tmp_path: Path) -> None:
    d = _imported_notes(tmp_path, "0005-TKE-FIX-notes.patch")
    twin = "patches/1.20/0005-TKE-FIX-notes.patch"
    assert series(d) == [*P, twin]

    ambiguous = cli(d, "patches", "reorder", "1.20", "--move", "0005", "--before", "0001")
    assert (ambiguous.exit_code, ambiguous.stderr) == (3, (
        f"error: releases/1.20.yaml: patches: '0005' names 2 patches ({P[4]}, {twin}); "
        "give the file name\n"))
    moved = cli(d, "patches", "reorder", "1.20", "--move", "0005-TKE-FIX-notes.patch",
                "--before", "0005-kubelet-print-tke.patch")
    assert moved.exit_code == 0, moved.output
    assert series(d) == [*P[:4], "patches/1.20/0004a-TKE-FIX-notes.patch", P[4]]
    assert cli(d, "patches", "reorder", "1.20", "--move", "0004a", "--after",
               "0005").exit_code == 0
    assert series(d) == [*P, "patches/1.20/0006-TKE-FIX-notes.patch"]


def test_renumber_fixes_duplicate_numbers(tmp_path: Path) -> None:
    d = _imported_notes(tmp_path, "0003-TKE-FIX-notes.patch")
    assert series(d) == [*P, "patches/1.20/0003-TKE-FIX-notes.patch"]
    res = cli(d, "patches", "reorder", "1.20", "--move", "0003-TKE-FIX-notes.patch",
              "--after", "0005", "--renumber")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == (
        "renamed  patches/1.20/0003-TKE-FIX-notes.patch -> patches/1.20/0006-TKE-FIX-notes.patch")
    assert series(d) == [*P, "patches/1.20/0006-TKE-FIX-notes.patch"]
    assert cli(d, "source", "1.20").exit_code == 0
