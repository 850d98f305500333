"""Docker tier: a synthetic two-platform release image pushed to a real registry (Debian's
docker-registry on loopback) comes back by digest, byte for byte, and each platform's image
runs ``--version`` (linux/arm64 under qemu through binfmt_misc).

The archive is made the way the build makes its images: a static Go program compiled for amd64
and arm64 in the builder image, one image per platform from scratch with buildah (its own
``--root``/``--runroot`` in tmp, vfs), an image index over both pushed into an OCI layout,
tarred.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.registrylogin import log_in
from tkedistro.core.errors import ImageError
from tkedistro.engine import emulation, skopeo
from tkedistro.engine.docker import DockerBackend
from tkedistro.engine.docker_images import DockerImages
from tkedistro.engine.registry import LocalRegistry
from tkedistro.images.push import PushedImage, push_images

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

BUILDER = "tkedistro/builder:go1.15-bullseye"
VERSION = "v1.20.2-tke.1"
PLATFORMS = ("linux/amd64", "linux/arm64")
PROGRAM = """package main

import (
	"os"
	"runtime"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		os.Stdout.WriteString("pushtest VERSION " + runtime.GOOS + "/" + runtime.GOARCH + "\\n")
		return
	}
	os.Exit(2)
}
"""


def _run(*argv: str | Path, timeout: float = 120) -> str:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{argv} failed: {done.stderr}"
    return done.stdout


def _compile(src: Path) -> None:
    (src / "main.go").write_text(PROGRAM.replace("VERSION", VERSION))
    script = " && ".join(f"GOARCH={p.split('/')[1]} go build -trimpath -ldflags=-s "
                         f"-o version-{p.split('/')[1]} main.go" for p in PLATFORMS)
    _run("docker", "run", "--rm", "--network", "none", "-v", f"{src}:/src", "-w", "/src",
         "-e", "CGO_ENABLED=0", "-e", "GOCACHE=/tmp/gocache", BUILDER, "sh", "-c", script)


def _archive(tmp: Path, src: Path) -> Path:
    """The OCI archive: index.json -> one image index tagged VERSION -> one manifest each."""
    buildah: list[str | Path] = ["buildah", "--root", tmp / "root", "--runroot", tmp / "runroot",
               "--storage-driver", "vfs"]
    for platform in PLATFORMS:
        arch = platform.split("/")[1]
        ctr = _run(*buildah, "from", "--arch", arch, "--os", "linux", "scratch").strip()
        _run(*buildah, "copy", ctr, src / f"version-{arch}", "/version")
        _run(*buildah, "config", "--entrypoint", '["/version"]', "--arch", arch, "--os",
             "linux", ctr)
        _run(*buildah, "commit", "-q", "--timestamp", "0", ctr, f"localhost/pushtest:{arch}")
        _run(*buildah, "rm", ctr)
    _run(*buildah, "manifest", "create", "localhost/pushtest:list")
    for platform in PLATFORMS:
        _run(*buildah, "manifest", "add", "localhost/pushtest:list",
             f"containers-storage:localhost/pushtest:{platform.split('/')[1]}")
    layout = tmp / "layout"
    _run(*buildah, "manifest", "push", "-q", "--all", "localhost/pushtest:list",
         f"oci:{layout}:{VERSION}")
    archive = tmp / "_output/1.20/images/pushtest.oci.tar"
    archive.parent.mkdir(parents=True)
    _run("tar", "-C", layout, "-cf", archive, ".")
    return archive


def _images_json(out: Path, layout: Path) -> dict[str, str]:
    """images.json as the build writes it; returns platform -> manifest digest."""
    index_digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    index = json.loads((layout / "blobs/sha256" / index_digest.split(":")[1]).read_text())
    platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
                 for m in index["manifests"]}
    entry = {"component": "pushtest", "ref": f"tkedistro.local/k8s/pushtest:{VERSION}",
             "index_digest": index_digest, "archive": "images/pushtest.oci.tar",
             "manifests": platforms}
    (out / "images/images.json").write_text(json.dumps({"images": [entry]}, indent=2))
    return platforms


def two_platform_source(tmp: Path) -> Path:
    """A two-platform pause archive made in ``tmp`` (buildah, skopeo, the registry, the builder
    image and arm64 emulation needed; skipped with what to install otherwise); its path."""
    for tool in ("buildah", "skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (apt-get install {tool})")
    if DockerBackend().image_info(BUILDER) is None:
        pytest.skip(f"needs the builder image {BUILDER} (make install)")
    able, why = emulation.can_run("linux/arm64")
    if not able:
        pytest.skip(why)
    (tmp / "src").mkdir()
    _compile(tmp / "src")
    return _archive(tmp, tmp / "src")


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("push")
    two_platform_source(tmp)
    return tmp


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRegistry]:
    """A real registry that asks for a login, and this user logged in to it."""
    with LocalRegistry(tmp_path / "registry") as reg:
        log_in(reg, tmp_path / "login", monkeypatch)
        yield reg


def _pushed(release: Path, registry: LocalRegistry) -> tuple[PushedImage, dict[str, str]]:
    out = release / "_output/1.20"
    platforms = _images_json(out, release / "layout")
    [pushed] = push_images(out, registry.address)
    return pushed, platforms


def test_pushed_images_come_back_by_digest_and_each_platform_runs(
        release: Path, registry: LocalRegistry) -> None:
    pushed, platforms = _pushed(release, registry)
    assert pushed.ref == f"{registry.address}/tkedistro/pushtest:{VERSION}"
    archive = release / "_output/1.20/images/pushtest.oci.tar"
    raw = _run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{pushed.ref}")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == pushed.digest
    listed = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
              for m in json.loads(raw)["manifests"]}
    assert listed == platforms and sorted(listed) == sorted(PLATFORMS)
    assert registry.manifest_digest("tkedistro/pushtest", VERSION) == pushed.digest
    local = "tkedistro.test/pushtest"
    try:
        # amd64: the engine pulls the index by digest and picks its platform
        _run("docker", "pull", "-q", "--platform", "linux/amd64", pushed.by_digest)
        image_id = _run("docker", "image", "inspect", "-f", "{{.Id}}", pushed.by_digest).strip()
        _run("docker", "tag", image_id, f"{local}:amd64")
        # arm64: skopeo copies that platform of the index, by digest, into the engine
        skopeo.copy_platform(f"docker://{pushed.by_digest}", "linux/arm64", f"{local}:arm64")
        for platform in PLATFORMS:
            arch = platform.split("/")[1]
            seen = _run("docker", "image", "inspect", "-f", "{{.Architecture}}", f"{local}:{arch}")
            assert seen.strip() == arch
            said = _run("docker", "run", "--rm", "--network", "none", "--platform", platform,
                        f"{local}:{arch}", "--version")
            assert said == f"pushtest {VERSION} {platform}\n"
    finally:
        subprocess.run(["docker", "rmi", "-f", f"{local}:amd64", f"{local}:arm64",
                        pushed.by_digest], capture_output=True, timeout=60)
    assert archive.is_file()


def test_a_push_to_a_registry_that_does_not_answer_names_registry_image_and_reason(
        release: Path) -> None:
    out = release / "_output/1.20"
    _images_json(out, release / "layout")
    with LocalRegistry(release / "gone-registry") as reg:
        address = reg.address  # a port nobody listens on once the registry stops
    with pytest.raises(ImageError) as caught:
        push_images(out, address)
    text = caught.value.render()
    assert f"registry 127.0.0.1, image {address}/tkedistro/pushtest:{VERSION}" in text
    assert "connection refused" in text.lower()


def test_a_root_filesystem_imported_for_arm64_is_an_arm64_image_that_runs(
        release: Path, tmp_path: Path) -> None:
    # how debian/rootfs.py imports a foreign Debian base: the platform goes into the config
    (tmp_path / "root").mkdir()
    shutil.copy(release / "src/version-arm64", tmp_path / "root/version")
    _run("tar", "--numeric-owner", "-C", tmp_path / "root", "-cf", tmp_path / "root.tar", ".")
    ref = "tkedistro.test/imported:arm64"
    engine = DockerImages()
    try:
        made = engine.import_rootfs(tmp_path / "root.tar", ref,
                                    ("ENV PATH=/", 'LABEL org.tkedistro.test="1"'),
                                    platform="linux/arm64")
        assert made.labels == {"org.tkedistro.test": "1"}
        seen = _run("docker", "image", "inspect", "-f",
                    "{{.Os}}/{{.Architecture}} {{.Config.Env}}", ref)
        assert seen.strip() == "linux/arm64 [PATH=/]"
        said = _run("docker", "run", "--rm", "--network", "none", "--platform", "linux/arm64",
                    ref, "version", "--version")  # found through the PATH written
        assert said == f"pushtest {VERSION} linux/arm64\n"
    finally:
        engine.remove(ref)
