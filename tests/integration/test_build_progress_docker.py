"""Docker tier: what `tkedistro build` prints while make runs, through the CLI, with a real
builder container streaming the output of a build script that logs as Kubernetes' does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.gitrepo import make_upstream, write_manifest
from tests.integration.test_build_arm64_docker import BOTH, EMULATION, go_cache, root
from tkedistro.build import progress
from tkedistro.cli.app import app

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]
__all__ = ["go_cache", "root"]  # fixtures: the arm64 test's distro, images: [pause]

COMPONENTS = ["kubectl", "kubelet", "kubeadm"]
MAIN_GO = 'package main\n\nimport "fmt"\n\nvar gitVersion = ""\n\n' \
          'func main() { fmt.Println("Kubernetes", gitVersion) }\n'
MAKEFILE = "WHAT ?= cmd/kubectl\nKUBE_BUILD_PLATFORMS ?= linux/amd64\n\n.PHONY: all\n" \
           "all:\n\tbash hack/build.sh\n"
# hack/lib/golang.sh in miniature, logging as hack/lib/logging.sh's kube::log::status does:
# a generator is built first, then is silent for a while, then every platform's targets
BUILD_SH = """#!/usr/bin/env bash
set -euo pipefail
source "${KUBE_GIT_VERSION_FILE}"
status() {
  echo "+++ $(date +"[%m%d %H:%M:%S]") ${1}"
  shift
  for message; do echo "    ${message}"; done
}
status "Building go targets for linux/amd64:" ./vendor/k8s.io/code-generator/cmd/deepcopy-gen
echo "./hack/run-in-gopath.sh _output/bin/deepcopy-gen --v 1 --logtostderr -i k8s.io/api"
sleep 4
for platform in ${KUBE_BUILD_PLATFORMS}; do
  status "Building go targets for ${platform}:" ${WHAT}
  out=_output/local/bin/${platform}
  mkdir -p "${out}"
  for what in ${WHAT}; do
    echo "go build -o ${out}/${what##*/} ./${what}"
    GOOS=${platform%/*} GOARCH=${platform#*/} CGO_ENABLED=0 go build -trimpath \\
      -ldflags "-s -w -buildid= -X main.gitVersion=${KUBE_GIT_VERSION}" \\
      -o "${out}/${what##*/}" "./${what}"
  done
done
"""


def upstream_files() -> dict[str, str | bytes | None]:
    files: dict[str, str | bytes | None] = {
        "go.mod": "module k8s.io/kubernetes\n\ngo 1.15\n", "Makefile": MAKEFILE,
        "hack/build.sh": BUILD_SH, ".gitignore": "/_output\n"}
    for name in COMPONENTS:
        files[f"cmd/{name}/main.go"] = MAIN_GO
    return files


def index_of(lines: list[str], pattern: str, start: int = 0) -> int:
    """The index of the first line from ``start`` that matches ``pattern`` (after the stamp)."""
    for i in range(start, len(lines)):
        if re.fullmatch(r"\d\d:\d\d:\d\d " + pattern, lines[i]):
            return i
    raise AssertionError(f"no line matches {pattern!r} after line {start}:\n" + "\n".join(lines))


def test_build_names_its_log_and_shows_kubernetes_progress_before_done(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TKEDISTRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CI", "1")  # plain timestamped lines, as in the nightly log
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 1.5)  # the generator's 4 s of silence
    upstream = make_upstream(tmp_path / "up", {"v1.20.0": upstream_files()})
    root = tmp_path / "distro"
    write_manifest(root, "1.20", url=upstream.url, tag="v1.20.0",
                   commit=upstream.tags["v1.20.0"], components=COMPONENTS)
    result = CliRunner().invoke(app, ["--root", str(root), "build", "1.20"])
    assert result.exit_code == 0, result.output
    err = result.stderr.splitlines()
    out = re.escape(str(root / "_output"))
    what = "cmd/kubelet cmd/kubectl cmd/kubeadm"
    at = index_of(err, r"\[build\] start kubelet kubectl kubeadm for linux/amd64")
    at = index_of(err, rf"\[build\] log: {out}/\.1\.20\.tmp-\w+/out/build\.log \(tail -f it to "
                       rf"follow make\); kept as {out}/1\.20/build\.log when the build is "
                       rf"published, as {out}/1\.20\.failed\.log when it fails", at)
    at = index_of(err, r"\[build\] \d+s building go targets for linux/amd64: "
                       r"\./vendor/k8s\.io/code-generator/cmd/deepcopy-gen", at)
    at = index_of(err, r"\[build\] still building \(\d+s, last: building go targets for "
                       r"linux/amd64\)", at)
    at = index_of(err, rf"\[build\] \d+s building go targets for linux/amd64: {what}", at)
    done = index_of(err, r"\[build\] done in \d+\.\ds", at)
    at = index_of(err, r"\[release_tarballs\] start linux/amd64", done)
    for tarball in ("kubernetes-src", "kubernetes-server-linux-amd64",
                    "kubernetes-node-linux-amd64", "kubernetes-client-linux-amd64"):
        at = index_of(err, rf"\[release_tarballs\] \d+s release/{tarball}\.tar\.gz "
                           r"\d+(\.\d)? (B|KiB|MiB)", at)
    index_of(err, r"\[release_tarballs\] done in \d+\.\ds", at)
    assert not any("go build -o" in line or "run-in-gopath" in line for line in err)
    log = (root / "_output" / "1.20" / "build.log").read_text()
    assert "go build -o _output/local/bin/linux/amd64/kubeadm ./cmd/kubeadm" in log
    assert "run-in-gopath.sh _output/bin/deepcopy-gen" in log


@pytest.mark.skipif(not EMULATION[0], reason=f"no arm64 emulation here: {EMULATION[1]}")
def test_make_runs_are_numbered_and_each_image_platform_is_shown(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    result = CliRunner().invoke(app, ["--root", str(root), "build", "1.20", *BOTH,
                                      "--with-conformance-tools"])
    assert result.exit_code == 0, result.output
    err = result.stderr.splitlines()
    at = index_of(err, r"\[build\] \d+s make run 1 of 2: make all WHAT=cmd/kubelet cmd/kubectl "
                       r"cmd/kubeadm KUBE_BUILD_PLATFORMS=linux/amd64 linux/arm64")
    at = index_of(err, r"\[build\] \d+s building cmd/kubelet for linux/arm64 "
                       r"\(make run 1 of 2\)", at)
    at = index_of(err, r"\[build\] \d+s make run 2 of 2: make all WHAT=test/e2e/e2e\.test "
                       r"vendor/github\.com/onsi/ginkgo/ginkgo KUBE_BUILD_PLATFORMS=linux/amd64",
                  at)
    at = index_of(err, r"\[build\] done in \d+\.\ds", at)
    at = index_of(err, r"\[release_images\] start tkedistro\.local/k8s/pause:v1\.20\.6-tke\.1 "
                       r"\(linux/amd64, linux/arm64\)", at)
    at = index_of(err, r"\[release_images\] \d+s pause linux/amd64: image committed", at)
    at = index_of(err, r"\[release_images\] \d+s pause linux/arm64: image committed", at)
    at = index_of(err, r"\[release_images\] \d+s pause: images/pause\.oci\.tar "
                       r"\d+\.\d KiB", at)
    index_of(err, r"\[release_images\] done in \d+\.\ds", at)
