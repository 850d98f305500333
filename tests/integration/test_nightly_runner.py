"""Docker tier, issues 15 and 26: the rendered nightly runs, step by step, as a GitHub-hosted
runner runs it, two nights in a row, for a distro repo that is only `releases/`, `patches/`,
`tkedistro.yaml` and the wheel of this checkout it names as the install source (no Makefile,
no scripts).

The repo pins a small k8s-shaped upstream; a newer upstream tag conflicts with its one patch.
Every step of the nightly job runs in order as a non-root user with passwordless sudo, with
`RUNNER_ENVIRONMENT=github-hosted` (so the disk clean-up really runs: the test first checks
that none of the folders it deletes exists on this machine, and fails rather than let it
delete one), the tool installed by the workflow's own step into a venv that is not on sudo's
secure_path. The `uses:` steps get the stand-ins of tests/helpers/runner.py; the caches go to
a real store folder, so the second night, on a fresh workspace, HOME and RUNNER_TEMP as a new
runner has, restores every cache: the upstream mirror (nothing fetched), Kubernetes' Go build
cache put back into the tree by the workflow's own step (nothing compiled) and the builder
image archive loaded by the workflow's `docker load` (the image's tag is removed between the
nights; host-setup then has nothing to make, no debootstrap).

The builder image gets a fresh name for the test (a tag of the machine's builder image), so
removing it between the nights touches nothing else. The small upstream's hack/build.sh keeps
its Go cache in `_output/local/go/cache` as Kubernetes' hack/lib/golang.sh does.

Conformance needs a cluster of the real tree, which this small upstream cannot start:
tests/real_k8s/test_conformance_real.py runs the rendered step itself. Here the step is
replaced by a failing one, which also proves the `if: always()` steps after it run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO
from tests.helpers.gitrepo import make_upstream, write_manifest
from tests.helpers.runner import CacheStore, Runner, StepResult
from tests.helpers.series import TRAILERS, make_patches
from tests.integration.test_build_docker import BUILD_SH, TOOL_FILES, upstream_files
from tkedistro.model.manifest import load_manifest

pytestmark = [pytest.mark.docker, pytest.mark.timeout(3000)]
USER = "tkedistro-runner"
SUDOERS = Path("/etc/sudoers.d/tkedistro-runner-test")
CONFORMANCE = "Conformance (--smoke)"
DISK = "Free disk space (GitHub-hosted runners only)"
HOST_SETUP = "Host packages, binfmt, builder image, component bases"
PUT_GOCACHE = "Put the Go build cache into the tree"
LOAD = "Load the builder image; hand the cache folder to root"
BUILDER = load_manifest(REPO / "releases" / "1.20.yaml").builder.image
# Kubernetes' hack/lib/golang.sh keeps the Go build cache in the tree (KUBE_GOPATH/cache)
K8S_BUILD_SH = BUILD_SH.replace("set -euo pipefail\n",
                                'set -euo pipefail\nexport GOCACHE="$PWD/_output/local/go/cache"\n')


@pytest.fixture(scope="module")
def runner_user() -> Iterator[str]:
    if os.geteuid() != 0:
        message = ("the nightly emulation makes a runner user with passwordless sudo: "
                   "run it as root (`sudo make test`)")
        if os.environ.get("CI"):
            pytest.fail(f"CI is set: {message}")
        pytest.skip(message)
    if shutil.which("sudo") is None or shutil.which("runuser") is None:
        pytest.fail("sudo and runuser are needed (make install installs sudo)")
    # a fresh user and home each run: nothing an earlier run left in ~/.cache may warm this one
    _remove_user()
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", USER], check=True)
    SUDOERS.write_text(f"{USER} ALL=(ALL) NOPASSWD:ALL\n")
    SUDOERS.chmod(0o440)
    try:
        yield USER
    finally:
        SUDOERS.unlink(missing_ok=True)
        _remove_user()


def _remove_user() -> None:
    """The runner user and its home, when a run (this one or an earlier) made them."""
    if subprocess.run(["id", USER], capture_output=True, check=False).returncode == 0:
        subprocess.run(["userdel", "--remove", USER], capture_output=True, check=False)


def _image_id(ref: str) -> str | None:
    done = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


@pytest.fixture
def builder_tag() -> Iterator[str]:
    """A fresh name for the machine's builder image; only that tag is removed, at the end."""
    if _image_id(BUILDER) is None:
        pytest.skip(f"the builder image {BUILDER} is missing (make install makes it)")
    tag = f"tkedistro-test/builder:night-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "tag", BUILDER, tag], check=True)
    try:
        yield tag
    finally:
        subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)


@pytest.fixture
def base(runner_user: str) -> Iterator[Path]:
    """A folder the runner user can reach (pytest's tmp is root's only)."""
    folder = Path("/var/tmp") / f"tkedistro-runner-{uuid.uuid4().hex[:8]}"
    folder.mkdir(mode=0o755)
    try:
        yield folder
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(folder)], check=False)


def _make_repo(base: Path, tmp_path: Path, builder: str) -> Path:
    """The distro repo: releases/, patches/, the wheel and tkedistro.yaml naming it, and the
    rendered workflows."""
    files = {**upstream_files(), **TOOL_FILES, "hack/build.sh": K8S_BUILD_SH,
             "README.md": "# tiny kubernetes\n"}
    up = make_upstream(base / "up", {"v1.20.0": files,
                                     "v1.20.1": {"README.md": "# tiny kubernetes (upstream)\n"}})
    repo = base / "distro"
    patches = make_patches(tmp_path, up, repo / "patches" / "1.20",
                           [("README: say tke", {"README.md": "# tiny kubernetes (tke)\n"},
                             TRAILERS)])
    manifest = write_manifest(repo, "1.20", url=up.url, tag="v1.20.0",
                              commit=up.tags["v1.20.0"],
                              patches=[f"patches/1.20/{f.name}" for f in patches],
                              components=["kubectl", "kubelet", "kubeadm"])
    text = manifest.read_text()
    assert f"image: {BUILDER}\n" in text, text
    manifest.write_text(text.replace(f"image: {BUILDER}\n", f"image: {builder}\n"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                    str(repo / "wheels"), str(REPO)], check=True, capture_output=True)
    wheel = next((repo / "wheels").glob("tkedistro-*.whl"))
    # the nightly installs the tool from the wheel committed to the repo (ci.install)
    (repo / "tkedistro.yaml").write_text(
        f"schema: 1\nci:\n  install:\n    wheel: wheels/{wheel.name}\n")
    rendered = subprocess.run(
        [sys.executable, "-m", "tkedistro", "--root", str(repo), "ci", "render"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=False)
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(base)], check=True)
    return repo


def _disk_paths(job: dict[str, Any]) -> list[Path]:
    """The absolute paths the disk clean-up step deletes; none may exist on this machine."""
    script = next(str(s["run"]) for s in job["steps"] if s.get("name") == DISK)
    paths = [Path(p) for line in script.splitlines() if "rm -rf" in line
             for p in line.split("rm -rf", 1)[1].split() if p.startswith("/")]
    assert paths, f"no `rm -rf /...` in the step {DISK!r}:\n{script}"
    if present := [str(p) for p in paths if p.exists() or p.is_symlink()]:
        pytest.fail(f"the step {DISK!r} deletes {', '.join(present)}, which exist on this "
                    "machine: the emulation will not run it here")
    return paths


def _count(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


@dataclass
class Night:
    repo: Path
    temp: Path
    gocache: Path  # Kubernetes' Go cache in the tree
    results: dict[str, StepResult] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # Go cache files after a step
    image: str | None = None
    runner: Runner | None = None
    saved_gocache: int = 0  # files the night left in RUNNER_TEMP for the cache to save
    left_gocache: int = 0  # files left in the tree (a night that restored its cache)
    sums: str = ""  # SHA256SUMS of the night's build

    def measure(self, result: StepResult) -> None:
        self.counts[result.name] = _count(self.gocache)

    def ok(self, *names: str) -> None:
        for name in names:
            got = self.results[name]
            assert got.outcome == "success", f"{name}:\n{got.output[-3000:]}"


def _run_night(number: int, base: Path, job: dict[str, Any], store: CacheStore,
               builder: str, disk: list[Path]) -> Night:
    """One night on a fresh runner: a fresh copy of the repo, fresh HOME and RUNNER_TEMP, at
    the same paths every night as on GitHub's runners (a cache restores only to the paths it
    was saved from); the folder is renamed `night-<number>` after it."""
    folder = base / "runner"
    subprocess.run(["runuser", "-u", USER, "--", "mkdir", "-p", str(folder / "home"),
                    str(folder / "temp")], check=True)
    subprocess.run(["runuser", "-u", USER, "--", "cp", "-a", str(base / "distro"),
                    str(folder / "distro")], check=True)
    script = next(str(s["run"]) for s in job["steps"] if s.get("name") == PUT_GOCACHE)
    tree_cache = re.search(r"gocache=(\S+)", script)
    assert tree_cache, script
    night = Night(folder / "distro", folder / "temp",
                  folder / "distro" / tree_cache.group(1).strip("'\""))
    runner = Runner(USER, night.repo, folder / "home", night.temp, replace={
        CONFORMANCE: "echo 'conformance needs the real Kubernetes tree' >&2; exit 1"},
        environment="github-hosted", cache=store, after_step=night.measure,
        trace=frozenset({DISK, LOAD}))
    runner.env["PIP_FIND_LINKS"] = str(night.repo / "wheels")  # for a `tkedistro==X` install
    runner.env["PIP_CACHE_DIR"] = str(base / "pip-cache")  # the index's downloads, once
    results = runner.run_job(job)
    print(f"night {number}:\n" + "\n".join(f"{r.outcome:8} {r.seconds:6.1f}s {r.name}"
                                           for r in results))
    night.results, night.runner, night.image = {r.name: r for r in results}, runner, \
        _image_id(builder)
    night.saved_gocache, night.left_gocache = _count(night.temp / "k8s-go-cache"), \
        _count(night.gocache)
    sums = night.temp / "nightly" / "SHA256SUMS"
    night.sums = sums.read_text() if sums.is_file() else ""
    try:
        _check_night(night, disk)
    finally:
        folder.rename(base / f"night-{number}")
    return night


def _check_night(night: Night, disk: list[Path]) -> None:
    """What every night does: the tool installed and run, the failing steps fail as they
    should, the `if: always()` steps after them run, the reports are there."""
    night.ok("Install tkedistro", DISK, HOST_SETUP, "Source", "Build")
    removal = f"+ sudo rm -rf {' '.join(map(str, disk))}"  # the github-hosted branch ran
    assert removal in night.results[DISK].output, night.results[DISK].output
    assert not [p for p in disk if p.exists()]
    assert night.results[CONFORMANCE].outcome == "failure"
    forecast = night.results["Forecast the series onto newer upstream tags"]
    assert (forecast.outcome, forecast.code) == ("failure", 20), forecast.output[-3000:]
    night.ok("Hand outputs and caches back to the runner user", "Collect the night's reports",
             "Upload the night's reports")
    reports = night.temp / "nightly"
    assert {"build.log", "build-info.json", "SHA256SUMS", "forecast.json", "forecast.txt"} <= \
        {p.name for p in reports.iterdir()}
    assert "conflict" in json.dumps(json.loads((reports / "forecast.json").read_text()))
    assert "[build] log:" in (reports / "build.log").read_text()
    assert night.runner is not None
    summary = Path(night.runner.files()["summary"]).read_text()
    assert "v1.20.1" in summary and "conflict" in summary
    owner = {p.stat().st_uid for p in (night.repo / "_output").rglob("*")}
    assert owner == {_uid(USER)}  # handed back for the uploads and caches
    assert night.runner.failed  # so the alert job opens or updates the issue


def test_two_nights_the_second_restores_every_cache_and_rebuilds_nothing(
        base: Path, builder_tag: str, tmp_path: Path) -> None:
    repo = _make_repo(base, tmp_path, builder_tag)
    assert sorted(p.name for p in repo.iterdir()) == \
        [".github", "patches", "releases", "tkedistro.yaml", "wheels"]
    nightly = YAML(typ="safe").load((repo / ".github/workflows/nightly.yml").read_text())
    job = nightly["jobs"]["nightly-1-20"]
    runs = "\n".join(str(step.get("run", "")) for step in job["steps"])
    assert "make " not in runs and "scripts/" not in runs
    disk = _disk_paths(job)
    store = CacheStore(base / "cache-store", USER)
    subprocess.run(["runuser", "-u", USER, "--", "mkdir", str(store.root)], check=True)

    first = _run_night(1, base, job, store, builder_tag, disk)
    saved = sorted(json.loads(p.read_text())["key"] for p in store.root.glob("*/entry.json"))
    assert [k.split("-")[1] for k in saved] == ["builder", "gocache", "mirror"], saved
    subprocess.run(["docker", "rmi", builder_tag], check=True, capture_output=True)
    assert _image_id(builder_tag) is None  # so night 2 must load it from the cache

    second = _run_night(2, base, job, store, builder_tag, disk)
    print(_table(_figures(first, second, builder_tag)))
    assert second.runner is not None
    for step in ("mirror", "gocache", "builder"):  # every cache restored, exactly
        assert second.runner.outputs[step]["cache-hit"] == "true", second.runner.outputs
    assert f"Loaded image: {builder_tag}" in second.results[LOAD].output
    assert first.image is not None and second.image == first.image
    host = second.results[HOST_SETUP].output
    assert "nothing to do: this host is ready" in host and "done:" not in host, host
    assert "debootstrap" not in host, host
    assert "fetching v1.20.0" in first.results["Source"].output
    assert "fetching" not in second.results["Source"].output, second.results["Source"].output
    assert second.counts[PUT_GOCACHE] == first.saved_gocache > 0  # all of it, in the tree
    # nothing compiled: the build added no entry to the restored Go cache
    assert second.counts["Build"] == second.counts[PUT_GOCACHE]
    assert second.sums == first.sums != ""  # and made the same binaries
    assert len(list(store.root.glob("*/entry.json"))) == 3  # night 2 had nothing to save


def _figures(first: Night, second: Night, tag: str) -> dict[str, tuple[object, object]]:
    def both(measure: Callable[[Night], object]) -> tuple[object, object]:
        return measure(first), measure(second)

    def out(step: str, text: str) -> Callable[[Night], object]:
        return lambda n: text in n.results[step].output

    return {
        "Go cache files, restored into the tree": both(lambda n: n.counts[PUT_GOCACHE]),
        "Go cache files, after Build": both(lambda n: n.counts["Build"]),
        "Go cache files, saved / left in the tree": (first.saved_gocache,
                                                     second.left_gocache),
        "builder image id": both(lambda n: str(n.image)[:19]),
        f"builder image {tag.split(':')[1]} loaded": both(out(LOAD, "Loaded image")),
        "host-setup made something": both(out(HOST_SETUP, "done:")),
        "debootstrap in host-setup": both(out(HOST_SETUP, "debootstrap")),
        "upstream fetched by Source": both(out("Source", "fetching")),
        "Build seconds": both(lambda n: round(n.results["Build"].seconds, 1)),
    }


def _table(figures: dict[str, tuple[object, object]]) -> str:
    lines = [f"{'':42} {'night 1':>20} {'night 2':>20}"]
    lines += [f"{name:42} {str(a):>20} {str(b):>20}" for name, (a, b) in figures.items()]
    return "\n".join(lines)


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid
