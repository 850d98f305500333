"""Docker tier: `tkedistro bisect --build` and `--go-test` on a small Go upstream, each check
in the offline builder image, the build's own container (unprivileged, no network).

One series of 5 patches on the k8s-shaped upstream of test_build_docker.py plus a tiny Go
package with a test: patch 2 makes ``Add`` subtract (it compiles; its test fails), patch 3
breaks the kubelet's compile. ``--go-test ./pkg/calc/...`` names patch 2, ``--build kubelet``
names patch 3.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.gitrepo import git, make_upstream, write_manifest
from tests.helpers.series import TRAILERS, make_patches
from tests.integration.test_build_docker import BUILDER, COMPONENTS, upstream_files
from tkedistro.cli.app import app

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

CALC = "package calc\n\n// Add adds.\nfunc Add(a, b int) int { return a + b }\n"
CALC_TEST = '''package calc

import "testing"

func TestAdd(t *testing.T) {
\tif got := Add(2, 3); got != 5 {
\t\tt.Fatalf("Add(2, 3) = %d, want 5", got)
\t}
}
'''
SERIES: list[tuple[str, dict[str, str], str]] = [
    ("docs: say tke", {"README.md": "# tke\n"}, TRAILERS),
    ("calc: subtract instead", {"pkg/calc/calc.go": CALC.replace("a + b", "a - b")}, TRAILERS),
    ("kubelet: break the build", {"cmd/kubelet/main.go": "package main\n\nfunc main() { x }\n"},
     TRAILERS),
    ("docs: more", {"docs/tke.md": "tke\n"}, TRAILERS),
    ("docs: even more", {"docs/more.md": "more\n"}, TRAILERS),
]


@pytest.fixture
def distro(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if subprocess.run(["docker", "image", "inspect", BUILDER], capture_output=True).returncode:
        pytest.skip(f"builder image {BUILDER} is missing (sudo tkedistro builder-image 1.20)")
    monkeypatch.setenv("TKEDISTRO_CACHE", str(tmp_path / "cache"))
    up = make_upstream(tmp_path / "up", {"v1.20.0": {
        **upstream_files(), "pkg/calc/calc.go": CALC, "pkg/calc/calc_test.go": CALC_TEST}})
    root = tmp_path / "distro"
    files = make_patches(tmp_path, up, root / "patches" / "1.20", SERIES)
    write_manifest(root, "1.20", url=up.url, tag="v1.20.0", commit=up.tags["v1.20.0"],
                   patches=[f"patches/1.20/{f.name}" for f in files], components=COMPONENTS)
    return root


def bisect(root: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--root", str(root), "bisect", "1.20", "--json", *args])


def test_go_test_names_the_patch_that_breaks_a_test(distro: Path) -> None:
    src = distro / "_src" / "1.20"
    res = bisect(distro, "--go-test", "./pkg/calc/...")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["first_bad"]["position"] == 2
    assert data["first_bad"]["file"].endswith("0002-calc-subtract-instead.patch")
    assert data["check"] == {"kind": "go-test", "packages": ["./pkg/calc/..."],
                             "image": BUILDER}
    assert len(data["steps"]) <= 5
    log = Path(data["log"]).read_text()
    assert "Add(2, 3) = -1, want 5" in log
    assert f"user={os.getuid()}:{os.getgid()} network=none" in log  # the build's container
    assert git(src, "symbolic-ref", "-q", "HEAD") == "refs/heads/tkedistro"
    assert git(src, "status", "--porcelain") == ""
    assert (src / "_output" / "local" / "go" / "cache").is_dir()  # Kubernetes' own Go cache
    print(f"--go-test: {len(data['steps'])} steps, {data['seconds']}s")


def test_build_names_the_patch_that_breaks_the_component(distro: Path) -> None:
    res = bisect(distro, "--build", "kubelet")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["first_bad"]["position"] == 3
    assert data["first_bad"]["subject"] == "kubelet: break the build"
    assert {s["position"]: s["outcome"] for s in data["steps"]}[2] == "good"
    assert "cmd/kubelet/main.go" in data["log_tail"]  # the compiler's message
    assert git(distro / "_src" / "1.20", "status", "--porcelain") == ""
    print(f"--build: {len(data['steps'])} steps, {data['seconds']}s")


def test_an_unknown_component_is_refused_before_any_work(distro: Path) -> None:
    res = bisect(distro, "--build", "kube-nothing")
    assert res.exit_code == 3, res.output
    assert "kube-nothing" in res.output
    assert not (distro / "_src" / "1.20").exists()
