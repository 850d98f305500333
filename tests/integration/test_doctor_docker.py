"""`tkedistro doctor` against the real engine: a missing builder image and its fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO
from tkedistro.cli.app import app

runner = CliRunner()


@pytest.mark.docker
def test_missing_builder_image_names_the_offline_command(tmp_path: Path) -> None:
    repo_copy = tmp_path / "distro"
    shutil.copytree(REPO / "releases", repo_copy / "releases")
    manifest = repo_copy / "releases" / "1.20.yaml"
    manifest.write_text(manifest.read_text().replace(
        "image: tkedistro/builder:go1.15-bullseye", "image: tkedistro/absent:none"))
    result = runner.invoke(app, ["--root", str(repo_copy), "doctor"])
    assert result.exit_code == 19
    assert "BAD  builder image 1.20       tkedistro/absent:none missing" in result.output
    assert "fix: sudo tkedistro builder-image 1.20" in result.output
