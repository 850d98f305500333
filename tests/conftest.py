"""Shared test fixtures: an isolated HOME/cache, a clean git environment, tier gating."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# A skip whose reason starts with this is deliberate (README "Tests": the list and why); any
# other skip under CI is a failure naming what is missing: CI must not hide a missing install.
DELIBERATE = "deliberate: "


def deliberate_skip(reason: str) -> None:
    """Skip for a documented, deliberate reason (allowed in CI; counted apart)."""
    pytest.skip(DELIBERATE + reason)


def _in_ci() -> bool:
    return bool(os.environ.get("CI"))


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and the tkedistro cache under tmp, no inherited GIT_*, KUBECONFIG or SUDO_*,
    a fixed git identity."""
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith("GIT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("TKEDISTRO_CACHE", str(home / ".cache" / "tkedistro"))
    monkeypatch.delenv("TKEDISTRO_UPSTREAM", raising=False)
    # a caller's signing key never signs a test's build
    for key in [k for k in os.environ if k.startswith("TKEDISTRO_SIGNING_")]:
        monkeypatch.delenv(key)
    # kubectl's file and sudo's caller: a test's cluster never touches the caller's kubeconfig
    for key in ("KUBECONFIG", "SUDO_UID", "SUDO_GID", "SUDO_USER", "SUDO_COMMAND"):
        monkeypatch.delenv(key, raising=False)
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


# tier marker -> the environment variable CI sets to that tier's deadline (epoch seconds) and
# the make target that runs the tier fully
DEADLINES = {"real_k8s": ("TKEDISTRO_REAL_DEADLINE", "make test-real"),
             "vm": ("TKEDISTRO_VM_DEADLINE", "make test-vm")}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """CI gives the real_k8s and vm tiers deadlines; past one, that tier's remaining tests
    skip and say why."""
    for marker, (variable, target) in DEADLINES.items():
        deadline = os.environ.get(variable)
        if deadline and marker in item.keywords:
            import time

            if time.time() > float(deadline):
                deliberate_skip(f"the CI time budget for the {marker} tier is used up "
                                f"({variable}); run `{target}` to run it fully")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Under CI a skip that is not deliberate fails, naming what the test lacked."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if not (report.skipped and _in_ci()) or hasattr(report, "wasxfail"):
        return None
    reason = _skip_reason(report)
    if reason.startswith(DELIBERATE):
        return None
    report.outcome = "failed"
    report.longrepr = (f"CI is set and this test skipped: {reason}\n"
                       "A test must not skip in CI for a missing tool, image or privilege: "
                       "`make install` installs what the tests need.")
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line with the skip count, the deliberate ones apart; with TKEDISTRO_SKIP_REPORT set,
    the same counts and each skip's reason are appended to that file (.ci/run and
    scripts/clean-room.sh add them up over the tiers)."""
    if hasattr(terminalreporter.config, "workerinput"):
        return  # an xdist worker: the controller counts its skips
    skipped = terminalreporter.stats.get("skipped", [])
    reasons = [_skip_reason(r) for r in skipped]
    deliberate = sum(reason.startswith(DELIBERATE) for reason in reasons)
    line = (f"tkedistro: {len(skipped)} skipped ({deliberate} deliberate, "
            f"{len(skipped) - deliberate} other)")
    terminalreporter.write_line(line)
    report = os.environ.get("TKEDISTRO_SKIP_REPORT")
    if report:
        args = " ".join(terminalreporter.config.invocation_params.args)
        with open(report, "a", encoding="utf-8") as out:  # a test-run log, not tool state
            out.write(f"{line} in `pytest {args}`\n")
            out.writelines(f"  skipped {r.nodeid}: {reason}\n"
                           for r, reason in zip(skipped, reasons, strict=True))
