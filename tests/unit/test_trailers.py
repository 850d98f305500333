"""Issue 28 items 1-2: export completes a patch's trailers (or refuses, naming the commit
and the flags); import marks every inferred trailer, a revert is a carry with ``Reverts:``,
``show`` marks unconfirmed values, ``validate`` warns, ``patches confirm`` clears them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.helpers.gitrepo import FIXED_DATE, git
from tests.helpers.series import Distro, make_distro
from tests.unit.test_import import plain_diff
from tests.unit.test_rebase import P, cli
from tests.unit.test_trust_import import BANNER, PR_URL, folder
from tkedistro.model.patches import parse_patch

DATES = {"GIT_AUTHOR_DATE": FIXED_DATE, "GIT_COMMITTER_DATE": FIXED_DATE}
NEW = "patches/1.20/0006-kubeadm-add-stub.patch"
FLAGS = ("--kind backport|carry|fix --upstream-ref URL|none --upstream-status "
         "merged|submitted|not-submitted|rejected|superseded")


@pytest.fixture
def distro(tmp_path: Path) -> Distro:
    return make_distro(tmp_path)


def snapshot(d: Distro) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in [d.manifest, *sorted(d.patch_dir.iterdir())]}


def commit_by_hand(d: Distro, message: str = "kubeadm: add stub") -> str:
    """What a maintainer does after `source` said "commit it and run patches export"."""
    (d.src / "cmd/kubeadm").mkdir(parents=True)
    (d.src / "cmd/kubeadm/main.go").write_text("package main\n")
    git(d.src, "add", "-A")
    git(d.src, "commit", "-q", "-m", message, env=DATES)
    return git(d.src, "rev-parse", "HEAD").strip()


# --- item 1: export completes a patch ---------------------------------------------------

def test_export_refuses_a_commit_without_trailers_naming_it_and_the_flags(
        distro: Distro) -> None:
    sha = commit_by_hand(distro)
    before = snapshot(distro)
    res = cli(distro, "patches", "export", "1.20")
    assert res.exit_code == 4, res.output
    where = f"commit {sha[:12]} 'kubeadm: add stub' (for {NEW})"
    assert res.stderr.splitlines() == [
        f"error: {where}: trailer Patch-Kind: missing (expected one of backport, carry, fix)",
        f"{where}: trailer Upstream-Ref: missing (expected an upstream PR or commit URL "
        "(https://...), or none)",
        f"{where}: trailer Upstream-Status: missing (expected one of merged, submitted, "
        "not-submitted, rejected, superseded)",
        "nothing was exported",
        f"hint: run `tkedistro patches export 1.20 {FLAGS}` (the flags fill the trailers each "
        "new or changed commit lacks), or write the trailers into each commit's message in "
        "_src/1.20 (`git commit --amend`, `git rebase -i`) and export again"]
    assert snapshot(distro) == before  # nothing written
    assert git(distro.src, "rev-parse", "HEAD").strip() == sha  # nor the commit touched


def test_export_with_the_flags_writes_a_patch_validate_and_source_accept(
        distro: Distro) -> None:
    commit_by_hand(distro)
    readme = distro.src / "README.md"
    kept = readme.read_text()
    readme.write_text(kept + "not committed yet\n")  # the maintainer's uncommitted edit
    (distro.src / "notes.txt").write_text("mine\n")
    res = cli(distro, "patches", "export", "1.20", "--kind", "carry", "--upstream-ref", "none",
              "--upstream-status", "not-submitted")
    assert res.exit_code == 0, res.output
    assert f"added      {NEW}  kubeadm: add stub" in res.stdout
    assert "_src/1.20: gave 1 commit(s) the trailers they lacked; each commit now matches " \
        "its patch file" in res.stderr
    patch = parse_patch(distro.root / NEW)
    assert patch.trailers == {"Patch-Kind": "carry", "Upstream-Ref": "none",
                              "Upstream-Status": "not-submitted"}
    # the commit in _src carries them too, and the maintainer's tree state is kept
    assert git(distro.src, "format-patch", "--no-signature", "--zero-commit", "--full-index",
               "--binary", "-N", "--no-stat", "--stdout", "-1", "HEAD") == \
        (distro.root / NEW).read_text().rstrip("\n")  # (the helper strips the output)
    assert readme.read_text() == kept + "not committed yet\n"
    assert (distro.src / "notes.txt").read_text() == "mine\n"
    assert cli(distro, "validate", "1.20").stdout == "releases/1.20.yaml: ok (6 patches)\n"
    again = cli(distro, "patches", "export", "1.20")
    assert again.stdout.splitlines()[-1] == "1.20: 6 unchanged; 0 bytes written"
    readme.write_text(kept)
    (distro.src / "notes.txt").unlink()
    res = cli(distro, "source", "1.20")
    assert res.exit_code == 0, res.output
    methods = [line.split()[1] for line in res.stdout.splitlines()[1:]]
    assert methods == ["unchanged"] * 5 + ["applied"]  # only the new patch, from its file


def test_trailers_the_commit_message_states_win_and_the_flags_fill_the_rest(
        distro: Distro) -> None:
    commit_by_hand(distro, "kubeadm: add stub\n\nWhy: we need it.\n\nPatch-Kind: fix\n"
                   "Upstream-Ref: none\nSigned-off-by: Dev <dev@example.com>")
    res = cli(distro, "patches", "export", "1.20", "--kind", "carry",
              "--upstream-status", "not-submitted")
    assert res.exit_code == 0, res.output
    patch = parse_patch(distro.root / NEW)
    assert patch.trailers == {"Patch-Kind": "fix", "Upstream-Ref": "none",
                              "Signed-off-by": "Dev <dev@example.com>",
                              "Upstream-Status": "not-submitted"}
    assert patch.body.startswith("Why: we need it.\n\nPatch-Kind: fix\n")


def test_trailers_written_above_the_last_paragraph_are_moved_into_the_trailer_block(
        distro: Distro) -> None:
    commit_by_hand(distro, "kubeadm: add stub\n\nPatch-Kind: carry\nUpstream-Ref: none\n"
                   "Upstream-Status: not-submitted\n\nSigned-off-by: Dev <dev@example.com>")
    res = cli(distro, "patches", "export", "1.20", "--kind", "fix")
    assert res.exit_code == 0, res.output
    assert parse_patch(distro.root / NEW).trailers == {
        "Signed-off-by": "Dev <dev@example.com>", "Patch-Kind": "carry",
        "Upstream-Ref": "none", "Upstream-Status": "not-submitted"}


def test_a_commit_with_all_its_trailers_exports_without_flags(distro: Distro) -> None:
    commit_by_hand(distro, "kubeadm: add stub\n\nPatch-Kind: backport\nUpstream-Ref: "
                   f"{PR_URL}1\nUpstream-Status: merged")
    res = cli(distro, "patches", "export", "1.20")
    assert res.exit_code == 0, res.output
    assert parse_patch(distro.root / NEW).trailer("Upstream-Ref") == f"{PR_URL}1"


def test_export_refuses_a_value_validate_would_refuse(distro: Distro) -> None:
    commit_by_hand(distro)
    before = snapshot(distro)
    res = cli(distro, "patches", "export", "1.20", "--kind", "backprot")
    assert res.exit_code == 4
    assert res.stderr.startswith("error: --kind 'backprot': 'backprot' is not allowed; did "
                                 "you mean 'backport'? (expected one of backport, carry, fix)")
    res = cli(distro, "patches", "export", "1.20", "--kind", "backport",
              "--upstream-ref", "none", "--upstream-status", "merged")
    assert res.exit_code == 4
    assert "trailer Upstream-Ref: a backport must name the upstream PR or commit it comes " \
        "from (got none)" in res.stderr
    assert snapshot(distro) == before


def test_the_hints_that_point_at_export_name_the_flags(distro: Distro) -> None:
    (distro.src / "README.md").write_text("edited\n")
    res = cli(distro, "source", "1.20")
    assert res.exit_code == 8
    assert "give --kind, --upstream-ref and --upstream-status for a commit whose message " \
        "lacks those trailers" in res.stderr


# --- item 2: kinds inferred honestly ----------------------------------------------------

REVERT = "0001-revert-pr63066-banner.patch"


def test_a_revert_is_a_carry_marked_inferred_until_confirmed(distro: Distro) -> None:
    d = distro
    series = folder(d, {REVERT: plain_diff(d.src, BANNER)})
    res = cli(d, "patches", "import", "1.20", "--from", str(series))
    assert res.exit_code == 0, res.output
    name = f"patches/1.20/{REVERT}"
    assert parse_patch(d.root / name).trailers == {
        "Patch-Kind": "carry", "Upstream-Ref": "none", "Upstream-Status": "not-submitted",
        "Reverts": f"{PR_URL}63066", "Trailer-Inferred": "Patch-Kind, Upstream-Ref, Reverts",
        "Trailer-Defaulted": "Upstream-Status"}
    show = cli(d, "show", "1.20").stdout.splitlines()
    assert f"     6. {name}  [carry?, not-submitted?]  revert pr63066 banner" in show
    assert show[-1] == ("  ? = inferred or defaulted by `patches import`, not confirmed yet: "
                        "check it, then run `tkedistro patches confirm 1.20`")
    checked = cli(d, "validate", "1.20")
    assert checked.exit_code == 0
    assert [line.split(": trailer ")[1].split(" by")[0]
            for line in checked.stdout.splitlines()[1:]] == [
        "Patch-Kind was inferred", "Upstream-Ref was inferred", "Upstream-Status was defaulted",
        "Reverts was inferred"]
    assert cli(d, "source", "1.20").exit_code == 0  # the import's commit is current

    res = cli(d, "patches", "confirm", "1.20", REVERT)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        f"confirmed  {name}  Patch-Kind: carry (was inferred), Upstream-Ref: none (was "
        "inferred), Upstream-Status: not-submitted (was defaulted), Reverts: "
        f"{PR_URL}63066 (was inferred)",
        "1.20: confirmed the trailers of 1 of 1 patch(es); run `tkedistro source 1.20` to "
        "bring _src up to date"]
    assert "Trailer-" not in (d.root / name).read_text()
    assert cli(d, "validate", "1.20").stdout == "releases/1.20.yaml: ok (6 patches)\n"
    assert "?" not in cli(d, "show", "1.20").stdout
    res = cli(d, "source", "1.20")
    assert res.exit_code == 0, res.output
    assert [line.split()[1] for line in res.stdout.splitlines()[1:]] == \
        ["unchanged"] * 5 + ["applied"]  # only the confirmed patch is applied again
    assert "Trailer-" not in git(d.src, "log", "-1", "--format=%B")
    assert cli(d, "patches", "confirm", "1.20").stdout == (
        "1.20: nothing to confirm in 6 patch(es); no inferred or defaulted trailers are "
        "marked\n")


def test_a_revert_message_names_the_commit_it_undoes(distro: Distro) -> None:
    d = distro
    sha = "0123456789abcdef0123456789abcdef01234567"
    series = folder(d, {"0001-TKE-FIX-undo.patch": f'Revert "kubectl: banner"\n\nThis reverts '
                        f"commit {sha}.\n\n" + plain_diff(d.src, BANNER)})
    assert cli(d, "patches", "import", "1.20", "--from", str(series)).exit_code == 0
    patch = parse_patch(d.patch_dir / "0001-TKE-FIX-undo.patch")
    assert (patch.trailer("Patch-Kind"), patch.trailer("Reverts")) == (
        "carry", f"https://github.com/kubernetes/kubernetes/commit/{sha}")


def test_confirm_all_clears_every_patch_and_names_an_unknown_one(distro: Distro) -> None:
    d = distro
    series = folder(d, {REVERT: plain_diff(d.src, BANNER)})
    assert cli(d, "patches", "import", "1.20", "--from", str(series)).exit_code == 0
    res = cli(d, "patches", "confirm", "1.20", "0099")
    assert res.exit_code == 3
    assert "no patch '0099' in the series" in res.stderr
    res = cli(d, "patches", "confirm", "1.20")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[-1].startswith("1.20: confirmed the trailers of 1 of 6 ")
    assert cli(d, "validate", "1.20").stdout == "releases/1.20.yaml: ok (6 patches)\n"
    assert P[0] in cli(d, "show", "1.20").stdout


def test_a_commit_inserted_mid_series_is_completed_and_the_ones_above_kept(
        distro: Distro) -> None:
    shas = git(distro.src, "rev-list", "--reverse", "HEAD").split()[-5:]
    git(distro.src, "checkout", "-q", "-b", "mid", shas[1])
    sha = commit_by_hand(distro)
    git(distro.src, "cherry-pick", f"{shas[1]}..tkedistro", env=DATES)
    git(distro.src, "checkout", "-q", "-B", "tkedistro", "mid")
    res = cli(distro, "patches", "export", "1.20", "--kind", "carry", "--upstream-ref", "none",
              "--upstream-status", "not-submitted")
    assert res.exit_code == 0, res.output
    assert [line.split()[0] for line in res.stdout.splitlines()[:-1]] == [
        "unchanged", "unchanged", "added", "unchanged", "unchanged", "unchanged"]
    log = git(distro.src, "log", "--format=%H %s", "-4").splitlines()
    assert log[3].split()[0] != sha and log[3].endswith("kubeadm: add stub")
    assert "Patch-Kind: carry" in git(distro.src, "log", "-1", "--format=%B", log[3].split()[0])
    assert cli(distro, "validate", "1.20").exit_code == 0
    res = cli(distro, "source", "1.20")
    assert res.exit_code == 0, res.output
    assert [line.split()[1] for line in res.stdout.splitlines()[1:]] == \
        ["unchanged"] * 2 + ["applied"] * 4  # from the new patch on, from the files
    again = cli(distro, "patches", "export", "1.20")
    assert again.stdout.splitlines()[-1] == "1.20: 6 unchanged; 0 bytes written"
