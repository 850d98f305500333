"""`tkedistro patches import` a team can trust (issue 17, items 5-8): --text-only for binary
diffs without index lines, "needs the result of" an earlier skipped patch, trailers inferred
or marked defaulted (and `validate` warning about them), the import recorded for `source`,
exit 21 for a patch already in the series, and `patches reorder`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import Result

from tests.helpers.gitrepo import K8S_LIKE_FILES, git
from tests.helpers.series import Distro, make_distro
from tests.unit.test_import import PNG, plain_diff
from tests.unit.test_rebase import P, cli
from tkedistro.model.manifest import load_manifest
from tkedistro.model.patches import parse_patch

LIMITS = K8S_LIKE_FILES["pkg/kubelet/cm/limits.go"].replace("kmem = true", "kmem = false")
BANNER = {"cmd/kubectl/banner.go": "package main\n\nconst banner = \"tke\"\n"}
PR_URL = "https://github.com/kubernetes/kubernetes/pull/"


def diff_between(src: Path, before: dict[str, str], after: dict[str, str]) -> str:
    """`git diff` from ``before`` to ``after`` (both written over ``src``'s HEAD)."""
    work = src.parent / "dep-work"
    git(src.parent, "clone", "-q", str(src), str(work))
    for files in (before, after):
        for rel, content in files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(content)
        if files is before:
            git(work, "add", "-A")
            git(work, "commit", "-qm", "before")
    return git(work, "diff") + "\n"


def folder(d: Distro, files: dict[str, str]) -> Path:
    out = d.root.parent / "third-party"
    out.mkdir()
    for name, text in files.items():
        (out / name).write_text(text)
    return out


def errors(res: Result) -> list[str]:
    return [line for line in res.stderr.splitlines()
            if line.startswith(("error:", "hint:", "  "))]


# --- item 5: --text-only -------------------------------------------------------------------

def test_text_only_imports_the_text_part_and_records_the_binaries_left_out(
        tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    mixed = plain_diff(d.src, {**BANNER, "docs/logo.png": PNG, "docs/icon.png": PNG[::-1]})
    series = folder(d, {"0001-TKE-FIX-banner-and-logo.patch": mixed})

    refused = cli(d, "patches", "import", "1.20", "--from", str(series))
    assert refused.exit_code == 7
    assert refused.stdout.splitlines()[0] == (
        "NOT IMPORTED  0001-TKE-FIX-banner-and-logo.patch: binary diff without full index lines "
        "(git cannot apply it): docs/icon.png, docs/logo.png; --text-only imports the rest")
    assert load_manifest(d.manifest).patches[-1].file == P[-1]

    res = cli(d, "patches", "import", "1.20", "--from", str(series), "--text-only")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == ("imported  0001-TKE-FIX-banner-and-logo.patch -> "
                        "patches/1.20/0001-TKE-FIX-banner-and-logo.patch")
    assert lines[2] == "  text only: left out 2 binary file(s): docs/icon.png, docs/logo.png"
    assert lines[3] == f"1.20: 1 of 1 patches imported from {series}"
    patch = parse_patch(d.patch_dir / "0001-TKE-FIX-banner-and-logo.patch")
    assert patch.trailers["Binary-Omitted"] == "docs/icon.png, docs/logo.png"
    assert patch.files == ("cmd/kubectl/banner.go",)
    assert (d.src / "cmd/kubectl/banner.go").is_file()
    assert not (d.src / "docs").exists()

    data = json.loads(cli(d, "validate", "1.20", "--json").stdout)
    assert data["releases"][0]["ok"] is True


def test_text_only_json_lists_the_binaries_and_a_binary_only_patch_is_not_imported(
        tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    series = folder(d, {
        "0001-TKE-FIX-banner.patch": plain_diff(d.src, {**BANNER, "docs/logo.png": PNG}),
        "0002-TKE-FIX-logo-only.patch": plain_diff(d.src, {"docs/other.png": PNG}),
    })
    res = cli(d, "patches", "import", "1.20", "--from", str(series), "--text-only", "--json")
    assert res.exit_code == 7
    data = json.loads(res.stdout)
    assert data["omitted"] == {"patches/1.20/0001-TKE-FIX-banner.patch": ["docs/logo.png"]}
    assert data["failed"] == ["0002-TKE-FIX-logo-only.patch"]
    assert data["patches"][1]["reason"] == ("only binary diffs without full index lines: "
                                            "docs/other.png; nothing to import")


# --- item 6: a patch that builds on one not imported --------------------------------------

def test_a_patch_built_on_a_skipped_one_says_which(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    first = LIMITS.replace("line4 = 4", "line4 = 44")
    series = folder(d, {
        "0013-TKE-FIX-line4.patch": plain_diff(d.src, {"pkg/kubelet/cm/limits.go": first,
                                                        "docs/logo.png": PNG}),
        "0015-TKE-FIX-banner.patch": plain_diff(d.src, BANNER),
        "0018-TKE-FIX-line4-again.patch": diff_between(
            d.src, {"pkg/kubelet/cm/limits.go": first},
            {"pkg/kubelet/cm/limits.go": first.replace("line4 = 44", "line4 = 444")}),
    })
    res = cli(d, "patches", "import", "1.20", "--from", str(series))
    assert res.exit_code == 7
    assert res.stdout.splitlines()[3] == (
        "NOT IMPORTED  0018-TKE-FIX-line4-again.patch: does not apply: "
        "pkg/kubelet/cm/limits.go: hunk #1 of 1 does not apply: @@ -4,4 +4,4 @@; "
        "0018 needs the result of 0013 (not imported)")
    assert errors(res)[:2] == [
        "error: 2 patch(es) could not be imported as they are: 0013-TKE-FIX-line4.patch, "
        "0018-TKE-FIX-line4-again.patch",
        "  0018 needs the result of 0013 (not imported)"]
    other = make_distro(tmp_path / "other")  # with 0013's text part, 0018 applies
    again = folder(other, {p.name: p.read_text() for p in series.iterdir()})
    res = cli(other, "patches", "import", "1.20", "--from", str(again), "--json", "--text-only")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["imported"] == 3


def test_a_failing_patch_with_no_skipped_predecessor_names_none(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    stale = plain_diff(d.src, {"README.md": "# tiny kubernetes (tke)\nmore\n"})
    stale = "\n".join(line for line in stale.split("\n") if not line.startswith("index "))
    series = folder(d, {"0001-TKE-FIX-logo.patch": plain_diff(d.src, {"docs/logo.png": PNG}),
                        "0002-TKE-FIX-stale.patch": stale.replace(" # tiny kubernetes (tke)",
                                                                   " # an older README")})
    res = cli(d, "patches", "import", "1.20", "--from", str(series), "--json")
    entry = json.loads(res.stdout)["patches"][1]
    assert entry["needs"] == []
    assert entry["reason"] == ("does not apply: README.md: hunk #1 of 1 does not apply: "
                               "@@ -1 +1,2 @@")


# --- item 7: trailers inferred, defaulted ones marked ---------------------------------------

def test_trailers_are_inferred_from_name_and_message_and_defaulted_ones_marked(
        tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    series = folder(d, {
        "0001-TKE-FIX-pr72914-banner.patch": plain_diff(d.src, BANNER),
        "0002-CVE-2021-25741-subpath.patch": plain_diff(d.src, {"pkg/a/a.go": "package a\n"}),
        "0003-TKE-FIX-commit.patch": "Cherry-pick of https://github.com/kubernetes/kubernetes/"
        "commit/0123456789abcdef0123456789abcdef01234567\n\n"
        + plain_diff(d.src, {"pkg/b/b.go": "package b\n"}),
        "0004-TKE-FIX-ours.patch": plain_diff(d.src, {"pkg/c/c.go": "package c\n"}),
        "0005-TKE-FIX-repo-ref.patch": "Backport of kubernetes/kubernetes#97752\n\n"
        "Upstream-Status: merged\n\n" + plain_diff(d.src, {"pkg/e/e.go": "package e\n"}),
    })
    res = cli(d, "patches", "import", "1.20", "--from", str(series))
    assert res.exit_code == 0, res.output
    out = res.stdout.splitlines()
    assert out[1] == (
        "  Patch-Kind: backport (inferred: the file name says pr72914); Upstream-Ref: "
        f"{PR_URL}72914 (inferred: the file name says pr72914); Upstream-Status: submitted "
        "(defaulted: a PR is named; whether it was merged is not stated)")
    assert out[3] == (
        "  Patch-Kind: fix (defaulted: CVE-2021-25741: a security fix; whether it is a backport "
        "is not stated); Upstream-Ref: https://www.cve.org/CVERecord?id=CVE-2021-25741 "
        "(inferred: the CVE record of CVE-2021-25741); Upstream-Status: not-submitted "
        "(defaulted); Security-Fix: CVE-2021-25741 (inferred: the file name names it)")
    assert out[7] == ("  Patch-Kind: carry (defaulted); Upstream-Ref: none (defaulted); "
                      "Upstream-Status: not-submitted (defaulted)")
    written = {n: parse_patch(d.patch_dir / n).trailers for n in sorted(
        p.name for p in series.iterdir())}
    assert written["0001-TKE-FIX-pr72914-banner.patch"] == {
        "Patch-Kind": "backport", "Upstream-Ref": f"{PR_URL}72914",
        "Upstream-Status": "submitted", "Trailer-Inferred": "Patch-Kind, Upstream-Ref",
        "Trailer-Defaulted": "Upstream-Status"}
    assert written["0002-CVE-2021-25741-subpath.patch"] == {
        "Patch-Kind": "fix", "Upstream-Ref": "https://www.cve.org/CVERecord?id=CVE-2021-25741",
        "Upstream-Status": "not-submitted", "Security-Fix": "CVE-2021-25741",
        "Trailer-Inferred": "Upstream-Ref, Security-Fix",
        "Trailer-Defaulted": "Patch-Kind, Upstream-Status"}
    assert written["0003-TKE-FIX-commit.patch"] == {
        "Patch-Kind": "backport", "Upstream-Ref": "https://github.com/kubernetes/kubernetes/"
        "commit/0123456789abcdef0123456789abcdef01234567", "Upstream-Status": "merged",
        "Trailer-Inferred": "Patch-Kind, Upstream-Ref, Upstream-Status"}
    assert written["0004-TKE-FIX-ours.patch"]["Trailer-Defaulted"] == (
        "Patch-Kind, Upstream-Ref, Upstream-Status")
    assert written["0005-TKE-FIX-repo-ref.patch"] == {
        "Patch-Kind": "backport", "Upstream-Ref": f"{PR_URL}97752", "Upstream-Status": "merged",
        "Trailer-Inferred": "Patch-Kind, Upstream-Ref"}
    assert out[10:] == [
        "1.20: 5 of 5 patches imported from " + str(series),
        "5 patch(es) have trailers import inferred or defaulted (listed in their "
        "Trailer-Inferred and Trailer-Defaulted trailers); check each value (fix it in the "
        "patch file if wrong), then run `tkedistro patches confirm 1.20`; `tkedistro validate` "
        "warns until then:",
        "  patches/1.20/0001-TKE-FIX-pr72914-banner.patch: Patch-Kind (inferred), Upstream-Ref "
        "(inferred), Upstream-Status (defaulted)",
        "  patches/1.20/0002-CVE-2021-25741-subpath.patch: Patch-Kind (defaulted), Upstream-Ref "
        "(inferred), Upstream-Status (defaulted), Security-Fix (inferred)",
        "  patches/1.20/0003-TKE-FIX-commit.patch: Patch-Kind (inferred), Upstream-Ref "
        "(inferred), Upstream-Status (inferred)",
        "  patches/1.20/0004-TKE-FIX-ours.patch: Patch-Kind (defaulted), Upstream-Ref "
        "(defaulted), Upstream-Status (defaulted)",
        "  patches/1.20/0005-TKE-FIX-repo-ref.patch: Patch-Kind (inferred), Upstream-Ref "
        "(inferred)",
    ]


def test_validate_warns_about_each_defaulted_trailer_until_it_is_confirmed(
        tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    series = folder(d, {"0001-TKE-FIX-pr72914-banner.patch": plain_diff(d.src, BANNER)})
    assert cli(d, "patches", "import", "1.20", "--from", str(series)).exit_code == 0
    name = "patches/1.20/0001-TKE-FIX-pr72914-banner.patch"
    res = cli(d, "validate", "1.20")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == ["releases/1.20.yaml: ok (6 patches)"] + [
        f"  warning: {name}: trailer {key} was {how} by `patches import`, not stated by the "
        f"patch; check its value, then run `tkedistro patches confirm` (or remove {key} from "
        f"the Trailer-{how.title()} trailer, deleting the line when none is left)"
        for key, how in (("Patch-Kind", "inferred"), ("Upstream-Ref", "inferred"),
                         ("Upstream-Status", "defaulted"))]
    data = json.loads(cli(d, "validate", "1.20", "--json").stdout)
    assert len(data["releases"][0]["warnings"]) == 3 and data["ok"] is True
    path = d.root / name
    path.write_text(path.read_text().replace("Trailer-Defaulted: Upstream-Status\n", "")
                    .replace("Trailer-Inferred: Patch-Kind, Upstream-Ref\n", ""))
    assert cli(d, "validate", "1.20").stdout == "releases/1.20.yaml: ok (6 patches)\n"


# --- item 8: bookkeeping ------------------------------------------------------------------

def test_source_after_a_partial_import_applies_nothing_again(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    series = folder(d, {"0001-TKE-FIX-banner.patch": plain_diff(d.src, BANNER),
                        "0002-TKE-FIX-logo.patch": plain_diff(d.src, {"docs/logo.png": PNG})})
    assert cli(d, "patches", "import", "1.20", "--from", str(series)).exit_code == 7
    head = git(d.src, "rev-parse", "HEAD")
    res = cli(d, "source", "1.20")
    assert res.exit_code == 0, res.output
    assert res.stdout == (f"_src/1.20: up to date: v1.20.0 ({d.upstream.tags['v1.20.0'][:12]}) "
                          f"+ 6 patches, HEAD {head[:12]}\n")
    assert git(d.src, "rev-parse", "HEAD") == head


def test_reimporting_a_patch_in_the_series_skips_it(tmp_path: Path) -> None:
    """Issue 28 (item 4): what once exited 21 is now reported as already imported."""
    d = make_distro(tmp_path)
    series = folder(d, {"0001-TKE-FIX-banner.patch": plain_diff(d.src, BANNER)})
    assert cli(d, "patches", "import", "1.20", "--from", str(series)).exit_code == 0
    head = git(d.src, "rev-parse", "HEAD")
    res = cli(d, "patches", "import", "1.20", "--from", str(series))
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        "already imported  0001-TKE-FIX-banner.patch (in the series as "
        "patches/1.20/0001-TKE-FIX-banner.patch)",
        f"1.20: all 1 patch(es) of {series} are in the series already; nothing imported"]
    assert git(d.src, "rev-parse", "HEAD") == head
    assert len(load_manifest(d.manifest).patches) == 6


def test_reimporting_a_patch_renumbered_or_renamed_skips_it(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    series = folder(d, {"0009-TKE-FIX-banner.patch": plain_diff(d.src, BANNER)})
    assert cli(d, "patches", "import", "1.20", "--from", str(series)).exit_code == 0
    moved = cli(d, "patches", "reorder", "1.20", "--move", "0009", "--before", "0001")
    assert moved.exit_code == 0, moved.output
    assert moved.stdout.splitlines()[0] == (
        "renamed  patches/1.20/0009-TKE-FIX-banner.patch -> patches/1.20/0000-TKE-FIX-banner.patch")
    res = cli(d, "patches", "import", "1.20", "--from", str(series))
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == (
        "already imported  0009-TKE-FIX-banner.patch (in the series as "
        "patches/1.20/0000-TKE-FIX-banner.patch)")
    (series / "0009-TKE-FIX-banner.patch").rename(series / "0042-kubectl-banner.patch")
    res = cli(d, "patches", "import", "1.20", "--from", str(series), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["already_imported"] == {
        "0042-kubectl-banner.patch": "patches/1.20/0000-TKE-FIX-banner.patch"}  # by patch-id


def test_reorder_moves_a_patch_and_keeps_the_other_names(tmp_path: Path) -> None:
    """Issue 28 (item 4): only the moved file is renamed, to a number between its new
    neighbours' (was: every later file renumbered; that is --renumber now)."""
    d = make_distro(tmp_path)
    before = {p: (d.root / p).read_bytes() for p in P}
    res = cli(d, "patches", "reorder", "1.20", "--move", "0005", "--before",
              "0002-kubelet-kmem-accounting-off.patch")
    assert res.exit_code == 0, res.output
    new = [P[0], "patches/1.20/0001a-kubelet-print-tke.patch", *P[1:4]]
    assert res.stdout.splitlines() == [
        f"renamed  {P[4]} -> {new[1]}",
        *(f"  {i:>3}  {f}" for i, f in enumerate(new, 1)),
        "1.20: new order written to releases/1.20.yaml; run `tkedistro source 1.20` to apply it"]
    assert [e.file for e in load_manifest(d.manifest).patches] == new
    assert sorted(p.name for p in d.patch_dir.iterdir()) == [Path(f).name for f in new]
    assert (d.root / new[1]).read_bytes() == before[P[4]]
    again = cli(d, "patches", "reorder", "1.20", "--move", "0001a", "--after", "0004")
    assert again.stdout.splitlines()[0] == (
        f"renamed  {new[1]} -> patches/1.20/0005-kubelet-print-tke.patch")  # back again
    again = cli(d, "patches", "reorder", "1.20", "--move", "0003", "--before", "0002")
    assert again.stdout.splitlines()[0] == (
        f"renamed  {P[2]} -> patches/1.20/0001a-feature-add-TKEFeature.patch")
    full = cli(d, "patches", "reorder", "1.20", "--move", "0004", "--before", "0001a")
    assert (full.exit_code, full.stderr) == (3, (
        "error: releases/1.20.yaml: patches: no number is free for "
        f"{P[3]} between {P[0]} and patches/1.20/0001a-feature-add-TKEFeature.patch; run the "
        "reorder again with --renumber to number the whole series 0001.. in order\n"))
    again = cli(d, "patches", "reorder", "1.20", "--move", "0004", "--after", "0001a")
    assert again.stdout.splitlines()[0] == (
        f"renamed  {P[3]} -> patches/1.20/0001b-README-say-tke.patch")
    assert [e.file for e in load_manifest(d.manifest).patches] == [
        P[0], "patches/1.20/0001a-feature-add-TKEFeature.patch",
        "patches/1.20/0001b-README-say-tke.patch", P[1], P[4]]
    assert [p.name for p in sorted(d.patch_dir.iterdir())] == [
        Path(e.file).name for e in load_manifest(d.manifest).patches]  # sorted as the series
    src = cli(d, "source", "1.20")
    assert src.exit_code == 0, src.output
    assert cli(d, "validate", "1.20").exit_code == 0


def test_reorder_renumber_numbers_the_whole_series(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    before = {p: (d.root / p).read_bytes() for p in P}
    res = cli(d, "patches", "reorder", "1.20", "--move", "0005", "--before",
              "0002-kubelet-kmem-accounting-off.patch", "--renumber")
    assert res.exit_code == 0, res.output
    new = ["patches/1.20/0001-kubectl-print-tke.patch",
           "patches/1.20/0002-kubelet-print-tke.patch",
           "patches/1.20/0003-kubelet-kmem-accounting-off.patch",
           "patches/1.20/0004-feature-add-TKEFeature.patch",
           "patches/1.20/0005-README-say-tke.patch"]
    assert res.stdout.splitlines() == [
        f"renamed  {P[4]} -> {new[1]}", f"renamed  {P[1]} -> {new[2]}",
        f"renamed  {P[2]} -> {new[3]}", f"renamed  {P[3]} -> {new[4]}",
        *(f"  {i:>3}  {f}" for i, f in enumerate(new, 1)),
        "1.20: new order written to releases/1.20.yaml; run `tkedistro source 1.20` to apply it"]
    assert [e.file for e in load_manifest(d.manifest).patches] == new
    assert sorted(p.name for p in d.patch_dir.iterdir()) == [Path(f).name for f in new]
    assert (d.root / new[1]).read_bytes() == before[P[4]]
    src = cli(d, "source", "1.20")
    assert src.exit_code == 0, src.output
    assert git(d.src, "log", "-5", "--format=%s").splitlines()[::-1] == [
        "kubectl: print tke", "kubelet: print tke", "kubelet: kmem accounting off",
        "feature: add TKEFeature", "README: say tke"]
    assert cli(d, "validate", "1.20").exit_code == 0


def test_reorder_keeps_manifest_entry_keys_and_says_when_nothing_changes(
        tmp_path: Path) -> None:
    d = make_distro(tmp_path, prepare=False)
    d.manifest.write_text(d.manifest.read_text().replace(
        f"file: {P[3]}", f"file: {P[3]}\n    subject: README for tke  # why"))
    res = cli(d, "patches", "reorder", "1.20", "--move", "0001", "--before", "0002")
    assert (res.exit_code, res.stdout) == (
        0, "1.20: the series is already in that order; nothing changed\n")
    res = cli(d, "patches", "reorder", "1.20", "--move", "0004", "--after", "0005")
    assert res.exit_code == 0, res.output
    text = d.manifest.read_text()
    assert "file: patches/1.20/0006-README-say-tke.patch\n    subject: README for tke  # why" \
        in text  # issue 28: the moved file gets the next free number, 0005 keeps its name


def test_reorder_refuses_unknown_files_and_a_release_mid_rebase(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    res = cli(d, "patches", "reorder", "1.20", "--move", "0009-kubelet-print-tke.patch",
              "--before", "0001")
    assert res.exit_code == 3
    assert res.stderr == ("error: releases/1.20.yaml: patches: no patch "
                          "'0009-kubelet-print-tke.patch' in the series; did you mean "
                          "0005-kubelet-print-tke.patch?\n")
    res = cli(d, "patches", "reorder", "1.20", "--move", "0001", "--before", "0002",
              "--after", "0003")
    assert res.exit_code == 2
    assert cli(d, "rebase", "1.20", "--onto", "v1.20.2").exit_code == 7  # stops on 0004
    snapshot = d.manifest.read_bytes()
    res = cli(d, "patches", "reorder", "1.20", "--move", "0005", "--before", "0001")
    assert res.exit_code == 17
    assert res.stderr.splitlines()[0] == ("error: release 1.20 is mid-rebase onto v1.20.2; "
                                          "finish or abandon the rebase first")
    assert d.manifest.read_bytes() == snapshot
