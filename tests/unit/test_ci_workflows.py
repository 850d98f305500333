"""`tkedistro ci render|check`: workflows come from templates and are valid GitHub Actions."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO
from tkedistro.cli.app import app

runner = CliRunner()


@pytest.fixture()
def repo_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "distro"
    for name in ("releases", "patches", ".github"):
        shutil.copytree(REPO / name, dest / name)
    return dest


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
    assert "-        run: make test-unit" in result.output
    assert "+        run: make test" in result.output
    assert "hint: run `tkedistro ci render` and commit the result" in result.output


def test_render_adds_a_new_release_to_the_nightly_matrix(repo_copy: Path) -> None:
    text = (repo_copy / "releases" / "1.20.yaml").read_text()
    new = text.replace('release: "1.20"', 'release: "1.21"')  # 1.20 has amd64 and arm64
    (repo_copy / "releases" / "1.21.yaml").write_text(new)
    result = runner.invoke(app, ["--root", str(repo_copy), "ci", "render"])
    assert result.exit_code == 0, result.output
    assert "wrote .github/workflows/nightly.yml" in result.output
    nightly = (repo_copy / ".github" / "workflows" / "nightly.yml").read_text()
    assert nightly.count('release: "1.21"') == 2  # amd64 and arm64
    assert 'platform: "linux/arm64"' in nightly
    again = runner.invoke(app, ["--root", str(repo_copy), "ci", "render"])
    assert again.output.strip() == "workflows up to date"


def test_workflows_are_valid_github_actions_syntax() -> None:
    exe = Path(sys.executable).with_name("check-jsonschema")
    workflows = sorted((REPO / ".github" / "workflows").glob("*.yml"))
    assert [w.name for w in workflows] == ["ci.yml", "nightly.yml"]
    proc = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.github-workflows", *map(str, workflows)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
