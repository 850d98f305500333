"""`tkedistro patches export`: deterministic, minimal, names and numbers kept."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.helpers.gitrepo import FIXED_DATE, git
from tests.helpers.series import Distro, make_distro
from tests.unit.test_rebase import P, cli
from tkedistro.model.manifest import load_manifest
from tkedistro.series.export import export_series

DATES = {"GIT_AUTHOR_DATE": FIXED_DATE, "GIT_COMMITTER_DATE": FIXED_DATE}


@pytest.fixture
def distro(tmp_path: Path) -> Distro:
    return make_distro(tmp_path)


def snapshot(d: Distro) -> dict[str, tuple[str, int]]:
    files = [d.manifest, *sorted(d.patch_dir.iterdir())]
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in files}


def test_unchanged_series_writes_no_byte_twice(distro: Distro) -> None:
    before = snapshot(distro)
    for _ in range(2):
        res = cli(distro, "patches", "export", "1.20")
        assert res.exit_code == 0, res.output
        assert res.stdout.splitlines()[-1] == "1.20: 5 unchanged; 0 bytes written"
        assert snapshot(distro) == before  # not even rewritten with the same bytes


def test_only_the_changed_patch_is_rewritten_and_stays_stable(distro: Distro) -> None:
    before = snapshot(distro)
    (distro.src / "cmd/kubelet/main.go").write_text("package main\n\nfunc main() {}\n")
    git(distro.src, "commit", "-q", "-a", "--amend", "--no-edit", env=DATES)
    res = export_series(distro.workspace(), "1.20")
    assert [(e.file, e.action) for e in res.entries] == [
        (P[0], "unchanged"), (P[1], "unchanged"), (P[2], "unchanged"), (P[3], "unchanged"),
        (P[4], "rewritten")]
    after = snapshot(distro)
    changed = sorted(name for name in after if after[name] != before[name])
    assert changed == [Path(P[4]).name]
    text = (distro.root / P[4]).read_text()
    assert text.startswith(f"From {'0' * 40} Mon Sep 17 00:00:00 2001\n")
    assert "\n-- \n" not in text  # no tool-version footer
    assert "\nindex " in text and "Patch-Kind: carry" in text
    assert export_series(distro.workspace(), "1.20").bytes_written == 0


def test_a_dropped_commit_removes_its_file_without_renumbering(distro: Distro) -> None:
    third = git(distro.src, "rev-list", "--reverse", "HEAD")  # base + 5 patches
    shas = third.split()[-5:]
    git(distro.src, "rebase", "-q", "--onto", shas[1], shas[2])
    res = export_series(distro.workspace(), "1.20")
    assert [(e.file, e.action) for e in res.entries if e.action != "unchanged"] == [
        (P[2], "removed")]
    assert not (distro.root / P[2]).exists()
    assert [e.file for e in load_manifest(distro.manifest).patches] == [P[0], P[1], P[3], P[4]]
    assert sorted(p.name for p in distro.patch_dir.iterdir()) == sorted(
        Path(p).name for p in (P[0], P[1], P[3], P[4]))


def test_a_new_commit_gets_the_next_number_and_a_name_from_its_subject(distro: Distro) -> None:
    (distro.src / "cmd/kubeadm").mkdir(parents=True)
    (distro.src / "cmd/kubeadm/main.go").write_text("package main\n")
    git(distro.src, "add", "-A")
    git(distro.src, "commit", "-q", "-m",
        "kubeadm: add stub (TKE)\n\nPatch-Kind: carry\nUpstream-Ref: none\n"
        "Upstream-Status: not-submitted", env=DATES)
    res = cli(distro, "patches", "export", "1.20")
    assert res.exit_code == 0, res.output
    new = "patches/1.20/0006-kubeadm-add-stub-TKE.patch"
    assert f"added      {new}  kubeadm: add stub (TKE)" in res.stdout
    assert [e.file for e in load_manifest(distro.manifest).patches] == [*P, new]
    assert "Upstream-Status: not-submitted" in (distro.root / new).read_text()
    assert cli(distro, "patches", "export", "1.20").stdout.splitlines()[-1] == (
        "1.20: 6 unchanged; 0 bytes written")


def test_a_reworded_commit_keeps_its_file_name(distro: Distro) -> None:
    git(distro.src, "commit", "-q", "--amend", "-m",
        "kubelet: print tke (reworded)\n\nPatch-Kind: carry\nUpstream-Ref: none\n"
        "Upstream-Status: not-submitted", env=DATES)
    res = export_series(distro.workspace(), "1.20")
    assert [(e.file, e.action) for e in res.entries][-1] == (P[4], "rewritten")
    assert "Subject: [PATCH] kubelet: print tke (reworded)" in (distro.root / P[4]).read_text()
    assert [e.file for e in load_manifest(distro.manifest).patches] == P


def test_export_without_a_prepared_tree(tmp_path: Path) -> None:
    d = make_distro(tmp_path, prepare=False)
    res = cli(d, "patches", "export", "1.20")
    assert res.exit_code == 8
    assert res.stderr == ("error: _src/1.20: no prepared source tree to export from\n"
                          "hint: run: tkedistro source 1.20\n")
