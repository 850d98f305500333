"""Shared test fixtures: an isolated HOME/cache, a clean git environment, tier gating."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and the tkedistro cache under tmp, no inherited GIT_*, a fixed git identity."""
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith("GIT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("TKEDISTRO_CACHE", str(home / ".cache" / "tkedistro"))
    monkeypatch.delenv("TKEDISTRO_UPSTREAM", raising=False)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.invalid")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file")
    return home


def _engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``docker`` skip without an engine, except in CI where that is a failure."""
    if not any("docker" in item.keywords for item in items):
        return
    if _engine_answers():
        return
    if os.environ.get("CI") or os.environ.get("TKEDISTRO_REQUIRE_DOCKER"):
        raise pytest.UsageError(
            "CI is set but no Docker engine answers (`docker info` failed): "
            "run scripts/ensure-docker.sh first; docker-tier tests must not be skipped in CI"
        )
    skip = pytest.mark.skip(reason="no Docker engine answers (`docker info`); start dockerd")
    for item in items:
        if "docker" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """CI gives the real_k8s tier a deadline; past it, remaining real tests skip and say why."""
    deadline = os.environ.get("TKEDISTRO_REAL_DEADLINE")
    if deadline and "real_k8s" in item.keywords:
        import time

        if time.time() > float(deadline):
            pytest.skip("the CI time budget for the real_k8s tier is used up "
                        "(TKEDISTRO_REAL_DEADLINE); run `make test-real` to run it fully")
