"""`tkedistro bisect`: the first bad patch of a series, found by applying prefixes.

The synthetic distro of tests/helpers/series.py: 5 patches on v1.20.0; patch 2 turns
``kmem = true`` into ``kmem = false`` in pkg/kubelet/cm/limits.go, which the user's check
greps for.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.gitrepo import git
from tests.helpers.series import Distro, make_distro
from tests.unit.test_rebase import P
from tkedistro.bisect.search import BAD, GOOD, SKIP, narrow, next_position
from tkedistro.cli.root import make_app

CHECK = ["--run", "--", "grep", "-q", "kmem = true", "pkg/kubelet/cm/limits.go"]


def cli(d: Distro, *args: str) -> Result:
    return CliRunner().invoke(make_app(), ["--root", str(d.root), "bisect", *args],
                              env={"COLUMNS": "1000"})


@pytest.fixture
def distro(tmp_path: Path) -> Distro:
    return make_distro(tmp_path)


def where(d: Distro) -> tuple[str, str]:
    return git(d.src, "rev-parse", "HEAD"), git(d.src, "symbolic-ref", "-q", "HEAD")


def test_names_the_patch_that_breaks_the_check_and_puts_src_back(distro: Distro) -> None:
    before = where(distro)
    started = time.monotonic()
    res = cli(distro, "1.20", *CHECK)
    took = time.monotonic() - started
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == f"1.20: first bad patch 2/5: {P[1]}"
    assert lines[1] == "  kubelet: kmem accounting off"
    assert lines[2] == "check: grep -q 'kmem = true' pkg/kubelet/cm/limits.go"
    steps = [line.split()[3] for line in lines if line.startswith("  step ")]
    assert steps[:2] == ["5/5", "0/5"]  # the whole series first, then upstream alone
    assert len(steps) <= math.ceil(math.log2(6)) + 2
    assert where(distro) == before  # HEAD and branch back
    assert git(distro.src, "status", "--porcelain") == ""
    print(f"bisect on the synthetic upstream: {len(steps)} steps, {took:.2f}s")


def test_json_names_patch_steps_and_the_failing_log(distro: Distro) -> None:
    res = cli(distro, "1.20", "--json", *CHECK)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["first_bad"]["position"] == 2 and data["first_bad"]["file"] == P[1]
    assert data["first_bad"]["commit"] == git(distro.src, "rev-list", "--reverse",
                                               "HEAD").split()[-4]
    assert data["patches"] == 5
    assert data["check"] == {"kind": "run", "argv": CHECK[2:]}
    outcomes = {s["position"]: s["outcome"] for s in data["steps"]}
    assert outcomes[5] == BAD and outcomes[0] == GOOD and outcomes[2] == BAD
    assert all(o == (GOOD if p < 2 else BAD) for p, o in outcomes.items())
    log = Path(data["log"])
    assert log.is_file() and log.is_relative_to(distro.root / "_results" / "1.20" / "bisect")
    assert log.name.endswith("-position-2.log")
    assert "grep -q 'kmem = true'" in log.read_text()


def test_a_check_that_writes_into_the_tree_leaves_nothing_behind(distro: Distro) -> None:
    before = where(distro)
    res = cli(distro, "1.20", "--run", "--", "sh", "-c",
              "echo x > scratch.txt; echo y >> README.md; grep -q 'kmem = true' "
              "pkg/kubelet/cm/limits.go")
    assert res.exit_code == 0, res.output
    assert "first bad patch 2/5" in res.stdout
    assert where(distro) == before
    assert git(distro.src, "status", "--porcelain") == ""
    assert "saved to refs/tkedistro/backup/" in res.output  # the check's edits are kept
    assert cli(distro, "1.20", *CHECK).exit_code == 0  # and the tree is usable again


def test_work_in_progress_is_refused_and_kept(distro: Distro) -> None:
    (distro.src / "README.md").write_text("my edit\n")
    res = cli(distro, "1.20", *CHECK)
    assert res.exit_code == 8, res.output
    assert "_src/1.20 holds work in progress: uncommitted changes in 1 file(s): README.md" \
        in res.output
    assert (distro.src / "README.md").read_text() == "my edit\n"


def test_an_unexported_commit_is_refused(distro: Distro) -> None:
    (distro.src / "new.txt").write_text("mine\n")
    git(distro.src, "add", "new.txt")
    git(distro.src, "commit", "-q", "-m", "my own work")
    head = git(distro.src, "rev-parse", "HEAD")
    res = cli(distro, "1.20", *CHECK)
    assert res.exit_code == 8, res.output
    assert "1 commit(s) not made by tkedistro" in res.output and "my own work" in res.output
    assert git(distro.src, "rev-parse", "HEAD") == head


def test_upstream_alone_failing_exits_28_with_its_log(distro: Distro) -> None:
    before = where(distro)
    res = cli(distro, "1.20", "--run", "--", "sh", "-c", "echo broken base; exit 3")
    assert res.exit_code == 28, res.output
    assert ("the check `sh -c 'echo broken base; exit 3'` fails on upstream alone "
            "(v1.20.0, position 0/5), so no patch of the series is to blame") in res.output
    assert "broken base" in res.output and "full log: _results/1.20/bisect/" in res.output
    assert where(distro) == before


def test_whole_series_passing_exits_28(distro: Distro) -> None:
    res = cli(distro, "1.20", "--run", "--", "true")
    assert res.exit_code == 28, res.output
    assert ("the check `true` passes with the whole series (position 5/5), so there is no "
            "failure to find") in res.output


def test_options_name_exactly_one_check(distro: Distro) -> None:
    res = cli(distro, "1.20")
    assert res.exit_code == 2
    assert "give exactly one check: --run -- CMD..., --build COMPONENT or --go-test PKG" \
        in res.output
    res = cli(distro, "1.20", "--run")
    assert res.exit_code == 2 and "--run needs the command after `--`" in res.output
    res = cli(distro, "1.20", "--run", "--build", "kubelet", "--", "true")
    assert res.exit_code == 2 and "(got --run and --build)" in res.output
    res = cli(distro, "1.20", "--go-test=-race")
    assert res.exit_code == 2
    assert "'-race' is not a package pattern (go would read it as a flag)" in res.output
    res = cli(distro, "1.20", "--build", "kubelet", "make")
    assert res.exit_code == 2 and "'make': a command is for --run only" in res.output


def test_a_missing_command_is_named(distro: Distro) -> None:
    res = cli(distro, "1.20", "--run", "--", "no-such-command-xyz")
    assert res.exit_code == 28, res.output
    assert "cannot run no-such-command-xyz: command not found" in res.output
    assert git(distro.src, "symbolic-ref", "-q", "HEAD") == "refs/heads/tkedistro"


def test_search_skips_like_git_bisect() -> None:
    assert next_position(0, 5, set()) == 2
    assert next_position(0, 5, {2}) == 3
    seen: list[int] = []

    def probe(at: int) -> str:
        seen.append(at)
        return SKIP if at == 3 else GOOD if at < 3 else BAD

    bounds = narrow(0, 5, probe)
    assert (bounds.good, bounds.bad, bounds.skipped) == (2, 4, (3,))
    assert not bounds.found
    assert narrow(0, 1, probe).found and seen == [2, 3, 4]


def test_ctrl_c_in_a_check_puts_src_back_and_frees_the_lock(distro: Distro) -> None:
    from tkedistro.bisect.checks import RunCheck
    from tkedistro.bisect.operation import bisect_release

    class Interrupted(RunCheck):
        def run(self, tree: Path, commit: str, log: Path) -> int:
            if (tree / "pkg/feature/tke.go").exists() is False and "kmem = false" in \
                    (tree / "pkg/kubelet/cm/limits.go").read_text():
                raise KeyboardInterrupt  # at position 2: mid-search
            return super().run(tree, commit, log)

    before = where(distro)
    with pytest.raises(KeyboardInterrupt):
        bisect_release(distro.workspace(), "1.20", Interrupted(tuple(CHECK[2:])))
    assert where(distro) == before
    assert not (distro.root / "_src" / ".1.20.tkedistro" / "build-run.json").exists()
    assert cli(distro, "1.20", *CHECK).exit_code == 0  # the lock is free again


def test_skipped_positions_leave_the_candidates_named(distro: Distro) -> None:
    # exit 125 (skip) exactly at position 2: patch 2 applied, patch 3 not yet
    script = ("grep -q 'kmem = true' pkg/kubelet/cm/limits.go && exit 0; "
              "test -f pkg/feature/tke.go || exit 125; exit 1")
    res = cli(distro, "1.20", "--run", "--", "sh", "-c", script)
    assert res.exit_code == 28, res.output
    assert (f"the check skipped (exit 125) every position left to test: the first bad patch "
            f"is one of positions 2 ({P[1]}), 3 ({P[2]})") in res.output
    assert git(distro.src, "symbolic-ref", "-q", "HEAD") == "refs/heads/tkedistro"
