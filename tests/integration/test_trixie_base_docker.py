"""Docker tier: the shipped component images sit on a real Debian 13 trixie base, and a user
can see it: ``/etc/os-release`` in kube-proxy's image names trixie, its iptables, ip6tables
and ebtables are the legacy backend, its labels and manifest annotations name the base's id
(the one ``docker image inspect`` shows) and the InRelease it was debootstrapped from, and the
provenance lists both. A run against the published output reuses the images; a new base id
rebuilds kube-proxy and reuses pause.

The base is debootstrapped for real (root, a Debian mirror; the time is printed) from the
tool's own component base recipe under a test ref (``tkedistro.test/component-base:...``), so
the tool's images stay untouched; linux/arm64 too when this host runs arm64 binaries (qemu).
The binaries are the tiny static programs of ``test_release_images_docker``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_release_images_docker import (
    BUILDER,
    VERSION,
    _binaries,
    _cmd,
    _context,
    _output,
)
from tkedistro.artifacts.provenance import release_subjects, write_provenance
from tkedistro.debian.rootfs import DebianBase, ensure_debian_base
from tkedistro.engine.buildah import Buildah
from tkedistro.engine.docker import DockerBackend
from tkedistro.engine.docker_images import DockerImages
from tkedistro.engine.emulation import can_run
from tkedistro.images import base
from tkedistro.images.shipped import ShippedImage, make_release_images

pytestmark = [pytest.mark.docker, pytest.mark.timeout(2400)]

TEST_REPOSITORY = "tkedistro.test/component-base"
LOADED = "tkedistro.test/trixie-loaded"
COMPONENTS = ("kube-proxy", "pause")
PLATFORMS = ("linux/amd64", "linux/arm64") if can_run("linux/arm64")[0] else ("linux/amd64",)
SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


def _test_ref(platform: str) -> str:
    return f"{TEST_REPOSITORY}:{base.SUITE}-{platform.split('/')[1]}"


@dataclass
class Made:
    tmp: Path
    bases: dict[str, DebianBase]
    shipped: dict[str, ShippedImage]
    out: Path
    sources: dict[str, str]


def _make_base(work: Path, platform: str) -> DebianBase:
    recipe = dataclasses.replace(base.base_recipe(platform), ref=_test_ref(platform))
    started = time.monotonic()
    made = ensure_debian_base(DockerImages(), work, recipe)
    how = "reused" if made.reused else "debootstrapped and imported"
    print(f"{recipe.ref}: {how} in {time.monotonic() - started:.0f} s")
    return made


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("the Debian base needs root and debootstrap (make install)")
    if shutil.which("buildah") is None or shutil.which("skopeo") is None:
        pytest.skip("needs buildah and skopeo (apt-get install buildah skopeo)")
    if DockerBackend().image_info(BUILDER) is None:
        pytest.skip(f"needs the builder image {BUILDER} (make install)")
    tmp = tmp_path_factory.mktemp("trixie")
    bases = {p: _make_base(tmp / "bases", p) for p in PLATFORMS}
    (tmp / "bins").mkdir()
    _binaries(tmp / "bins")
    ctx = dataclasses.replace(_context(tmp), platforms=PLATFORMS, image_components=COMPONENTS)
    sources = {p: f"docker-daemon:{_test_ref(p)}" for p in PLATFORMS}
    out = _output(tmp, "out", tmp / "bins")
    shipped = make_release_images(out, ctx, tmp / "work", Buildah(tmp / "storage"), sources)
    yield Made(tmp, bases, {i.component: i for i in shipped}, out, sources)
    for ref in (f"{LOADED}/{c}:{p.split('/')[1]}" for c in COMPONENTS for p in PLATFORMS):
        subprocess.run(["docker", "image", "rm", ref], capture_output=True)


def _load(made: Made, component: str, platform: str) -> str:
    arch = platform.split("/")[1]
    ref = f"{LOADED}/{component}:{arch}"
    _cmd("skopeo", "copy", "--override-arch", arch,
         f"oci-archive:{made.out / made.shipped[component].archive}", f"docker-daemon:{ref}")
    return ref


def _run(ref: str, *argv: str) -> str:
    return _cmd("docker", "run", "--rm", "--network", "none", "--entrypoint", argv[0], ref,
                *argv[1:])


def _manifest(archive: Path, platform: str) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        def blob(digest: str) -> dict[str, Any]:
            data: dict[str, Any] = json.load(tar.extractfile(  # type: ignore[arg-type]
                f"blobs/sha256/{digest.removeprefix('sha256:')}"))
            return data
        top = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        index = blob(top["manifests"][0]["digest"])
        return blob(next(m["digest"] for m in index["manifests"]
                         if f"{m['platform']['os']}/{m['platform']['architecture']}" == platform))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_kube_proxys_image_is_debian_13_trixie_with_legacy_iptables(
        made: Made, platform: str) -> None:
    proxy = _load(made, "kube-proxy", platform)
    release = _run(proxy, "cat", "/etc/os-release")
    assert 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"' in release
    assert "VERSION_CODENAME=trixie" in release
    for tool in ("iptables", "ip6tables", "ebtables"):
        assert "(legacy)" in _run(proxy, tool, "--version"), tool
        assert _run(proxy, "readlink", f"/etc/alternatives/{tool}").strip() == (
            f"/usr/sbin/{tool}-legacy")
    # present (running them needs netlink, which a container without privileges lacks)
    found = _run(proxy, "sh", "-c", "for t in conntrack ipset modprobe ip; do command -v $t; done")
    assert found.split() == ["/usr/sbin/conntrack", "/usr/sbin/ipset", "/usr/sbin/modprobe",
                             "/usr/sbin/ip"]
    assert _run(proxy, "/usr/local/bin/kube-proxy") == (
        f"/usr/local/bin/kube-proxy {platform.split('/')[1]} 0\n")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_labels_and_annotations_name_the_base_a_user_can_inspect(
        made: Made, platform: str) -> None:
    proxy = _load(made, "kube-proxy", platform)
    labels = json.loads(_cmd("docker", "image", "inspect", "--format",
                             "{{json .Config.Labels}}", proxy))
    base_id = _cmd("docker", "image", "inspect", "--format", "{{.Id}}",
                   _test_ref(platform)).strip()
    assert base_id == made.bases[platform].image_id
    names = {"org.opencontainers.image.base.name": _test_ref(platform),
             "org.opencontainers.image.base.digest": base_id}
    assert {k: labels[k] for k in names} == names
    assert _manifest(made.out / made.shipped["kube-proxy"].archive, platform)[
        "annotations"] == names
    assert labels["org.tkedistro.debian.suite"] == "trixie"
    assert labels["org.tkedistro.debian.release"].endswith("/dists/trixie/InRelease")
    assert SHA256.match(labels["org.tkedistro.debian.release.sha256"])
    assert labels["org.tkedistro.debian.release.version"].startswith("13.")
    layers = _manifest(made.out / made.shipped["kube-proxy"].archive, platform)["layers"]
    print(f"{platform}: base layer {layers[0]['size']} bytes, binary layer "
          f"{layers[1]['size']} bytes (gzip)")


def test_the_provenance_lists_the_bases_and_their_inrelease(made: Made) -> None:
    ctx = dataclasses.replace(_context(made.tmp), platforms=PLATFORMS,
                              image_components=COMPONENTS)
    images = [image.to_json() for image in made.shipped.values()]
    statement = json.loads(write_provenance(made.out, ctx,
                                            release_subjects({}, images)).read_text())
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    for platform, made_base in made.bases.items():
        entry = next(d for d in deps if d.get("name") == _test_ref(platform))
        assert entry["digest"] == {"sha256": made_base.image_id.removeprefix("sha256:")}
        assert entry["annotations"]["debianSuite"] == "trixie"
    labels = made.shipped["kube-proxy"].bases[PLATFORMS[0]]["labels"]
    assert isinstance(labels, dict)
    inrelease = next(d for d in deps if d.get("uri") == labels["org.tkedistro.debian.release"])
    assert "sha256:" + inrelease["digest"]["sha256"] == labels[
        "org.tkedistro.debian.release.sha256"]


def test_an_unchanged_base_reuses_and_a_new_base_id_rebuilds_kube_proxy(made: Made) -> None:
    ctx = dataclasses.replace(_context(made.tmp), platforms=PLATFORMS,
                              image_components=COMPONENTS)
    again = make_release_images(_output(made.tmp, "again", made.tmp / "bins"), ctx,
                                made.tmp / "work", Buildah(made.tmp / "storage"), made.sources,
                                previous=made.out)
    assert [i.reused for i in again] == [True, True]
    amd64 = made.bases["linux/amd64"]
    (made.tmp / "newer").mkdir()
    (made.tmp / "newer/Dockerfile").write_text(
        f"FROM {amd64.ref}\nLABEL org.tkedistro.test=newer-base\n")
    _cmd("docker", "build", "--quiet", "-t", amd64.ref, str(made.tmp / "newer"), timeout=300)
    try:
        moved = make_release_images(_output(made.tmp, "moved", made.tmp / "bins"), ctx,
                                    made.tmp / "work", Buildah(made.tmp / "storage"),
                                    made.sources, previous=made.out)
    finally:
        _cmd("docker", "tag", amd64.image_id, amd64.ref)  # the made base again
    assert {i.component: i.reused for i in moved} == {"kube-proxy": False, "pause": True}
    proxy = next(i for i in moved if i.component == "kube-proxy")
    assert proxy.bases["linux/amd64"]["digest"] != amd64.image_id
    assert proxy.index_digest != made.shipped["kube-proxy"].index_digest
    assert VERSION in proxy.ref
