"""Docker tier: `tkedistro build` of a small k8s-shaped Go upstream in the offline builder
image, in a real container (real compiler, real version stamping, real smoke check)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO
from tests.helpers.gitrepo import Upstream, make_upstream, write_manifest
from tkedistro.cli.app import app
from tkedistro.model.manifest import load_manifest

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

BUILDER = load_manifest(REPO / "releases" / "1.20.yaml").builder.image
FAKE_GO_IMAGE = "tkedistro-test/fake-go:go1.19"
FAKE_GO_LABEL = "tkedistro-test=fake-go"
COMPONENTS = ["kubectl", "kubelet", "kubeadm"]

MAIN_GO = '''package main

import (
\t"fmt"
\t"os"
)

var gitVersion = "v0.0.0-master+$Format:%h$"
var gitCommit = ""

func main() {
\tfor _, arg := range os.Args[1:] {
\t\tif arg == "--version" || arg == "version" {
\t\t\tfmt.Printf(FORMAT, gitVersion, gitCommit)
\t\t\treturn
\t\t}
\t}
\tfmt.Println("NAME: no command given")
}
'''
FORMATS = {
    "kubectl": '"Client Version: version.Info{GitVersion:%q, GitCommit:%q}\\n"',
    "kubeadm": '"%s\\n%.0s"',
    "kubelet": '"Kubernetes %s (%s)\\n"',
}
MAKEFILE = """WHAT ?= cmd/kubectl
KUBE_BUILD_PLATFORMS ?= linux/amd64

.PHONY: all
all:
\tbash hack/build.sh
"""
BUILD_SH = """#!/usr/bin/env bash
# A miniature of Kubernetes' hack/lib/golang.sh: honours WHAT, KUBE_BUILD_PLATFORMS and
# KUBE_GIT_VERSION_FILE, leaves binaries in _output/local/bin/<os>/<arch>/.
set -euo pipefail
source "${KUBE_GIT_VERSION_FILE}"
for platform in ${KUBE_BUILD_PLATFORMS}; do
  os=${platform%/*}; arch=${platform#*/}
  out=_output/local/bin/${os}/${arch}
  mkdir -p "${out}"
  for what in ${WHAT}; do
    echo "+++ building ${what} for ${platform}"
    # like k8s: *.test targets are `go test -c` of their folder; vendor/X builds package X
    case "${what}" in
      *.test) cmd=(test -c); pkg="./${what%/*}" ;;
      vendor/*) cmd=(build -mod=vendor); pkg="${what#vendor/}" ;;
      *) cmd=(build); pkg="./${what}" ;;
    esac
    GOOS=${os} GOARCH=${arch} CGO_ENABLED=0 go "${cmd[@]}" -trimpath \\
      -ldflags "-s -w -buildid= -X main.gitVersion=${KUBE_GIT_VERSION} \\
                -X main.gitCommit=${KUBE_GIT_COMMIT} \\
                -X k8s.io/kubernetes/test/e2e.gitVersion=${KUBE_GIT_VERSION}" \\
      -o "${out}/${what##*/}" "${pkg}"
  done
done
"""


def upstream_files() -> dict[str, str | bytes | None]:
    files: dict[str, str | bytes | None] = {
        "go.mod": "module k8s.io/kubernetes\n\ngo 1.15\n",
        "Makefile": MAKEFILE,
        "hack/build.sh": BUILD_SH,
        ".gitignore": "/_output\n",
    }
    for name in COMPONENTS:
        files[f"cmd/{name}/main.go"] = MAIN_GO.replace("FORMAT", FORMATS[name])
    return files


# The conformance tools in miniature: an e2e package built with `go test -c` that prints the
# stamp for --version (as test/e2e does), and a vendored ginkgo that prints its own version.
E2E_TEST_GO = '''package e2e

import (
\t"flag"
\t"fmt"
\t"os"
\t"testing"
)

var gitVersion = "v0.0.0-master+$Format:%h$"

func TestMain(m *testing.M) {
\tversion := flag.Bool("version", false, "print the version")
\tflag.Parse()
\tif *version {
\t\tfmt.Println(gitVersion)
\t\tos.Exit(0)
\t}
\tos.Exit(m.Run())
}
'''
GINKGO_GO = '''package main

import "fmt"

func main() { fmt.Println("Ginkgo Version 1.11.0") }
'''
TOOL_FILES: dict[str, str | bytes | None] = {
    "go.mod": "module k8s.io/kubernetes\n\ngo 1.15\n\nrequire github.com/onsi/ginkgo v1.11.0\n",
    "test/e2e/e2e_test.go": E2E_TEST_GO,
    "vendor/github.com/onsi/ginkgo/ginkgo/main.go": GINKGO_GO,
    "vendor/modules.txt": "# github.com/onsi/ginkgo v1.11.0\n## explicit\n"
                          "github.com/onsi/ginkgo/ginkgo\n",
}


BROKEN = {"cmd/kubelet/main.go": "package main\n\nfunc main() { this is not go }\n"}
# kubeadm ignores the stamp and kubelet crashes: both must fail the smoke check.
UNSTAMPED = {
    "cmd/kubelet/main.go": 'package main\n\nfunc main() { panic("reflect2: map iteration") }\n',
    "cmd/kubeadm/main.go": MAIN_GO.replace("fmt.Printf(FORMAT, gitVersion, gitCommit)",
                                           'fmt.Println("v1.19.0", gitVersion == gitCommit)'),
}


SLOW = {"hack/build.sh": "echo '+++ slow build starts'\nsleep 300\n"}
# no -trimpath: the source path ends up in the binaries (Go's file table)
PATH_DEPENDENT = {"hack/build.sh": BUILD_SH.replace(" -trimpath", "")}


@dataclass
class Distro:
    root: Path
    upstream: Upstream

    def pin(self, tag: str, **kwargs: object) -> None:
        write_manifest(self.root, "1.20", url=self.upstream.url, tag=tag,
                       commit=self.upstream.tags[tag], components=COMPONENTS, **kwargs)  # type: ignore[arg-type]

    def build(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["--root", str(self.root), "build", "1.20", *args])
        return result.exit_code, result.output

    @property
    def out(self) -> Path:
        return self.root / "_output" / "1.20"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tkedistro cache for the module, so the Go build cache is warm after the first test."""
    return tmp_path_factory.mktemp("tkedistro-cache")


@pytest.fixture
def distro(tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Distro:
    monkeypatch.setenv("TKEDISTRO_CACHE", str(shared_cache))
    upstream = make_upstream(tmp_path / "up", {"v1.20.0": upstream_files(), "v1.20.1": BROKEN,
                                               "v1.20.2": UNSTAMPED, "v1.20.3": SLOW,
                                               "v1.20.4": {**upstream_files(), **TOOL_FILES},
                                               "v1.20.5": PATH_DEPENDENT})
    root = tmp_path / "distro"
    d = Distro(root, upstream)
    d.pin("v1.20.0")
    return d


@pytest.fixture(scope="session")
def fake_go_image() -> Iterator[str]:
    """The builder with `go` replaced by a script claiming Go 1.19 (a too-new toolchain)."""
    script = "printf '#!/bin/sh\\necho go version go1.19.8 linux/amd64\\n' > /usr/local/bin/go"
    name = "tkedistro-test-fake-go"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    # images of earlier runs that were killed before their cleanup (untagged by the commit)
    subprocess.run(["docker", "image", "prune", "-f", "--filter", f"label={FAKE_GO_LABEL}"],
                   capture_output=True)
    subprocess.run(["docker", "run", "--name", name, "--user", "0", BUILDER, "sh", "-c",
                    f"rm -f /usr/local/bin/go && {script} && chmod 755 /usr/local/bin/go"],
                   check=True, capture_output=True)
    subprocess.run(["docker", "commit", "--change", f"LABEL {FAKE_GO_LABEL}", name,
                    FAKE_GO_IMAGE], check=True, capture_output=True)
    subprocess.run(["docker", "rm", "-f", name], check=True, capture_output=True)
    yield FAKE_GO_IMAGE
    subprocess.run(["docker", "rmi", "-f", FAKE_GO_IMAGE], capture_output=True)


def run_binary(path: Path, *args: str) -> str:
    return subprocess.run([str(path), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_build_publishes_stamped_checked_binaries_with_provenance(distro: Distro) -> None:
    code, out = distro.build()
    assert code == 0, out
    bins = distro.out / "bin" / "linux" / "amd64"
    commit = json.loads((distro.out / "build-info.json").read_text())["tree_commit"]
    assert run_binary(bins / "kubeadm", "version", "-o", "short") == "v1.20.0-tke.1"
    assert run_binary(bins / "kubectl", "version", "--client") == (
        f'Client Version: version.Info{{GitVersion:"v1.20.0-tke.1", GitCommit:"{commit}"}}')
    sums = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=distro.out,
                          capture_output=True, text=True)
    # the three binaries, the release tarballs of the platform, the source tarball, the SBOM
    # in SPDX and in CycloneDX
    assert sums.returncode == 0 and sums.stdout.count(": OK") == 9, sums.stdout
    info = json.loads((distro.out / "build-info.json").read_text())
    assert info["distro_version"] == "v1.20.0-tke.1"
    assert info["upstream"]["tag"] == "v1.20.0"
    assert info["upstream"]["commit"] == distro.upstream.tags["v1.20.0"]
    assert info["builder"]["go_version"] == "1.15.15"
    assert info["builder"]["image_id"].startswith("sha256:")
    assert info["components"] == ["kubelet", "kubectl", "kubeadm"]
    assert [s["version"] for s in info["smoke"]] == ["v1.20.0-tke.1"] * 3
    assert "+++ building cmd/kubelet for linux/amd64" in (distro.out / "build.log").read_text()
    assert "runs: v1.20.0-tke.1" in out


def test_second_build_is_a_no_op_and_force_rebuilds(distro: Distro) -> None:
    assert distro.build()[0] == 0
    code, out = distro.build()
    assert code == 0 and "1.20 is up to date" in out
    code, out = distro.build("--force")
    assert code == 0 and "built 1.20" in out


def test_changed_output_file_triggers_a_rebuild(distro: Distro) -> None:
    assert distro.build()[0] == 0
    (distro.out / "bin" / "linux" / "amd64" / "kubectl").write_bytes(b"tampered")
    code, out = distro.build()
    assert code == 0 and "built 1.20" in out
    assert run_binary(distro.out / "bin/linux/amd64/kubeadm", "version") == "v1.20.0-tke.1"


def test_compile_error_exits_11_with_log_tail_and_keeps_previous_output(distro: Distro) -> None:
    assert distro.build()[0] == 0
    before = (distro.out / "SHA256SUMS").read_text()
    distro.pin("v1.20.1")
    code, out = distro.build()
    assert code == 11, out
    assert "exited 2 in the builder container" in out
    assert "cmd/kubelet/main.go" in out  # the compiler's message, from the log tail
    assert f"full log: {distro.root / '_output' / '1.20.failed.log'}" in out
    assert (distro.out / "SHA256SUMS").read_text() == before
    assert sorted(p.name for p in (distro.root / "_output").iterdir()) == [
        ".1.20.lock", "1.20", "1.20.failed.log"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_mount_left_under_the_old_output_does_not_fail_the_new_build(distro: Distro) -> None:
    # what a killed conformance run of an older tkedistro left: the kubelet's bind mount
    assert distro.build()[0] == 0
    point = distro.out / "conformance" / "cluster" / "kubelet"
    point.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(point)], check=True)
    try:
        code, out = distro.build("--force")
        assert code == 0, out
        assert "built 1.20" in out and "could not remove" in out
        assert run_binary(distro.out / "bin/linux/amd64/kubeadm", "version") == "v1.20.0-tke.1"
    finally:
        for line in Path("/proc/self/mounts").read_text().splitlines():
            if str(distro.root) in line.split()[1]:
                subprocess.run(["umount", line.split()[1]], check=False)
    assert distro.build("--force")[0] == 0  # the next build sweeps the freed leftover
    assert sorted(p.name for p in (distro.root / "_output").iterdir()) == [".1.20.lock", "1.20"]


def test_binary_that_crashes_or_reports_another_version_fails_the_smoke_check(
        distro: Distro) -> None:
    assert distro.build()[0] == 0
    distro.pin("v1.20.2")
    code, out = distro.build()
    assert code == 12, out
    assert "smoke check failed: 2 of 3 binaries" in out
    assert "kubelet (linux/amd64): `--version` exited 2" in out
    assert "reflect2: map iteration" in out
    assert "kubeadm (linux/amd64): reports v1.19.0, expected v1.20.2-tke.1" in out
    info = json.loads((distro.out / "build-info.json").read_text())
    assert info["distro_version"] == "v1.20.0-tke.1"  # the previous output stays


def test_wrong_go_version_in_builder_is_refused(distro: Distro, fake_go_image: str) -> None:
    code, out = distro.build("--builder-image", fake_go_image)
    assert code == 10, out
    assert (f"builder image {fake_go_image} has Go 1.19.8, but the manifest pins "
            "go.version 1.15.15") in out
    assert "binaries crash at run time" in out
    assert not distro.out.exists()


def test_missing_builder_image_names_the_offline_command(distro: Distro) -> None:
    code, out = distro.build("--builder-image", "tkedistro-test/no-such-image:1")
    assert code == 10
    assert "builder image tkedistro-test/no-such-image:1 is not in the docker engine" in out
    assert "sudo tkedistro builder-image 1.20 --image tkedistro-test/no-such-image:1" in out


def test_container_runs_unprivileged_and_is_removed(distro: Distro) -> None:
    assert distro.build()[0] == 0
    log = (distro.out / "build.log").read_text()
    container = re.search(r"# container id: (\w+)", log)
    assert container is not None
    gone = subprocess.run(["docker", "inspect", container.group(1)], capture_output=True)
    assert gone.returncode != 0  # removed after the build
    assert f"user={os.getuid()}:{os.getgid()} network=none" in log


def test_failed_container_is_kept_for_inspection_when_asked(
        distro: Distro, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TKEDISTRO_KEEP_CONTAINER", "1")
    distro.pin("v1.20.1")
    code, out = distro.build()
    assert code == 11
    kept = re.search(r"kept container (\w+) \(TKEDISTRO_KEEP_CONTAINER=1\): docker exec -it", out)
    assert kept is not None, out
    try:
        state = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", kept.group(1)],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert state == "true"
    finally:
        subprocess.run(["docker", "rm", "-f", kept.group(1)], capture_output=True)


def test_verify_reproducible_builds_again_elsewhere_and_compares(distro: Distro) -> None:
    code, out = distro.build("--verify-reproducible")
    assert code == 0, out
    assert "reproducible: yes, SHA256SUMS identical" in out
    leftovers = [p.name for p in (distro.root / "_output").iterdir() if "verify" in p.name]
    assert leftovers == []


def test_a_build_that_depends_on_its_path_fails_verification_with_18(distro: Distro) -> None:
    distro.pin("v1.20.5")  # no -trimpath: the source path is compiled into the binaries
    code, out = distro.build("--verify-reproducible")
    assert code == 18, out
    # the binaries differ, and with them the tarballs holding them and the SBOM naming them
    assert "error: not reproducible: bin/linux/amd64/kubeadm, bin/linux/amd64/kubectl, " \
           "bin/linux/amd64/kubelet, release/kubernetes-client-linux-amd64.tar.gz, " \
           "release/kubernetes-node-linux-amd64.tar.gz, " \
           "release/kubernetes-server-linux-amd64.tar.gz, sbom.cdx.json, sbom.spdx.json differ " \
           "between _output/1.20 and a second build" in out
    kept = distro.root / "_output" / "1.20.verify" / "bin" / "linux" / "amd64" / "kubectl"
    published = distro.out / "bin" / "linux" / "amd64" / "kubectl"
    assert b"/go/src/k8s.io/kubernetes/cmd/kubectl" in published.read_bytes()
    assert b"/tkedistro/verify/src/kubernetes/cmd/kubectl" in kept.read_bytes()
    assert run_binary(published, "version", "--client").startswith(
        'Client Version: version.Info{GitVersion:"v1.20.5-tke.1"')  # published all the same


def test_ctrl_c_stops_and_removes_the_container_and_exits_130(distro: Distro) -> None:
    assert distro.build()[0] == 0
    distro.pin("v1.20.3")
    # Ctrl-C as a terminal delivers it: a run started in the background by a shell without
    # job control inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen([sys.executable, "-m", "tkedistro", "--root", str(distro.root),
                             "build", "1.20"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    staging_logs = distro.root / "_output"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        logs = list(staging_logs.glob(".1.20.tmp-*/out/build.log"))
        if logs and "+++ slow build starts" in logs[0].read_text():
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the slow build never started")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "error: interrupted" in out
    container = re.search(r"# container id: (\w+)", (staging_logs / "1.20.failed.log").read_text())
    assert container is not None
    assert subprocess.run(["docker", "inspect", container.group(1)],
                          capture_output=True).returncode != 0
    assert list(staging_logs.glob(".1.20.tmp-*")) == []
    info = json.loads((distro.out / "build-info.json").read_text())
    assert info["upstream"]["tag"] == "v1.20.0"  # the previous output is untouched


def test_conformance_tools_are_built_stamped_and_published_beside_the_components(
        distro: Distro) -> None:
    distro.pin("v1.20.4")
    assert distro.build()[0] == 0
    code, out = distro.build("--with-conformance-tools")
    assert code == 0, out
    assert "runs: v1.20.4-tke.1" in out and "ginkgo" in out
    bins = distro.out / "bin" / "linux" / "amd64"
    assert run_binary(bins / "e2e.test", "--version") == "v1.20.4-tke.1"
    assert run_binary(bins / "ginkgo", "version") == "Ginkgo Version 1.11.0"
    sums = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=distro.out,
                          capture_output=True, text=True)
    assert sums.returncode == 0 and sums.stdout.count(": OK") == 11, sums.stdout
    info = json.loads((distro.out / "build-info.json").read_text())
    assert info["tools"] == ["e2e.test", "ginkgo"]
    assert [(s["component"], s["version"]) for s in info["smoke"]][-2:] == [
        ("e2e.test", "v1.20.4-tke.1"), ("ginkgo", None)]
    code, out = distro.build("--with-conformance-tools")
    assert code == 0 and "1.20 is up to date" in out
