"""Docker tier: the release's OCI image archives made by real buildah are reproducible
(two runs from scratch, fresh storage: same digests, same archive bytes, the attached SBOM
referrer included), hold both platforms, load into Docker and run, leave nothing in buildah's
storage, and a run against the published output rebuilds nothing.

The binaries are tiny static C programs compiled for amd64 and arm64 in the builder image
(which has ``gcc`` and ``aarch64-linux-gnu-gcc``); the server components sit on a one-file
base imported into Docker (the real Debian base is the real_k8s tier's), pause on scratch.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tkedistro.artifacts.context import ReleaseContext
from tkedistro.artifacts.imagesbom import ImageSbomWriter
from tkedistro.engine.buildah import Buildah
from tkedistro.images.shipped import ShippedImage, make_release_images, read_images_json

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

BUILDER = "tkedistro/builder:go1.15-bullseye"
BASE = "tkedistro.test/oci-base:tiny"
VERSION = "v1.20.2-tke.1"
LOADED = "tkedistro.test/oci-loaded"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-proxy", "kube-scheduler",
              "pause")
PLATFORMS = ("linux/amd64", "linux/arm64")
PROGRAM = r"""#include <stdio.h>
int main(int argc, char **argv) {
    printf("%s %s %d\n", argv[0], ARCH, argc - 1);
    return 0;
}
"""


def _cmd(*argv: str, timeout: int = 120) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          check=True).stdout


def _binaries(folder: Path) -> None:
    """``<folder>/{amd64,arm64}/prog``: static, compiled once in the builder image."""
    (folder / "prog.c").write_text(PROGRAM)
    script = ("gcc -static -Os -DARCH='\"amd64\"' -o amd64 prog.c && "
              "aarch64-linux-gnu-gcc -static -Os -DARCH='\"arm64\"' -o arm64 prog.c")
    _cmd("docker", "run", "--rm", "--network", "none", "-v", f"{folder}:/w", "-w", "/w",
         BUILDER, "sh", "-c", script)


def _base(folder: Path) -> None:
    """A one-file base image in Docker (``/etc/tkedistro-base``)."""
    data = b"tiny base\n"
    with tarfile.open(folder / "base.tar", "w") as tar:
        info = tarfile.TarInfo("etc/tkedistro-base")
        info.size, info.mtime = len(data), 315532800
        tar.addfile(info, io.BytesIO(data))
    _cmd("docker", "import", str(folder / "base.tar"), BASE)


def _context(tmp: Path) -> ReleaseContext:
    return ReleaseContext(
        release="1.20", distro_version=VERSION, upstream_url="https://example.invalid/k8s.git",
        tag="v1.20.2", upstream_commit="f" * 40, tree_commit="e" * 40, tree=tmp,
        source_date_epoch=1611000000, platforms=PLATFORMS, components=(),
        image_components=COMPONENTS, patches=(), builder_image=BUILDER,
        builder_image_id="sha256:" + "0" * 64, go_version="1.15.15", tool_version="0")


def _output(tmp: Path, name: str, binaries: Path) -> Path:
    out = tmp / name
    for platform in PLATFORMS:
        arch = platform.split("/")[1]
        (out / "bin" / platform).mkdir(parents=True)
        for component in COMPONENTS:
            shutil.copy(binaries / arch, out / "bin" / platform / component)
    return out


@dataclass
class Runs:
    tmp: Path
    first: list[ShippedImage]
    second: list[ShippedImage]
    out1: Path
    out2: Path
    storage: Path
    seconds: float


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    if shutil.which("buildah") is None or shutil.which("skopeo") is None:
        pytest.skip("needs buildah and skopeo (apt-get install buildah skopeo)")
    if subprocess.run(["docker", "image", "inspect", BUILDER], capture_output=True).returncode:
        pytest.skip(f"needs the builder image {BUILDER} (make install)")
    import time

    tmp = tmp_path_factory.mktemp("release-images")
    (tmp / "bins").mkdir()
    _binaries(tmp / "bins")
    _base(tmp)
    bases = {p: f"docker-daemon:{BASE}" for p in PLATFORMS}
    ctx = _context(tmp)
    start = time.monotonic()
    made = []
    for run in ("1", "2"):  # fresh output, work folder and buildah storage each time
        out = _output(tmp, f"out{run}", tmp / "bins")
        made.append(make_release_images(out, ctx, tmp / f"work{run}",
                                        Buildah(tmp / f"storage{run}"), bases,
                                        describer=ImageSbomWriter.for_release(ctx)))
    seconds = (time.monotonic() - start) / 2
    yield Runs(tmp, made[0], made[1], tmp / "out1", tmp / "out2", tmp / "storage2", seconds)
    for ref in [BASE, *(f"{LOADED}/{c}:{a}" for c in COMPONENTS for a in ("amd64", "arm64"))]:
        subprocess.run(["docker", "image", "rm", ref], capture_output=True)


def test_two_runs_from_scratch_give_the_same_digests_and_bytes(runs: Runs) -> None:
    assert [i.to_json() for i in runs.first] == [i.to_json() for i in runs.second]
    assert [i.component for i in runs.first] == sorted(COMPONENTS)
    for image in runs.first:
        assert image.archive == f"images/{image.component}.oci.tar" and not image.reused
        one = (runs.out1 / image.archive).read_bytes()
        two = (runs.out2 / image.archive).read_bytes()
        assert one == two and len(one) == image.size
    assert (runs.out1 / "images/images.json").read_bytes() == (
        runs.out2 / "images/images.json").read_bytes()
    assert read_images_json(runs.out1) == runs.first
    print(f"one run of {len(COMPONENTS)} components x 2 platforms: {runs.seconds:.1f} s")


@pytest.mark.parametrize("component", ["kube-proxy", "pause"])
def test_skopeo_reads_one_index_with_both_platforms(runs: Runs, component: str) -> None:
    image = next(i for i in runs.first if i.component == component)
    # index.json lists the image's SBOM referrer too: skopeo needs the image named
    archive = f"oci-archive:{runs.out1 / image.archive}:{VERSION}"
    index = json.loads(_cmd("skopeo", "inspect", "--raw", archive))
    found = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
             for m in index["manifests"]}
    assert found == dict(image.manifests) and sorted(found) == list(PLATFORMS)
    names = tarfile.open(runs.out1 / image.archive).getmembers()
    assert {(m.uid, m.gid, m.mtime) for m in names} == {(0, 0, 1611000000)}
    layout = json.loads(tarfile.open(runs.out1 / image.archive).extractfile(
        "index.json").read())  # type: ignore[union-attr]
    assert layout["manifests"][0]["digest"] == image.index_digest
    assert layout["manifests"][0]["annotations"] == {
        "org.opencontainers.image.ref.name": VERSION}
    assert [m["artifactType"] for m in layout["manifests"][1:]] == ["application/spdx+json"]
    copied = runs.tmp / f"copied-{component}"
    _cmd("skopeo", "copy", "--all", archive, f"oci:{copied}:{VERSION}")
    assert json.loads((copied / "index.json").read_text())["manifests"][0]["digest"] == (
        image.index_digest)


def _load(runs: Runs, component: str, arch: str) -> str:
    image = next(i for i in runs.first if i.component == component)
    ref = f"{LOADED}/{component}:{arch}"
    _cmd("skopeo", "copy", "--override-arch", arch,
         f"oci-archive:{runs.out1 / image.archive}:{VERSION}", f"docker-daemon:{ref}")
    return ref


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_loaded_into_docker_each_platform_runs_its_own_binary(runs: Runs, arch: str) -> None:
    pause = _load(runs, "pause", arch)
    assert _cmd("docker", "run", "--rm", "--network", "none", pause, "x") == f"/pause {arch} 1\n"
    user = _cmd("docker", "image", "inspect", "--format", "{{.Config.User}} {{.Architecture}}",
                pause)
    assert user == f"65535:65535 {arch}\n"
    proxy = _load(runs, "kube-proxy", arch)
    assert _cmd("docker", "run", "--rm", "--network", "none", proxy,
                "/usr/local/bin/kube-proxy") == f"/usr/local/bin/kube-proxy {arch} 0\n"
    labels = json.loads(_cmd("docker", "image", "inspect", "--format",
                             "{{json .Config.Labels}}", proxy))
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.revision"] == "f" * 40
    assert labels["org.opencontainers.image.created"] == "2021-01-18T20:00:00Z"


def test_the_base_is_under_the_component(runs: Runs) -> None:
    proxy = _load(runs, "kube-proxy", "amd64")
    assert _cmd("docker", "run", "--rm", "--network", "none", "--entrypoint",
                "/usr/local/bin/kube-proxy", proxy) == "/usr/local/bin/kube-proxy amd64 0\n"
    listing = _cmd("docker", "create", proxy, "/x").strip()
    try:
        exported = subprocess.run(["docker", "export", listing], capture_output=True,
                                  check=True, timeout=60).stdout
    finally:
        _cmd("docker", "rm", listing)
    names = tarfile.open(fileobj=io.BytesIO(exported)).getnames()
    assert "etc/tkedistro-base" in names and "usr/local/bin/kube-proxy" in names


def test_buildah_storage_keeps_no_containers_or_index(runs: Runs) -> None:
    argv = ["buildah", "--root", str(runs.storage / "root"), "--runroot",
            str(runs.storage / "run"), "--storage-driver", "vfs"]
    assert _cmd(*argv, "containers", "--all", "--quiet") == ""
    names = _cmd(*argv, "images", "--all", "--format", "{{.Name}}:{{.Tag}}").split()
    assert names == [BASE]


def test_a_run_against_the_published_output_rebuilds_nothing(runs: Runs) -> None:
    out = _output(runs.tmp, "out3", runs.tmp / "bins")
    ctx = _context(runs.tmp)
    bases = {p: f"docker-daemon:{BASE}" for p in PLATFORMS}
    third = make_release_images(out, ctx, runs.tmp / "work3", Buildah(runs.storage), bases,
                                previous=runs.out1,
                                describer=ImageSbomWriter.for_release(ctx))
    assert [i.reused for i in third] == [True] * len(COMPONENTS)
    assert [i.index_digest for i in third] == [i.index_digest for i in runs.first]
    for image in third:
        assert (out / image.archive).samefile(runs.out1 / image.archive)
