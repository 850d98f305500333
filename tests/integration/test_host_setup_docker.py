"""`tkedistro builder-image` and `host-setup` against the real engine and this host.

`make install` makes the real builder image (tkedistro/builder:go1.15-bullseye) before the
tests run, so each test starts from what a brand-new machine has after it: an image made by
an older tkedistro (no inputs label) is made by the test itself from the real one, never
expected from an earlier run; a builder image under a test name is made once by debootstrap
(minutes) and reused by its inputs label on every later run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO
from tkedistro.cli.app import app
from tkedistro.debian.rootfs import INPUTS_LABEL
from tkedistro.engine.docker_images import DockerImages

pytestmark = [pytest.mark.docker]
runner = CliRunner()
REAL = "tkedistro/builder:go1.15-bullseye"
TEST_IMAGE = "tkedistro-test/builder:go1.15-bullseye"
OLDER = "tkedistro-test/builder:older-script"


def _distro(tmp_path: Path, image: str = REAL) -> Path:
    repo = tmp_path / "distro"
    shutil.copytree(REPO / "releases", repo / "releases")
    manifest = repo / "releases" / "1.20.yaml"
    manifest.write_text(manifest.read_text().replace(f"image: {REAL}", f"image: {image}"))
    return repo


def _docker(*argv: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(["docker", *argv], input=stdin, capture_output=True, check=True)
    return done.stdout.decode().strip()


@pytest.fixture
def older_image() -> Iterator[str]:
    """The real builder image as the old script made it: same files, ENV and Go label, no
    inputs label. Made from the real image in this test (export + import), removed after."""
    config = json.loads(_docker("image", "inspect", REAL))[0]["Config"]
    labels = config.get("Labels") or {}
    changes = [f"ENV {env}" for env in config.get("Env") or []]
    changes += [f"LABEL {key}={json.dumps(value)}" for key, value in labels.items()
                if key != INPUTS_LABEL]
    container = _docker("create", REAL, "true")
    try:
        rootfs = subprocess.run(["docker", "export", container], capture_output=True,
                                check=True).stdout
    finally:
        _docker("rm", container)
    argv = ["import"] + [arg for change in changes for arg in ("--change", change)]
    _docker(*argv, "-", OLDER, stdin=rootfs)
    try:
        yield OLDER
    finally:
        subprocess.run(["docker", "rmi", "-f", OLDER], capture_output=True)


def test_an_image_made_by_an_older_tkedistro_is_kept_not_rebuilt(
        tmp_path: Path, older_image: str) -> None:
    engine = DockerImages()
    before = engine.labels(older_image)
    assert before is not None and INPUTS_LABEL not in before
    result = runner.invoke(app, ["--root", str(_distro(tmp_path, older_image)), "builder-image",
                                 "1.20", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["changed"] is False
    assert [i["action"] for i in report["images"]] == ["kept"]
    assert report["images"][0]["detail"].startswith("kept (made by an older tkedistro; Go 1.15.")
    assert engine.labels(older_image) == before


def test_the_builder_image_make_install_made_is_reused(tmp_path: Path) -> None:
    labels = DockerImages().labels(REAL)
    assert labels is not None, f"{REAL} is not in the engine: `make install` makes it"
    result = runner.invoke(app, ["--root", str(_distro(tmp_path)), "builder-image", "1.20",
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [i["action"] for i in report["images"]] == ["reused"]
    assert DockerImages().labels(REAL) == labels


def test_host_setup_check_reports_this_host_ready(tmp_path: Path) -> None:
    assert DockerImages().labels(REAL) is not None, \
        f"{REAL} is not in the engine: `make install` makes it"
    result = runner.invoke(app, ["--root", str(_distro(tmp_path)), "host-setup", "--check"])
    assert result.exit_code == 0, result.output
    assert "ok   builder image 1.20" in result.output
    assert "ok   host packages                  installed" in result.output
    assert result.output.rstrip().endswith("nothing to do: this host is ready")


def test_a_builder_image_is_made_once_then_reused(tmp_path: Path) -> None:
    """Made by debootstrap the first time this runs on a host (minutes), reused after."""
    if os.geteuid() != 0:
        pytest.skip("making a builder image needs root (debootstrap)")
    root = _distro(tmp_path, TEST_IMAGE)
    first = runner.invoke(app, ["--root", str(root), "builder-image", "1.20", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["images"][0]["action"] in ("made", "reused")
    labels = DockerImages().labels(TEST_IMAGE) or {}
    assert labels["org.tkedistro.go-version"].startswith("1.15.")
    assert labels["org.tkedistro.base"] == "debian-bullseye"
    again = runner.invoke(app, ["--root", str(root), "builder-image", "1.20"])
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        f"1.20: {TEST_IMAGE} reused (its inputs label matches)",
        "nothing to do: every builder image is in place"]
    assert (DockerImages().labels(TEST_IMAGE) or {})[INPUTS_LABEL] == labels[INPUTS_LABEL]


def test_host_setup_on_a_ready_host_changes_nothing_and_says_so(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("host-setup (not --check) runs as root")
    root = str(_distro(tmp_path))
    if runner.invoke(app, ["--root", root, "host-setup", "--check"]).exit_code != 0:
        pytest.skip("this host is not ready; host-setup would install (not in a test)")
    result = runner.invoke(app, ["--root", root, "host-setup", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["ready"], report["done"]) == (True, [])
    text = runner.invoke(app, ["--root", root, "host-setup"])
    assert text.stdout.splitlines()[-1] == "nothing to do: this host is ready"
