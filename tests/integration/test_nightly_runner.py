"""Docker tier, issue 15: the rendered nightly runs, step by step, as a GitHub-hosted runner
runs it, for a distro repo that is only `releases/` + `patches/` (no Makefile, no scripts).

The repo pins a small k8s-shaped upstream; a newer upstream tag conflicts with its one patch.
Every `run:` step of the nightly job runs in order as a non-root user with passwordless sudo,
the tool installed by the workflow's own step into a venv that is not on sudo's secure_path
(the package comes from a wheel of this checkout, as `pip install tkedistro==X` would get it
from an index). The `uses:` steps get the stand-ins of tests/helpers/runner.py. Conformance
needs the real tree (tests/real_k8s/test_conformance_real.py runs `--smoke` there): here its
step is replaced by a failing one, which also proves the `if: always()` steps after it run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO
from tests.helpers.gitrepo import make_upstream, write_manifest
from tests.helpers.runner import Runner
from tests.helpers.series import TRAILERS, make_patches
from tests.integration.test_build_docker import TOOL_FILES, upstream_files

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]
USER = "tkedistro-runner"
SUDOERS = Path("/etc/sudoers.d/tkedistro-runner-test")
CONFORMANCE = "Conformance (--smoke)"


@pytest.fixture(scope="module")
def runner_user() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("making a runner user with sudo needs root")
    if shutil.which("sudo") is None or shutil.which("runuser") is None:
        pytest.fail("sudo and runuser are needed (make install installs sudo)")
    subprocess.run(["id", USER], capture_output=True, check=False).returncode == 0 or \
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", USER], check=True)
    SUDOERS.write_text(f"{USER} ALL=(ALL) NOPASSWD:ALL\n")
    SUDOERS.chmod(0o440)
    try:
        yield USER
    finally:
        SUDOERS.unlink(missing_ok=True)


@pytest.fixture
def workspace(runner_user: str, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """The distro repo (releases/ + patches/ + the rendered workflows) and RUNNER_TEMP, both
    owned by the runner user, in a folder it can reach (pytest's tmp is root's only)."""
    base = Path("/var/tmp") / f"tkedistro-runner-{uuid.uuid4().hex[:8]}"
    try:
        yield _make_repo(base, tmp_path), base / "runner-temp"
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


def _make_repo(base: Path, tmp_path: Path) -> Path:
    up = make_upstream(base / "up", {
        "v1.20.0": {**upstream_files(), **TOOL_FILES, "README.md": "# tiny kubernetes\n"},
        "v1.20.1": {"README.md": "# tiny kubernetes (upstream)\n"}})
    repo = base / "distro"
    files = make_patches(tmp_path, up, repo / "patches" / "1.20",
                         [("README: say tke", {"README.md": "# tiny kubernetes (tke)\n"},
                           TRAILERS)])
    write_manifest(repo, "1.20", url=up.url, tag="v1.20.0", commit=up.tags["v1.20.0"],
                   patches=[f"patches/1.20/{f.name}" for f in files],
                   components=["kubectl", "kubelet", "kubeadm"])
    subprocess.run([sys.executable, "-m", "tkedistro", "--root", str(repo), "ci", "render"],
                   env={**os.environ, "PYTHONPATH": str(REPO)}, check=True, capture_output=True)
    wheels = base / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                    str(wheels), str(REPO)], check=True, capture_output=True)
    (base / "runner-temp").mkdir()
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(base)], check=True)
    base.chmod(0o755)
    return repo


def test_the_rendered_nightly_runs_step_by_step_as_a_runner_user(
        workspace: tuple[Path, Path]) -> None:
    repo, temp = workspace
    assert sorted(p.name for p in repo.iterdir()) == [".github", "patches", "releases"]
    nightly = YAML(typ="safe").load((repo / ".github/workflows/nightly.yml").read_text())
    job = nightly["jobs"]["nightly-1-20"]
    runs = "\n".join(str(step.get("run", "")) for step in job["steps"])
    assert "make " not in runs and "scripts/" not in runs
    home = Path(f"~{USER}").expanduser()
    runner = Runner(USER, repo, home, temp, replace={
        CONFORMANCE: "echo 'conformance needs the real Kubernetes tree' >&2; exit 1"})
    runner.env["PIP_FIND_LINKS"] = str(repo.parent / "wheels")
    results = runner.run_job(job)
    report = "\n".join(f"{r.outcome:8} {r.seconds:6.1f}s {r.name}" for r in results)
    print(report)
    by_name = {r.name: r for r in results}
    for name in ("Install tkedistro", "Host packages, binfmt, builder image, component bases",
                 "Source", "Build"):
        assert by_name[name].outcome == "success", f"{name}:\n{by_name[name].output[-3000:]}"
    assert by_name[CONFORMANCE].outcome == "failure"
    forecast = by_name["Forecast the series onto newer upstream tags"]
    assert (forecast.outcome, forecast.code) == ("failure", 20), forecast.output[-3000:]
    for name in ("Hand outputs and caches back to the runner user", "Collect the night's reports",
                 "Upload the night's reports"):
        assert by_name[name].outcome == "success", f"{name}:\n{by_name[name].output[-3000:]}"
    reports = temp / "nightly"
    assert {"build.log", "build-info.json", "SHA256SUMS", "forecast.json", "forecast.txt"} <= \
        {p.name for p in reports.iterdir()}
    conflict = json.loads((reports / "forecast.json").read_text())
    assert "conflict" in json.dumps(conflict)
    assert "[build] log:" in (reports / "build.log").read_text()
    summary = Path(runner.files()["summary"]).read_text()
    assert "v1.20.1" in summary and "conflict" in summary
    owner = {p.stat().st_uid for p in (repo / "_output").rglob("*")}
    assert owner == {_uid(USER)}  # handed back for the uploads and caches
    assert runner.failed  # so the alert job (`if: failure()`) opens or updates the issue
    alert = nightly["jobs"]["alert"]
    assert alert["if"] == "failure()" and alert["permissions"]["issues"] == "write"


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid
