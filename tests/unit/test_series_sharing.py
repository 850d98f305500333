"""Issue 24 items 5 and 6 for `rebase` and `new`, through the CLI: a patch file another
release lists is never deleted or overwritten, `new` gives every copy its own path, and
every abort (and `--skip`) saves the maintainer's edits to a backup ref and says how to get
them back."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from tests.helpers.gitrepo import git, write_manifest
from tests.helpers.series import Distro, fingerprint, make_distro
from tests.unit.test_rebase import P, cli
from tkedistro.model.manifest import load_manifest

COMMON = "patches/common"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def share(d: Distro, index: int, *, also: str = "1.19") -> str:
    """Move series file ``P[index]`` to ``patches/common/`` and list it in release ``also``
    (a one-patch release on the same pin) as well; its new path."""
    name = Path(P[index]).name
    shared = f"{COMMON}/{name}"
    (d.root / COMMON).mkdir(exist_ok=True)
    (d.root / P[index]).rename(d.root / shared)
    d.manifest.write_text(d.manifest.read_text().replace(P[index], shared))
    pin = load_manifest(d.manifest).upstream
    write_manifest(d.root, also, url=pin.url, tag=pin.tag, commit=pin.commit, patches=[shared])
    return shared


def backup_refs(src: Path) -> list[str]:
    return git(src, "for-each-ref", "--format=%(refname)", "refs/tkedistro/backup/").split()


def run_shown(d: Distro, command: str) -> None:
    """Run the restore command exactly as the tool printed it, from the distro root."""
    subprocess.run(command.split(), cwd=d.root, check=True, capture_output=True)


# -- item 5: files other releases list -----------------------------------------------------------

def test_rebase_keeps_a_dropped_patch_another_release_lists(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    shared = share(d, 2)  # "feature: add TKEFeature": upstream in v1.20.1
    kept = digest(d.root / shared)
    res = cli(d, "rebase", "1.20", "--onto", "v1.20.1")
    assert res.exit_code == 0, res.output
    assert (f"{shared} left the series of 1.20 but is kept: releases/1.19.yaml lists it too"
            in res.stdout.splitlines())
    assert shared not in [e.file for e in load_manifest(d.manifest).patches]
    assert digest(d.root / shared) == kept
    assert cli(d, "validate", "1.19").exit_code == 0


def test_rebase_writes_a_changed_shared_patch_under_a_new_name(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    shared = share(d, 3)  # "README: say tke": conflicts on v1.20.2
    kept = digest(d.root / shared)
    assert cli(d, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    (d.src / "README.md").write_text("# tiny kubernetes (upstream, tke)\n")
    git(d.src, "add", "README.md")
    res = cli(d, "rebase", "1.20", "--continue")
    assert res.exit_code == 0, res.output
    mine = "patches/1.20/0006-README-say-tke.patch"
    assert (f"{shared} is kept as it was (releases/1.19.yaml lists it too); the new version "
            f"for 1.20 is {mine}") in res.stdout.splitlines()
    assert digest(d.root / shared) == kept  # release 1.19 still gets its own bytes
    assert [e.file for e in load_manifest(d.manifest).patches] == [P[0], P[1], mine, P[4]]
    assert "+# tiny kubernetes (upstream, tke)" in (d.root / mine).read_text()
    head = git(d.src, "rev-parse", "HEAD")
    assert cli(d, "source", "1.20").exit_code == 0
    assert git(d.src, "rev-parse", "HEAD") == head  # the new file reproduces the tree
    assert cli(d, "validate", "1.19").exit_code == 0


def same_named(d: Distro) -> str:
    """Release 1.20 lists two different patches both called 0001-kubectl-print-tke.patch:
    its own, and (with P[4]'s change) one in ``patches/common/``."""
    twin = f"{COMMON}/{Path(P[0]).name}"
    (d.root / COMMON).mkdir()
    (d.root / P[4]).rename(d.root / twin)
    d.manifest.write_text(d.manifest.read_text().replace(P[4], twin))
    return twin


def test_new_keeps_two_same_named_patches_apart(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    twin = same_named(d)
    own, common = digest(d.root / P[0]), digest(d.root / twin)
    res = cli(d, "new", "1.21", "--from", "1.20", "--onto", "v1.20.1")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == (
        "created releases/1.21.yaml and patches/1.21/ (4 patches) from release 1.20; check "
        f"go.version and builder.image for the new line; shared with 1.20, not copied: {twin}")
    copy = P[0].replace("/1.20/", "/1.21/")
    assert [e.file for e in load_manifest(d.root / "releases/1.21.yaml").patches] == [
        copy, P[1].replace("/1.20/", "/1.21/"), P[3].replace("/1.20/", "/1.21/"), twin]
    assert digest(d.root / copy) == own and digest(d.root / twin) == common  # nothing lost
    src = d.root / "_src/1.21"
    assert '"kubectl-tke"' in (src / "cmd/kubectl/main.go").read_text()
    assert '"kubelet-tke"' in (src / "cmd/kubelet/main.go").read_text()


def test_new_copies_subfolders_apart_and_abort_removes_them(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    twin = f"patches/1.20/more/{Path(P[0]).name}"
    (d.patch_dir / "more").mkdir()
    (d.root / P[4]).rename(d.root / twin)
    d.manifest.write_text(d.manifest.read_text().replace(P[4], twin))
    before = {p: digest(p) for p in d.root.joinpath("patches").rglob("*") if p.is_file()}
    res = cli(d, "new", "1.21", "--from", "1.20", "--onto", "v1.20.2")
    assert res.exit_code == 7, res.output
    copy = d.root / twin.replace("/1.20/", "/1.21/")
    assert digest(copy) == before[d.root / twin]
    assert digest(d.root / P[0].replace("/1.20/", "/1.21/")) == before[d.root / P[0]]
    abort = cli(d, "rebase", "1.21", "--abort")
    assert abort.exit_code == 0, abort.output
    assert not (d.root / "patches/1.21").exists()
    assert {p: digest(p) for p in d.root.joinpath("patches").rglob("*") if p.is_file()} == before


def test_new_never_overwrites_an_existing_patch_file(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    mine = d.root / P[1].replace("/1.20/", "/1.21/")
    mine.parent.mkdir()
    mine.write_text("someone's work\n")
    res = cli(d, "new", "1.21", "--from", "1.20", "--onto", "v1.20.1")
    assert res.exit_code == 3
    assert res.stderr.startswith(f"error: {P[1].replace('/1.20/', '/1.21/')}: already exists\n")
    assert mine.read_text() == "someone's work\n"
    assert not (d.root / "releases/1.21.yaml").exists()


# -- item 6: every abort keeps work --------------------------------------------------------------

def edit_stopped_tree(src: Path) -> None:
    """A tracked change, an untracked file and a commit made by hand in a stopped rebase."""
    (src / "NOTES").write_text("committed by hand\n")
    (src / "README.md").write_text("first try\n")
    git(src, "add", "NOTES", "README.md")
    git(src, "commit", "-q", "-m", "my notes")
    (src / "README.md").write_text("half resolved\n")
    (src / "scratch.txt").write_text("untracked\n")


def assert_restorable(d: Distro, src: Path, output: str, *, reset: bool = True) -> None:
    """The abort named one backup ref and the command; running it brings every edit back
    (--skip, where the rebase goes on: the edited files only)."""
    [ref] = backup_refs(src)
    shown = src.relative_to(d.root)
    files = "." if reset else "NOTES README.md scratch.txt"
    command = f"git -C {shown} checkout {ref} -- {files}"
    assert (f"warning: edits made during the rebase were saved to {ref}: NOTES, README.md, "
            f"scratch.txt; get them back with: {command}") in output
    assert (src / "README.md").read_text() != "half resolved\n"
    if reset:
        assert not (src / "scratch.txt").exists()
    run_shown(d, command)
    assert (src / "README.md").read_text() == "half resolved\n"
    assert (src / "scratch.txt").read_text() == "untracked\n"
    assert (src / "NOTES").read_text() == "committed by hand\n"


def test_abort_of_a_prepared_tree_saves_every_kind_of_edit(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    before = fingerprint(d)
    assert cli(d, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    edit_stopped_tree(d.src)
    res = cli(d, "rebase", "1.20", "--abort")
    assert res.exit_code == 0, res.output
    assert fingerprint(d) == before
    assert_restorable(d, d.src, res.stderr)


def test_abort_keeps_a_tree_the_rebase_made_when_it_holds_edits(tmp_path: Path) -> None:
    """(A line `tkedistro new` made is dropped whole instead: tests/unit/test_drop.py.)"""
    d = make_distro(tmp_path, prepare=False)
    release = "1.20"
    src = d.root / "_src" / release
    assert cli(d, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    edit_stopped_tree(src)
    res = cli(d, "rebase", release, "--abort")
    assert res.exit_code == 0, res.output
    [ref] = backup_refs(src)
    last = res.stdout.splitlines()[-1]
    assert last == (f"_src/{release} is kept, as the rebase made it, for the edits saved to {ref} "
                    f"(get them back: git -C _src/{release} checkout {ref} -- .); delete "
                    f"_src/{release} when you no longer need them")
    assert git(src, "status", "--porcelain") == ""
    assert_restorable(d, src, res.stderr)
    git(src, "reset", "-q", "--hard")
    git(src, "clean", "-fdq")
    assert cli(d, "source", "1.20").exit_code == 0  # the kept tree is taken up again
    assert backup_refs(src) == [ref]


def test_abort_without_edits_still_removes_a_tree_the_rebase_made(tmp_path: Path) -> None:
    d = make_distro(tmp_path, prepare=False)
    assert cli(d, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    res = cli(d, "rebase", "1.20", "--abort")
    assert res.exit_code == 0, res.output
    assert "saved to" not in res.output
    assert not d.src.exists()


def test_skip_saves_the_edits_it_throws_away(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    assert cli(d, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    edit_stopped_tree(d.src)
    res = cli(d, "rebase", "1.20", "--skip")
    assert res.exit_code == 0, res.output
    assert_restorable(d, d.src, res.stderr, reset=False)  # git keeps untracked files


def test_continue_saves_changes_left_out_of_the_resolution(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    assert cli(d, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7
    (d.src / "README.md").write_text("# tiny kubernetes (upstream, tke)\n")
    git(d.src, "add", "README.md")
    edited = d.src / "cmd/kubectl/main.go"
    mine = edited.read_text() + "// not staged\n"
    edited.write_text(mine)
    res = cli(d, "rebase", "1.20", "--continue")
    assert res.exit_code == 0, res.output
    [ref] = backup_refs(d.src)
    command = f"git -C _src/1.20 checkout {ref} -- cmd/kubectl/main.go"
    assert (f"warning: edits made during the rebase were saved to {ref}: cmd/kubectl/main.go; "
            f"get them back with: {command}") in res.stderr
    assert "// not staged" not in (d.root / P[0]).read_text()  # not part of the series
    run_shown(d, command)
    assert edited.read_text() == mine
    assert git(d.src, "status", "--porcelain") == "M  cmd/kubectl/main.go"  # nothing else


def test_abort_keeps_a_made_tree_holding_what_skip_saved(tmp_path: Path) -> None:
    """Edits --skip saved live in the tree the rebase made: a later --abort keeps it."""
    from tests.helpers.series import LIMITS

    d = make_distro(tmp_path, prepare=False)
    d.upstream.commit({"pkg/kubelet/cm/limits.go": LIMITS.replace("kmem = true", "kmem = 0")},
                      "cm: kmem off by number", tag="v1.20.3")
    assert cli(d, "rebase", "1.20", "--onto", "v1.20.3").exit_code == 7  # patch 2 conflicts
    (d.src / "scratch.txt").write_text("untracked\n")
    skip = cli(d, "rebase", "1.20", "--skip")
    assert skip.exit_code == 7, skip.output  # patch 4 conflicts next
    [ref] = backup_refs(d.src)
    res = cli(d, "rebase", "1.20", "--abort")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[-1].startswith(
        f"_src/1.20 is kept, as the rebase made it, for the edits saved to {ref} ")
    assert backup_refs(d.src) == [ref]
