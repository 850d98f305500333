"""Conformance results live in ``_results/<release>/conformance/<run>/`` with ``latest`` naming
the last report, tied to the build that ran, and a rebuild of ``_output/<release>`` (the build
pipeline with a fake container backend) leaves them where they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.engines import fake_engines
from tests.helpers.gitrepo import make_upstream
from tests.helpers.manifests import manifest_text
from tests.unit.test_build_plan import FakeBackend, FakeSource, fake_source
from tkedistro.build import container, pipeline
from tkedistro.build.plan import BuildPlan
from tkedistro.build.publish import Staging
from tkedistro.cli.app import app
from tkedistro.conformance import archive
from tkedistro.conformance import pipeline as conf
from tkedistro.core.workspace import Workspace

IMAGES = {"tkedistro/builder:go1.15-bullseye": "sha256:" + "a" * 64}
SPEC = "[sig-x] y [Conformance]"


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A distro repo whose builds write one small file per binary (a counter in each)."""
    root = tmp_path / "distro"
    (root / "releases").mkdir(parents=True)
    (root / "releases" / "1.20.yaml").write_text(manifest_text(components=("kubectl",)))
    up = make_upstream(tmp_path / "up")  # a tree the release tarballs can be made from
    fake_source(monkeypatch, FakeSource(up.work, up.tags["v1.20.1"]))
    builds: list[int] = []

    def build_in_container(backend: object, plan: BuildPlan, ws: Workspace, tree: Path,
                           staging: Staging, final: Path) -> container.Built:
        builds.append(1)
        rel = [str(t.output_path) for t in plan.targets]
        for name in rel:
            (staging.out / name).parent.mkdir(parents=True, exist_ok=True)
            (staging.out / name).write_text(f"#!/bin/sh\n# build {len(builds)}\n")
            (staging.out / name).chmod(0o755)
        return container.Built("1.15.15", rel, [])

    monkeypatch.setattr(container, "build_in_container", build_in_container)
    return Workspace(root=root, cache=tmp_path / "cache")


def build(ws: Workspace) -> None:
    from tkedistro.model.manifest import load_release
    from tkedistro.release.operation import build_release

    options = pipeline.BuildOptions(conformance_tools=True, force=True)
    build_release(ws, load_release(ws, "1.20"), options, fake_engines(FakeBackend(IMAGES)))


def _passed(report_dir: Path) -> bool:
    """What a suite that ran SPEC and passed leaves in ``report_dir`` (False: no failure)."""
    (report_dir / "e2e.log").write_text("ran\n")
    (report_dir / "junit_01.xml").write_text(
        f'<testsuite tests="1" failures="0"><testcase name="{SPEC}" time="1"/></testsuite>\n')
    return False


def _kubeconfig(tmp_path: Path) -> Path:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")
    return kubeconfig


def conformance(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                ) -> conf.ConformanceResult:
    def suite(options: object, bins: Path, kubeconfig: Path, report_dir: Path,
              repo_list: Path | None, skip: str) -> bool:
        return _passed(report_dir)

    monkeypatch.setattr(conf, "_suite", suite)
    kubeconfig = _kubeconfig(tmp_path)
    return conf.run_conformance(ws, "1.20", conf.ConformanceOptions(kubeconfig=kubeconfig,
                                                                    build=False),
                                fake_engines())


def test_a_rebuild_leaves_the_results_and_latest_names_them(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(ws)
    tested = archive.build_ref(ws.output_dir("1.20"))
    result = conformance(ws, tmp_path, monkeypatch)
    folder = result.report_dir
    assert folder.parent == ws.root / "_results" / "1.20" / "conformance"
    assert folder.name.endswith("Z-v1.20.2-tke.1")
    assert archive.latest_run(ws, "1.20") == folder
    assert (folder.parent / "latest").readlink() == Path(folder.name)  # relative

    build(ws)  # publishes a new _output/1.20 with other binaries

    assert archive.latest_run(ws, "1.20") == folder
    assert sorted(p.name for p in folder.iterdir()) == [
        "PRODUCT.yaml", "README.md", "SHA256SUMS", "build-info.json", "e2e.log",
        "junit_01.xml", "summary.json"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["passed"] == 1 and summary["report_dir"] == str(folder)
    # the results name the build that ran, which is no longer the one in _output
    assert tested is not None
    assert archive.build_ref(folder) == tested
    assert summary["build"] == tested.to_json()
    assert archive.build_ref(ws.output_dir("1.20")) != tested
    assert f"build tested: v1.20.2-tke.1, built {tested.finished_at}, SHA256SUMS " \
           f"{tested.sums_sha256[:12]}" in result.format_text()


def test_each_run_gets_its_own_folder_and_latest_moves(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(ws)
    first = conformance(ws, tmp_path, monkeypatch).report_dir
    second = conformance(ws, tmp_path, monkeypatch).report_dir
    assert first != second and first.is_dir()
    assert archive.latest_run(ws, "1.20") == second


def test_a_run_without_a_junit_file_keeps_its_log_and_leaves_latest(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tkedistro.core.errors import ConformanceFailedError

    build(ws)
    good = conformance(ws, tmp_path, monkeypatch).report_dir

    def suite(options: object, bins: Path, kubeconfig: Path, report_dir: Path,
              repo_list: Path | None, skip: str) -> bool:
        (report_dir / "e2e.log").write_text("the suite could not start\n")
        return False

    monkeypatch.setattr(conf, "_suite", suite)
    with pytest.raises(ConformanceFailedError) as err:
        conf.run_conformance(ws, "1.20", conf.ConformanceOptions(
            kubeconfig=tmp_path / "kubeconfig", build=False), fake_engines())
    assert err.value.message.endswith("junit_01.xml: no junit result; the suite did not get to "
                                      "write one")
    assert archive.latest_run(ws, "1.20") == good  # the last report, not the broken run


def test_folder_names_are_utc_time_and_version_and_never_reused(tmp_path: Path) -> None:
    ws = Workspace(root=tmp_path, cache=tmp_path / "cache")
    first = archive.start_run(ws, "1.20", "v1.20.2-tke.1", now=0)
    again = archive.start_run(ws, "1.20", "v1.20.2-tke.1", now=0)
    assert first.folder.name == "19700101T000000Z-v1.20.2-tke.1"
    assert again.folder.name == "19700101T000000Z-v1.20.2-tke.1.2"
    assert first.build is None  # no build-info.json in _output: nothing to copy
    assert archive.latest_run(ws, "1.20") is None


def cli_conformance(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    """``tkedistro conformance 1.20 --kubeconfig K --no-build`` with a suite that passes."""
    suite_ran: list[Path] = []

    def suite(options: object, bins: Path, kubeconfig: Path, report_dir: Path,
              repo_list: Path | None, skip: str) -> bool:
        suite_ran.append(report_dir)
        return _passed(report_dir)

    monkeypatch.setattr(conf, "_suite", suite)
    kubeconfig = _kubeconfig(tmp_path)
    result = CliRunner().invoke(app, ["--root", str(ws.root), "--cache-dir", str(ws.cache),
                                      "conformance", "1.20", "--kubeconfig", str(kubeconfig),
                                      "--no-build"], env={"COLUMNS": "1000"})
    assert not (result.exit_code and suite_ran), "the suite ran before the refusal"
    return result


def flat(result: Result) -> str:
    return " ".join(result.output.split())


def tree_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_a_symlinked_sha256sums_in_the_output_is_refused_not_copied(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit: ``conformance`` copied a symlinked ``_output/<release>/SHA256SUMS`` (any
    file, e.g. a secret) into a 0644 file of the results."""
    build(ws)
    secret = tmp_path / "secret"
    secret.write_text("root's secret\n")
    sums = ws.output_dir("1.20") / "SHA256SUMS"
    sums.unlink()
    sums.symlink_to(secret)

    result = cli_conformance(ws, tmp_path, monkeypatch)

    assert result.exit_code == 3, result.output
    assert f"{sums} is a symlink; tkedistro does not follow symlinks" in flat(result)
    assert f"remove the symlink ({sums}) and re-run" in flat(result)
    copied = [p for p in (ws.root / "_results").rglob("*") if p.is_file()]
    assert copied == []  # no run folder holds a copy of the secret
    assert secret.read_text() == "root's secret\n"


@pytest.mark.parametrize("linked", ["_results/1.20", "_results/1.20/conformance"])
def test_a_symlinked_results_folder_is_refused_and_nothing_outside_changes(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linked: str) -> None:
    """The audit: a symlinked ``_results/<release>/conformance`` (or ``_results/<release>``)
    made the tool write its run folders, reports and ``latest`` outside the root."""
    build(ws)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep\n")
    link = ws.root / linked
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)

    result = cli_conformance(ws, tmp_path, monkeypatch)

    assert result.exit_code == 3, result.output
    assert f"{link} is a symlink; tkedistro does not follow symlinks" in flat(result)
    assert tree_of(outside) == {"keep": b"keep\n"} and sorted(outside.iterdir()) == [
        outside / "keep"]


def test_latest_replaces_a_planted_symlink_without_following_it(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``latest`` is swapped in by one rename: a ``latest`` someone planted pointing at
    another folder is replaced, and that folder (and what is in it) is left alone."""
    build(ws)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "e2e.log").write_text("someone else's\n")
    base = ws.conformance_results_dir("1.20")
    base.mkdir(parents=True)
    (base / "latest").symlink_to(elsewhere)
    assert archive.latest_run(ws, "1.20") is None  # not a run folder beside it

    result = cli_conformance(ws, tmp_path, monkeypatch)

    assert result.exit_code == 0, result.output
    run = archive.latest_run(ws, "1.20")
    assert run is not None and run.parent == base
    assert (base / "latest").readlink() == Path(run.name)
    assert tree_of(elsewhere) == {"e2e.log": b"someone else's\n"}
    assert (run / "SHA256SUMS").read_bytes() == (ws.output_dir("1.20") / "SHA256SUMS"
                                                 ).read_bytes()
