"""``conformance`` tests the cluster of ``$KUBECONFIG`` when it is set (as sonobuoy and
hydrophone do), ``--local`` still the release's local cluster; the run says which."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.unit.test_conformance_archive import _kubeconfig, _passed, build, flat, ws
from tkedistro.cli.app import app
from tkedistro.conformance import pipeline as conf
from tkedistro.conformance.pipeline import ConformanceOptions
from tkedistro.core.errors import ClusterError
from tkedistro.core.workspace import Workspace

__all__ = ["ws"]  # the fixture


def run(ws: Workspace, *args: str) -> Result:
    return CliRunner().invoke(app, ["--root", str(ws.root), "--cache-dir", str(ws.cache),
                                    "conformance", "1.20", "--no-build", *args],
                              env={"COLUMNS": "1000"})


def test_kubeconfig_defaults_to_the_first_file_of_KUBECONFIG(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(ws)
    handed: list[Path] = []

    def suite(options: object, bins: Path, kubeconfig: Path, report_dir: Path,
              repo_list: Path | None, skip: str) -> bool:
        handed.append(kubeconfig)
        return _passed(report_dir)

    monkeypatch.setattr(conf, "_suite", suite)
    kubeconfig = _kubeconfig(tmp_path)
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}{os.pathsep}{kubeconfig}")
    result = run(ws)
    assert result.exit_code == 0, result.output
    assert handed == [kubeconfig]
    assert (f"testing the existing cluster of {kubeconfig} (from $KUBECONFIG; --local tests "
            "the release's local cluster)") in flat(result)


@pytest.fixture
def options_seen(monkeypatch: pytest.MonkeyPatch) -> list[ConformanceOptions]:
    """The options the command hands the run (which stops there)."""
    seen: list[ConformanceOptions] = []

    def run_conformance(ws: object, release: str, options: ConformanceOptions,
                        engines: object) -> None:
        seen.append(options)
        raise ClusterError("stopped after the options")

    monkeypatch.setattr(conf, "run_conformance", run_conformance)
    return seen


def test_local_still_means_the_releases_local_cluster(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        options_seen: list[ConformanceOptions]) -> None:
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path)))
    assert run(ws, "--local").exit_code == 16
    given = tmp_path / "given"
    given.write_text("apiVersion: v1\n")
    assert run(ws, "--kubeconfig", str(given)).exit_code == 16
    assert [(o.kubeconfig, o.kubeconfig_from) for o in options_seen] == [
        (None, "--kubeconfig"), (given, "--kubeconfig")]


def test_without_KUBECONFIG_the_local_cluster_is_the_default(
        ws: Workspace, options_seen: list[ConformanceOptions]) -> None:
    assert "KUBECONFIG" not in os.environ  # the conftest fixture clears the caller's
    assert run(ws).exit_code == 16
    assert options_seen[0].kubeconfig is None


def test_a_KUBECONFIG_naming_no_file_is_a_usage_error(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        options_seen: list[ConformanceOptions]) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    result = run(ws)
    assert result.exit_code == 2
    assert (f"KUBECONFIG='{tmp_path / 'absent'}' names no file; pass --local for the "
            "release's local cluster") in flat(result)
    assert options_seen == []
