"""real_k8s tier, issue 14: what `tkedistro build 1.20` ships from the real v1.20.2 tree.

Both platforms are built (linux/arm64 cross-compiled and smoke-run under qemu-user-static),
the five images are multi-arch OCI archives that `tkedistro images --push` copies to a real
local registry (Debian's docker-registry) where `skopeo inspect` sees both platforms, an arm64
image pulled back by digest runs under emulation and reports the distro version, and a
second build rewrites nothing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers.registrylogin import log_in
from tests.real_k8s.conftest import PERSIST, Tool
from tkedistro.core.workspace import Workspace
from tkedistro.engine.registry import LocalRegistry
from tkedistro.engine.skopeo import oci_archive

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(3600)]

VERSION = "v1.20.2-tke.1"
PLATFORMS = ["linux/amd64", "linux/arm64"]
IMAGES = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "pause"]


def _stats(out: Path) -> dict[str, tuple[int, int, int]]:
    return {str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(out.rglob("*")) if p.is_file()}


def test_arm64_binaries_ran_under_emulation_and_report_the_distro_version(
        built_release: Workspace) -> None:
    info = json.loads((built_release.output_dir("1.20") / "build-info.json").read_text())
    arm = [s for s in info["smoke"] if s["platform"] == "linux/arm64"]
    assert sorted(s["component"] for s in arm) == sorted(
        ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
         "kubelet", "kubectl", "kubeadm", "pause"])
    assert all(s["run"] == "emulated" for s in arm), arm
    assert {s["version"] for s in arm if s["component"] != "pause"} == {VERSION}


def test_every_image_is_a_multi_arch_archive_and_pushes_with_both_platforms(
        built_release: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = built_release.output_dir("1.20")
    with LocalRegistry(tmp_path / "registry") as registry:
        log_in(registry, tmp_path / "login", monkeypatch)  # as to a registry of one's own
        tool = Tool(built_release, tmp_path)
        ran = tool.run("images", "1.20", "--push", registry.address, "--json").ok()
        report = json.loads(ran.stdout)
        assert report["build"] == "up_to_date"
        assert sorted(i["component"] for i in report["images"]) == sorted(IMAGES)
        for image in report["images"]:
            archive = oci_archive(out / image["archive"])  # named: its SBOM referrer is beside
            raw = subprocess.run(["skopeo", "inspect", "--raw", archive],
                                 capture_output=True, text=True, check=True).stdout
            assert sorted(f"{m['platform']['os']}/{m['platform']['architecture']}"
                          for m in json.loads(raw)["manifests"]) == PLATFORMS
        for pushed in report["pushed"]:
            remote = subprocess.run(
                ["skopeo", "inspect", "--raw", "--tls-verify=false",
                 f"docker://{pushed['ref']}"],
                capture_output=True, text=True, check=True).stdout
            assert sorted(f"{m['platform']['os']}/{m['platform']['architecture']}"
                          for m in json.loads(remote)["manifests"]) == PLATFORMS
        apiserver = next(p for p in report["pushed"] if p["component"] == "kube-apiserver")
        by_digest = f"{apiserver['ref'].rsplit(':', 1)[0]}@{apiserver['digest']}"
        subprocess.run(["docker", "pull", "--platform", "linux/arm64", by_digest], check=True,
                       capture_output=True)
        try:
            ran_arm = subprocess.run(
                ["docker", "run", "--rm", "--platform", "linux/arm64", "--network", "none",
                 by_digest, "kube-apiserver", "--version"],
                capture_output=True, text=True, check=True)
        finally:
            subprocess.run(["docker", "rmi", by_digest], capture_output=True, check=False)
        assert ran_arm.stdout.strip() == f"Kubernetes {VERSION}"


def test_a_second_build_rewrites_nothing(built_release: Workspace, tmp_path: Path) -> None:
    out = built_release.output_dir("1.20")
    before = _stats(out)
    tool = Tool(built_release, tmp_path)
    ran = tool.run("build", "1.20", "--with-conformance-tools", "--json").ok()
    assert json.loads(ran.stdout)["status"] == "up_to_date"
    assert _stats(out) == before


def test_the_sbom_and_the_checksums_cover_every_shipped_file(built_release: Workspace) -> None:
    out = built_release.output_dir("1.20")
    for sums in ("SHA256SUMS", "SHA512SUMS"):
        tool = "sha256sum" if sums == "SHA256SUMS" else "sha512sum"
        subprocess.run([tool, "--check", "--quiet", sums], cwd=out, check=True)
    listed = (out / "SHA256SUMS").read_text()
    for arch in ("amd64", "arm64"):
        for kind in ("server", "node", "client"):
            assert f"  release/kubernetes-{kind}-linux-{arch}.tar.gz\n" in listed
    for image in IMAGES:
        assert f"  images/{image}.oci.tar\n" in listed
    assert (out / "sbom.spdx.json").is_file() and (out / "provenance.intoto.json").is_file()
    assert PERSIST.is_dir()


def test_the_shipped_images_sit_on_trixie_and_name_their_base(
        built_release: Workspace) -> None:
    """Issue 27: the server images' base is Debian 13 trixie; each image's manifest and
    config name the base (its id, as ``docker image inspect`` shows it) and the provenance
    lists each base and the InRelease it was debootstrapped from."""
    out = built_release.output_dir("1.20")
    images = json.loads((out / "images/images.json").read_text())["images"]
    proxy = next(i for i in images if i["component"] == "kube-proxy")
    assert sorted(proxy["bases"]) == PLATFORMS
    deps = json.loads((out / "provenance.intoto.json").read_text())[
        "predicate"]["buildDefinition"]["resolvedDependencies"]
    for platform, base in proxy["bases"].items():
        arch = platform.split("/")[1]
        assert base["name"] == f"tkedistro/component-base:trixie-{arch}"
        seen = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}",
                               base["name"]], capture_output=True, text=True, check=True)
        assert seen.stdout.strip() == base["digest"]
        assert base["labels"]["org.tkedistro.debian.suite"] == "trixie"
        material = next(d for d in deps if d.get("name") == base["name"])
        assert material["digest"] == {"sha256": base["digest"].removeprefix("sha256:")}
        inrelease = base["labels"]["org.tkedistro.debian.release"]
        assert any(d.get("uri") == inrelease for d in deps)
    loaded = "tkedistro.test/real-kube-proxy:amd64"
    subprocess.run(["skopeo", "copy", "--override-arch", "amd64",
                    oci_archive(out / proxy["archive"]), f"docker-daemon:{loaded}"],
                   capture_output=True, check=True)
    try:
        release = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint",
                                  "cat", loaded, "/etc/os-release"],
                                 capture_output=True, text=True, check=True).stdout
        labels = json.loads(subprocess.run(
            ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", loaded],
            capture_output=True, text=True, check=True).stdout)
    finally:
        subprocess.run(["docker", "rmi", loaded], capture_output=True, check=False)
    assert 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"' in release
    assert labels["org.opencontainers.image.base.digest"] == proxy["bases"]["linux/amd64"][
        "digest"]
