"""The tests' own skip policy (tests/conftest.py), run as a developer and CI run it: with
`CI` set a skip that is not deliberate fails naming what was missing, every run ends with the
skip count, and `TKEDISTRO_SKIP_REPORT` collects the counts and reasons for .ci/run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

TESTS = '''
import pytest
from tests.conftest import deliberate_skip

def test_lacks_a_tool():
    pytest.skip("needs shellcheck (apt-get install shellcheck)")

@pytest.mark.skipif(True, reason="needs the host's busybox (busybox-static)")
def test_lacks_a_package():
    pass

def test_past_the_budget():
    deliberate_skip("the CI time budget for the vm tier is used up")

def test_passes():
    pass
'''
# the policy's hooks, as the repository's conftest defines them
CONFTEST = ("from tests.conftest import (isolated_env, pytest_runtest_makereport,\n"
            "    pytest_terminal_summary)\n")


def _pytest(tmp_path: Path, *options: str, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_policy.py").write_text(TESTS)
    environ = {k: v for k, v in os.environ.items()
               if k not in ("CI", "TKEDISTRO_SKIP_REPORT", "PYTEST_ADDOPTS")}
    environ.update(PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *(options or ("-p", "no:xdist")), "test_policy.py"],
                          cwd=tmp_path, env=environ, capture_output=True, text=True,
                          timeout=120)


def test_without_ci_every_skip_is_a_skip_and_the_count_is_printed(tmp_path: Path) -> None:
    run = _pytest(tmp_path)
    assert run.returncode == 0, run.stdout
    assert "tkedistro: 3 skipped (1 deliberate, 2 other)" in run.stdout


def test_with_ci_a_skip_for_something_missing_fails_naming_it(tmp_path: Path) -> None:
    run = _pytest(tmp_path, CI="true")
    assert run.returncode == 1, run.stdout
    assert ("CI is set and this test skipped: needs shellcheck (apt-get install shellcheck)"
            in run.stdout)
    assert ("CI is set and this test skipped: needs the host's busybox (busybox-static)"
            in run.stdout)
    assert "`make install` installs what the tests need." in run.stdout
    assert "tkedistro: 1 skipped (1 deliberate, 0 other)" in run.stdout
    assert "1 passed, 1 skipped" in run.stdout


def test_the_skip_report_collects_counts_and_reasons_over_runs(tmp_path: Path) -> None:
    report = tmp_path / "skips.txt"
    _pytest(tmp_path, TKEDISTRO_SKIP_REPORT=str(report))
    _pytest(tmp_path, CI="true", TKEDISTRO_SKIP_REPORT=str(report))
    lines = report.read_text().splitlines()
    assert lines[0] == ("tkedistro: 3 skipped (1 deliberate, 2 other) in "
                        "`pytest -q -p no:cacheprovider -p no:xdist test_policy.py`")
    assert "  skipped test_policy.py::test_lacks_a_tool: needs shellcheck " \
           "(apt-get install shellcheck)" in lines
    assert lines[-2].startswith("tkedistro: 1 skipped (1 deliberate, 0 other) in `pytest ")
    assert lines[-1] == ("  skipped test_policy.py::test_past_the_budget: deliberate: "
                         "the CI time budget for the vm tier is used up")


def test_a_run_on_several_workers_is_counted_once(tmp_path: Path) -> None:
    report = tmp_path / "skips.txt"
    run = _pytest(tmp_path, "-n", "2", TKEDISTRO_SKIP_REPORT=str(report))
    assert run.returncode == 0, run.stdout
    assert run.stdout.count("tkedistro: 3 skipped (1 deliberate, 2 other)") == 1
    counts = [line for line in report.read_text().splitlines() if line.startswith("tkedistro:")]
    assert counts == ["tkedistro: 3 skipped (1 deliberate, 2 other) in "
                      "`pytest -q -p no:cacheprovider -n 2 test_policy.py`"]
