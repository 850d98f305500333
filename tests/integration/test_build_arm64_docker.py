"""Docker tier: linux/amd64 + linux/arm64 builds of a small k8s-shaped upstream in the real
builder image. The arm64 binaries (a cgo-linked kubelet among them, as in Kubernetes) and pause
compiled from the tree are smoke-checked under qemu-aarch64 (binfmt_misc) in the builder
container; without emulation the build says plainly which binaries were not run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.gitrepo import make_upstream, write_manifest
from tests.integration.test_build_docker import BUILD_SH, TOOL_FILES, upstream_files
from tkedistro.cli.app import app
from tkedistro.engine import emulation

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

COMPONENTS = ["kubectl", "kubelet", "kubeadm"]
BOTH = ("-p", "linux/amd64", "-p", "linux/arm64")
EMULATION = emulation.can_run("linux/arm64")

# As hack/lib/golang.sh: the kubelet is not in KUBE_STATIC_LIBRARIES, so it is built with cgo,
# with the platform's cross compiler; the rest are static.
CGO_BUILD_SH = BUILD_SH.replace(
    "    GOOS=${os} GOARCH=${arch} CGO_ENABLED=0 go",
    """    cgo=0; cc=gcc
    if [ "${what}" = cmd/kubelet ]; then
      cgo=1
      if [ "${arch}" = arm64 ]; then cc=aarch64-linux-gnu-gcc; fi
    fi
    GOOS=${os} GOARCH=${arch} CGO_ENABLED=${cgo} CC=${cc} go""")
assert CGO_BUILD_SH != BUILD_SH
KUBELET_CGO = """package main

// static int cgo_answer(void) { return 42; }
import "C"

var cgoAnswer = int(C.cgo_answer())
"""
# build/pause in miniature: the version comes from -DVERSION, `-v` prints it
PAUSE_C = r"""#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define STRINGIFY(x) #x
#define VERSION_STRING(x) STRINGIFY(x)
#ifndef VERSION
#define VERSION HEAD
#endif

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "-v")) {
      printf("pause.c %s\n", VERSION_STRING(VERSION));
      return 0;
    }
  }
  for (;;) pause();
  return 1;
}
"""
ARM64_FILES: dict[str, str | bytes | None] = {
    **TOOL_FILES,
    "hack/build.sh": CGO_BUILD_SH,
    "cmd/kubelet/cgo.go": KUBELET_CGO,
    "build/pause/linux/pause.c": PAUSE_C,
    "build/pause/Makefile": "REGISTRY ?= staging-k8s.gcr.io\nTAG = 3.4\n",
}


@pytest.fixture(scope="module")
def go_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tkedistro-cache")


@pytest.fixture
def root(tmp_path: Path, go_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TKEDISTRO_CACHE", str(go_cache))
    upstream = make_upstream(tmp_path / "up", {"v1.20.0": upstream_files(),
                                               "v1.20.6": ARM64_FILES})
    distro = tmp_path / "distro"
    write_manifest(distro, "1.20", url=upstream.url, tag="v1.20.6",
                   commit=upstream.tags["v1.20.6"], components=COMPONENTS,
                   extra="images: [pause]\n")
    return distro


def build(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--root", str(root), "build", "1.20", *args])
    return result.exit_code, result.output


def info_of(root: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((root / "_output/1.20/build-info.json").read_text())
    return data


@pytest.mark.skipif(not EMULATION[0], reason=f"no arm64 emulation here: {EMULATION[1]}")
def test_arm64_binaries_and_pause_run_under_qemu_and_report_the_distro_version(
        root: Path) -> None:
    code, out = build(root, *BOTH, "--with-conformance-tools")
    assert code == 0, out
    for name in ("kubectl", "kubelet", "kubeadm", "pause"):
        assert f"bin/linux/arm64/{name}  sha256:" in out
        assert "runs (qemu): v1.20.6-tke.1" in out.split(f"bin/linux/arm64/{name}  ")[1] \
            .splitlines()[0], out
        assert "runs: v1.20.6-tke.1" in out.split(f"bin/linux/amd64/{name}  ")[1].splitlines()[0]
    assert "not run" not in out
    bins = root / "_output/1.20/bin/linux/arm64"
    kubelet = bins / "kubelet"
    assert b"/lib/ld-linux-aarch64.so.1" in kubelet.read_bytes()  # cgo: dynamically linked
    assert b"/lib/ld-linux-aarch64.so.1" not in (bins / "kubectl").read_bytes()
    smoke = info_of(root)["smoke"]
    assert isinstance(smoke, list)
    arm = {s["component"]: s for s in smoke if s["platform"] == "linux/arm64"}
    assert sorted(arm) == ["kubeadm", "kubectl", "kubelet", "pause"]  # no tools for arm64
    assert {(s["run"], s["how"], s["version"], s["exit_code"]) for s in arm.values()} == {
        ("emulated", "qemu-aarch64 via binfmt_misc (F)", "v1.20.6-tke.1", 0)}
    assert arm["kubelet"]["command"] == ("env QEMU_LD_PREFIX=/usr/aarch64-linux-gnu "
                                         "/tkedistro/out/bin/linux/arm64/kubelet --version")
    assert sorted(p.name for p in bins.iterdir()) == ["kubeadm", "kubectl", "kubelet", "pause"]
    amd = sorted(p.name for p in (root / "_output/1.20/bin/linux/amd64").iterdir())
    assert amd == ["e2e.test", "ginkgo", "kubeadm", "kubectl", "kubelet", "pause"]
    # independent of the smoke check: the host runs the arm64 pause through the same binfmt
    ran = subprocess.run([str(bins / "pause"), "-v"], capture_output=True, text=True,
                         check=True)
    assert ran.stdout == "pause.c v3.4-v1.20.6-tke.1\n"
    log = (root / "_output/1.20/build.log").read_text()
    assert "$ make all WHAT=test/e2e/e2e.test vendor/github.com/onsi/ginkgo/ginkgo " \
           "KUBE_BUILD_PLATFORMS=linux/amd64\n" in log
    assert "$ aarch64-linux-gnu-gcc -Os -Wall -Werror -static -DVERSION=v3.4-v1.20.6-tke.1 " \
           "-o _output/local/bin/linux/arm64/pause build/pause/linux/pause.c\n" in log
    code, out = build(root, *BOTH, "--with-conformance-tools")
    assert code == 0 and "1.20 is up to date" in out


def test_without_emulation_arm64_is_built_and_plainly_reported_not_run(
        root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = emulation.can_run
    no_binfmt = tmp_path / "no-binfmt_misc"
    monkeypatch.setattr(emulation, "can_run", lambda platform: real(platform, no_binfmt))
    code, out = build(root, *BOTH)
    assert code == 0, out
    reason = real("linux/arm64", no_binfmt)[1]
    assert f"binfmt_misc is not mounted at {no_binfmt}" in reason
    assert f"linux/arm64: 4 binaries not run ({reason}); they are not checked" in out
    kubelet_line = next(line for line in out.splitlines() if "bin/linux/arm64/kubelet " in line)
    assert kubelet_line.endswith("  not run"), out
    assert "runs: v1.20.6-tke.1" in out  # amd64 still checked
    smoke = info_of(root)["smoke"]
    assert isinstance(smoke, list)
    assert [(s["component"], s["run"], s["exit_code"]) for s in smoke
            if s["platform"] == "linux/arm64"] == [
        ("kubelet", "not run", None), ("kubectl", "not run", None),
        ("kubeadm", "not run", None), ("pause", "not run", None)]
    elf = (root / "_output/1.20/bin/linux/arm64/kubectl").read_bytes()[:20]
    assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == 0xB7  # aarch64
