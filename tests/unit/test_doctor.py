"""`tkedistro doctor` names each problem and the command that fixes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO
from tkedistro.cli.app import app

runner = CliRunner()


@pytest.fixture()
def repo_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "distro"
    shutil.copytree(REPO / "releases", dest / "releases")
    shutil.copytree(REPO / "patches", dest / "patches")
    return dest


def test_no_engine_is_reported_with_docker_host_and_the_fix(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    result = runner.invoke(app, ["--root", str(repo_copy), "doctor"])
    assert result.exit_code == 19
    sock = f"unix://{tmp_path}/no-engine.sock"
    assert f"BAD  docker engine            no Docker engine answers at {sock}" in result.output
    assert "fix: apt-get install -y docker.io and start dockerd (scripts/ensure-docker.sh in " \
           "a tkedistro checkout)" in result.output
    assert "ok   git" in result.output
    assert "error: not ready: docker engine" in result.output


def test_json_lists_every_check(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import json

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    result = runner.invoke(app, ["--root", str(repo_copy), "doctor", "--json"])
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert [c["name"] for c in data["checks"]] == [
        "git", "docker engine", "cache", "disk (repo)", "disk (cache)", "arm64 emulation",
        "buildah", "skopeo"]


def test_a_tcp_docker_host_that_refuses_is_reported_through_the_sdk(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a unix socket: the docker SDK answers; its requests errors become exit-19 lines."""
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    result = runner.invoke(app, ["--root", str(repo_copy), "doctor"])
    assert result.exit_code == 19
    assert "BAD  docker engine            no Docker engine answers at tcp://127.0.0.1:1" in (
        result.output)
