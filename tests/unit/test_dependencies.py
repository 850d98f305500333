"""Dependencies known before applying (issue 28, item 5): which patch of a series needs which,
from the diffs alone; `validate` names a series listed in the wrong order, `patches reorder`
refuses a move that puts a patch before one it needs, and a failing `source` names the later
patch that the failing one needs, with the reorder command."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO
from tests.helpers.gitrepo import git, write_manifest
from tests.helpers.series import FEATURE, TRAILERS, Distro, make_patches, make_upstream_tags
from tests.unit.test_rebase import cli
from tkedistro.model.dependencies import (
    dependencies,
    meaningful,
    misplaced,
    missing_preimage,
    providers,
    tree_reader,
)

# --- the pure module ---------------------------------------------------------------------

def diff(path: str, start: int, lines: list[str]) -> str:
    """A one-hunk git diff of ``path`` at line ``start``; ``lines`` carry their ` `, `-`, `+`."""
    old = sum(1 for line in lines if line[:1] in " -")
    new = sum(1 for line in lines if line[:1] in " +")
    return (f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -{start},{old} +{start},{new} @@\n" + "\n".join(lines) + "\n")


ADD_STEP = diff("pkg/a.go", 40, [" }", " ", "+func quotaStep() int {", "+\treturn 11", "+}"])
DOUBLE_STEP = diff("pkg/a.go", 42, [" func quotaStep() int {", "-\treturn 11", "+\treturn 22",
                                    " }"])


def test_a_patch_needs_the_one_that_adds_its_context() -> None:
    series = [("0001-add-step.patch", ADD_STEP), ("0002-double-step.patch", DOUBLE_STEP)]

    needs = dependencies(series)

    assert [(n.patch, n.needed, n.path, n.first, n.last) for n in needs] == [
        ("0002-double-step.patch", "0001-add-step.patch", "pkg/a.go", 42, 44)]
    assert misplaced(needs, ["0001-add-step.patch", "0002-double-step.patch"]) == []
    wrong = misplaced(needs, ["0002-double-step.patch", "0001-add-step.patch"])
    assert [n.describe() for n in wrong] == [
        "0002-double-step.patch comes before 0001-add-step.patch, which it needs "
        "(both change pkg/a.go lines 42-44)"]


def test_common_lines_far_apart_in_the_same_file_are_no_dependency() -> None:
    """Both patches touch blank lines and `}` of pkg/a.go, one at the top, one at the bottom;
    the second even has `}` and a blank line the first adds as context."""
    top = diff("pkg/a.go", 2, [" }", " ", "+// top note", "+}", "+"])
    bottom = diff("pkg/a.go", 55, [" }", " ", "-}", "+// bottom note"])

    assert dependencies([("0001-top.patch", top), ("0002-bottom.patch", bottom)]) == []


def test_common_lines_in_the_same_place_are_no_dependency() -> None:
    """Overlapping ranges, but the only shared lines are `}`, blank and `return nil`."""
    first = diff("pkg/a.go", 10, [" }", " ", "+\treturn nil", "+}", "+"])
    second = diff("pkg/a.go", 10, [" }", " ", " \treturn nil", " }", "+// done"])

    assert dependencies([("0001-a.patch", first), ("0002-b.patch", second)]) == []
    assert [meaningful(line) for line in ["", "}", "\t})", "import (", "x := 1"]] == [
        False, False, False, False, True]


def test_a_patch_needs_the_one_whose_removal_made_its_context() -> None:
    """No line is added: the first patch removes a function, so two lines become neighbours
    that the second patch has as context."""
    drop = diff("pkg/a.go", 20, [" const limit = 10", "-func old() {}", "-const gone = 1",
                                 " const step = 2"])
    edit = diff("pkg/a.go", 20, [" const limit = 10", " const step = 2", "+const more = 3"])

    needs = dependencies([("0001-drop.patch", drop), ("0002-edit.patch", edit)])

    assert [(n.patch, n.needed, n.first, n.last) for n in needs] == [
        ("0002-edit.patch", "0001-drop.patch", 20, 21)]


def test_a_line_in_another_file_is_no_dependency() -> None:
    other = DOUBLE_STEP.replace("pkg/a.go", "pkg/b.go")

    assert dependencies([("0001-add-step.patch", ADD_STEP), ("0002-other.patch", other)]) == []


def test_a_revert_needs_the_patch_it_reverts_whatever_the_direction() -> None:
    """Each of a patch and its revert has the other's added lines as pre-image: the later
    one needs the earlier one, so no order of the two is called wrong."""
    change = ("diff --git a/pkg/a.go b/pkg/a.go\n--- a/pkg/a.go\n+++ b/pkg/a.go\n"
              "@@ -42,1 +42,1 @@\n-\tlimit := 10\n+\tlimit := 20\n")
    revert = change.replace("-\tlimit := 10\n+\tlimit := 20", "-\tlimit := 20\n+\tlimit := 10")
    series = [("0001-change.patch", change), ("0002-revert.patch", revert)]

    needs = dependencies(series)

    assert [(n.patch, n.needed) for n in needs] == [("0002-revert.patch", "0001-change.patch")]
    assert misplaced(needs, [name for name, _ in series]) == []


def test_the_tree_is_read_without_leaving_it(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/a.go").write_text("func quotaStep() int {\n}\n")
    (tmp_path / "outside.go").write_text("\treturn 11\n")
    (tmp_path / "pkg/link.go").symlink_to(tmp_path / "outside.go")
    read = tree_reader(tmp_path / "pkg")

    assert missing_preimage(DOUBLE_STEP.replace("pkg/a.go", "a.go"), read) == {
        "a.go": {"\treturn 11"}}
    assert read("link.go") is None
    assert read("../outside.go") is None
    assert providers({"pkg/a.go": {"\treturn 11"}}, [("0001", ADD_STEP), ("0002", DOUBLE_STEP)]) \
        == ["0001"]


def test_the_real_120_series_has_no_dependency() -> None:
    files = sorted((REPO / "patches/1.20").glob("*.patch"))
    assert len(files) == 3

    assert dependencies([(f.name, f.read_text()) for f in files]) == []


# --- through the CLI, on the synthetic upstream ----------------------------------------------

STEP = FEATURE + "\nfunc quotaStep() int {\n\treturn 11\n}\n"
SERIES = [
    ("kubectl: print tke", {"cmd/kubectl/main.go": "package main\n\nfunc main() {}\n"}, TRAILERS),
    ("feature: add TKEFeature", {"pkg/feature/tke.go": FEATURE}, TRAILERS),
    ("feature: add quota step", {"pkg/feature/tke.go": STEP}, TRAILERS),
    ("feature: double quota step", {"pkg/feature/tke.go": STEP.replace("11", "22")}, TRAILERS),
]
P = ["patches/1.20/0001-kubectl-print-tke.patch",
     "patches/1.20/0002-feature-add-TKEFeature.patch",
     "patches/1.20/0003-feature-add-quota-step.patch",
     "patches/1.20/0004-feature-double-quota-step.patch"]
NAMES = [Path(p).name for p in P]


def make_series(tmp: Path, order: list[str]) -> Distro:
    """A distro whose four patches are made in ``P`` order (0003 builds on 0002, 0004 on
    0003), listed in the manifest in ``order``."""
    up = make_upstream_tags(tmp)
    root = tmp / "distro"
    made = make_patches(tmp, up, root / "patches" / "1.20", SERIES)
    assert [f.name for f in made] == NAMES
    write_manifest(root, "1.20", url=up.url, tag="v1.20.0", commit=up.tags["v1.20.0"],
                   patches=order)
    return Distro(root, up)


def test_reorder_refuses_to_put_a_patch_before_one_it_needs(tmp_path: Path) -> None:
    d = make_series(tmp_path, P)
    before = d.manifest.read_text()

    result = cli(d, "patches", "reorder", "1.20", "--move", "0004", "--before", "0003")

    assert result.exit_code == 3, result.output
    assert ("releases/1.20.yaml: 0004-feature-double-quota-step.patch would come before "
            "0003-feature-add-quota-step.patch, which it needs (both change "
            "pkg/feature/tke.go lines 3-7)") in result.output
    assert d.manifest.read_text() == before
    assert sorted(p.name for p in d.patch_dir.iterdir()) == NAMES


def test_reorder_of_an_independent_patch_goes_ahead(tmp_path: Path) -> None:
    d = make_series(tmp_path, P)

    result = cli(d, "patches", "reorder", "1.20", "--move", "0001", "--after", "0004")

    assert result.exit_code == 0, result.output
    assert "renamed  patches/1.20/0001-kubectl-print-tke.patch -> " \
        "patches/1.20/0005-kubectl-print-tke.patch" in result.output  # the others keep theirs


def test_validate_names_a_series_listed_in_the_wrong_order(tmp_path: Path) -> None:
    d = make_series(tmp_path, [P[0], P[1], P[3], P[2]])

    result = cli(d, "validate", "1.20")

    assert result.exit_code == 3, result.output
    assert ("releases/1.20.yaml: patches: 0004-feature-double-quota-step.patch comes before "
            "0003-feature-add-quota-step.patch, which it needs (both change pkg/feature/tke.go "
            "lines 3-7); move it after that one (tkedistro patches reorder 1.20 --move "
            "0004-feature-double-quota-step.patch --after 0003-feature-add-quota-step.patch)"
            ) in result.output
    assert cli(make_series(tmp_path / "right", P), "validate", "1.20").exit_code == 0


def test_source_failure_names_the_later_patch_it_needs(tmp_path: Path) -> None:
    d = make_series(tmp_path, [P[0], P[1], P[3], P[2]])

    result = cli(d, "source", "1.20")

    assert result.exit_code == 7, result.output
    assert "patch 3/4 does not apply: patches/1.20/0004-feature-double-quota-step.patch" \
        in result.output
    assert ("hint: patch 3 (0004-feature-double-quota-step.patch) needs patch 4 "
            "(0003-feature-add-quota-step.patch), which comes after it: move it with "
            "`tkedistro patches reorder 1.20 --move 0004-feature-double-quota-step.patch "
            "--after 0003-feature-add-quota-step.patch`, then run `tkedistro source 1.20` "
            "again") in " ".join(result.output.split())
    assert git(d.src, "rev-list", "--count", "HEAD~2..HEAD") == "2"


def test_reorder_that_mends_a_wrong_order_goes_ahead(tmp_path: Path) -> None:
    d = make_series(tmp_path, [P[0], P[1], P[3], P[2]])

    result = cli(d, "patches", "reorder", "1.20", "--move", "0004", "--after", "0003")

    assert result.exit_code == 0, result.output
    assert cli(d, "validate", "1.20").exit_code == 0
