"""Docker tier: the SBOM's per-binary Go modules against a binary the real Go 1.15 of the
builder image links in GOPATH mode from vendor/, the way Kubernetes 1.20 builds; and the
images' SBOMs through real buildah and skopeo.

The tree vendors two modules and the program imports one: the SBOM must say the binary links
that one only, and ``go version -m`` must indeed have nothing to say (why the SBOM reads the
function names instead).

The images sit on a Debian-shaped base per platform imported into Docker: the dpkg status,
os-release and copyright files captured from the real bullseye component base
(``tests/unit/data/dpkg``; no debootstrap here, the real base is the real_k8s tier's). The
release SBOM must list each platform's Debian packages (iptables, libc6) for every image,
each archive must carry its own SBOM as an OCI referrer that skopeo leaves aside, and the
CycloneDX rendering must validate against its schema.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from tests.conftest import REPO
from tkedistro.artifacts.context import ReleaseContext
from tkedistro.artifacts.gomodules import linked_modules, load_modules
from tkedistro.artifacts.imagesbom import ImageSbomWriter
from tkedistro.artifacts.purl import deb_purl
from tkedistro.artifacts.sbom import write_sbom, write_sboms
from tkedistro.engine.buildah import Buildah
from tkedistro.engine.skopeo import oci_archive
from tkedistro.images.shipped import SBOM_TYPE, make_release_images
from tkedistro.model.manifest import load_manifest

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

BUILDER = load_manifest(REPO / "releases" / "1.20.yaml").builder.image
DATA = REPO / "tests/unit/data/dpkg"
PLATFORMS = ("linux/amd64", "linux/arm64")
IMAGES = ("kube-proxy", "kube-scheduler", "pause")
VERSION = "v1.20.2-tke.1"
BASE = "tkedistro.test/sbom-base"
MODULES_TXT = """\
# example.com/used v1.2.3 => example.com/used v1.2.3
## explicit
example.com/used/greet
# example.com/unused v0.1.0 => example.com/unused v0.1.0
## explicit
example.com/unused/noise
"""
MAIN = 'package main\n\nimport "example.com/used/greet"\n\nfunc main() { greet.Hello() }\n'
GREET = 'package greet\n\nimport "fmt"\n\nfunc Hello() { fmt.Println("hello") }\n'
NOISE = 'package noise\n\nimport "fmt"\n\nfunc Noise() { fmt.Println("noise") }\n'


def _tree(root: Path) -> None:
    files = {"go.mod": "module k8s.io/kubernetes\n\ngo 1.15\n",
             "vendor/modules.txt": MODULES_TXT, "cmd/kube-proxy/main.go": MAIN,
             "vendor/example.com/used/greet/greet.go": GREET,
             "vendor/example.com/unused/noise/noise.go": NOISE}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def _in_builder(tree: Path, script: str) -> str:
    done = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--user", "0",
         "-v", f"{tree}:/gopath/src/k8s.io/kubernetes", "-w", "/gopath/src/k8s.io/kubernetes",
         "-e", "GOPATH=/gopath", "-e", "GO111MODULE=off", "-e", "GOCACHE=/tmp/gocache",
         BUILDER, "sh", "-c", script],
        capture_output=True, text=True, check=False, timeout=240)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_sbom_names_the_modules_a_real_gopath_binary_links(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _tree(tree)
    out_rel = "_output/bin/linux/amd64/kube-proxy"
    shown = _in_builder(tree, f"go build -ldflags '-s -w' -o {out_rel} ./cmd/kube-proxy && "
                              f"go version -m {out_rel}")
    assert "\tmod\t" not in shown and "\tdep\t" not in shown  # GOPATH mode: no module list
    out = tree / "_output"
    binary = out / "bin/linux/amd64/kube-proxy"
    modules = load_modules(tree)
    assert linked_modules(binary, modules, "k8s.io/kubernetes") == frozenset({"example.com/used"})
    data = binary.read_bytes()
    files = {"bin/linux/amd64/kube-proxy": {"sha256": hashlib.sha256(data).hexdigest(),
                                            "sha512": hashlib.sha512(data).hexdigest()}}
    ctx = ReleaseContext(
        release="1.20", distro_version="v1.20.2-tke.1",
        upstream_url="https://github.com/kubernetes/kubernetes.git", tag="v1.20.2",
        upstream_commit="0" * 40, tree_commit="1" * 40, tree=tree,
        source_date_epoch=1610544000, platforms=("linux/amd64",), components=("kube-proxy",),
        image_components=(), patches=(), builder_image=BUILDER,
        builder_image_id="sha256:" + "2" * 64, go_version="1.15.15", tool_version="0.1.0")
    path = write_sbom(out, ctx, files, [])
    assert validate_full_spdx_document(parse_file(str(path))) == []
    sbom = json.loads(path.read_text())
    names = {p["SPDXID"]: p["name"] for p in sbom["packages"]}
    linked = {names[r["relatedSpdxElement"]] for r in sbom["relationships"]
              if r["relationshipType"] == "STATIC_LINK"}
    assert linked == {"example.com/used"}


def _base(tmp: Path, arch: str) -> str:
    """A Debian-shaped base for ``arch`` in Docker: the captured dpkg status (its
    architecture set to ``arch``), os-release and copyright files."""
    status = (DATA / "status-bullseye-amd64").read_text().replace(
        "Architecture: amd64", f"Architecture: {arch}")
    entries = {"var/lib/dpkg/status": status.encode(),
               "usr/lib/os-release": (DATA / "os-release-bullseye").read_bytes(),
               "usr/share/doc/iptables/copyright": (DATA / "copyright-iptables").read_bytes(),
               "usr/share/doc/libc6/copyright": (DATA / "copyright-libc6").read_bytes()}
    tar_path = tmp / f"base-{arch}.tar"
    with tarfile.open(tar_path, "w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 315532800
            tar.addfile(info, io.BytesIO(data))
    ref = f"{BASE}:{arch}"
    subprocess.run(["docker", "import", str(tar_path), ref],
                   capture_output=True, check=True, timeout=120)
    return ref


def _referrers(archive: Path) -> list[dict[str, object]]:
    with tarfile.open(archive) as tar:
        listing = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    return [m for m in listing["manifests"] if "artifactType" in m]


def test_sbom_lists_the_debian_packages_of_every_image_and_each_carries_its_own(
        tmp_path: Path) -> None:
    if shutil.which("buildah") is None or shutil.which("skopeo") is None:
        pytest.skip("needs buildah and skopeo (apt-get install buildah skopeo)")
    tree = tmp_path / "tree"
    _tree(tree)
    binary = "_output/bin/linux/amd64/kube-proxy"
    _in_builder(tree, f"go build -ldflags '-s -w' -o {binary} ./cmd/kube-proxy")
    out = tmp_path / "out"
    for platform in PLATFORMS:
        (out / "bin" / platform).mkdir(parents=True)
        for component in IMAGES:
            shutil.copy(tree / binary, out / "bin" / platform / component)
    ctx = ReleaseContext(
        release="1.20", distro_version=VERSION,
        upstream_url="https://github.com/kubernetes/kubernetes.git", tag="v1.20.2",
        upstream_commit="0" * 40, tree_commit="1" * 40, tree=tree,
        source_date_epoch=1610544000, platforms=PLATFORMS, components=IMAGES,
        image_components=IMAGES, patches=(), builder_image=BUILDER,
        builder_image_id="sha256:" + "2" * 64, go_version="1.15.15", tool_version="0.1.0")
    try:
        bases = {p: "docker-daemon:" + _base(tmp_path, p.split("/")[1]) for p in PLATFORMS}
        shipped = [i.to_json() for i in make_release_images(
            out, ctx, tmp_path / "work", Buildah(tmp_path / "storage"), bases,
            describer=ImageSbomWriter.for_release(ctx))]
    finally:
        for arch in ("amd64", "arm64"):
            subprocess.run(["docker", "image", "rm", f"{BASE}:{arch}"], capture_output=True)
    files = {str(i["archive"]): {"sha256": str(i["sha256"])[7:]} for i in shipped}
    names = write_sboms(out, ctx, files, shipped)
    assert names == ["sbom.spdx.json", "sbom.cdx.json"]
    assert validate_full_spdx_document(parse_file(str(out / "sbom.spdx.json"))) == []
    sbom = json.loads((out / "sbom.spdx.json").read_text())
    ids = {r["referenceLocator"]: p["SPDXID"] for p in sbom["packages"]
           for r in p.get("externalRefs", [])}
    contains = {(r["spdxElementId"], r["relatedSpdxElement"]) for r in sbom["relationships"]
                if r["relationshipType"] == "CONTAINS"}
    for image in shipped:
        ident = next(p["SPDXID"] for p in sbom["packages"] if p["name"] == image["ref"])
        for arch in ("amd64", "arm64"):
            for purl in (deb_purl("iptables", "1.8.7-1", arch, "debian-11"),
                         deb_purl("libc6", "2.31-13+deb11u11", arch, "debian-11", "glibc")):
                assert ((ident, ids[purl]) in contains) == (image["component"] != "pause")
        archive = out / str(image["archive"])
        (referrer,) = _referrers(archive)
        assert referrer["artifactType"] == SBOM_TYPE
        named = oci_archive(archive)
        assert named == f"oci-archive:{archive}:{VERSION}"
        raw = subprocess.run(["skopeo", "inspect", "--raw", named], capture_output=True,
                             check=True, timeout=60).stdout
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == image["index_digest"]
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = (out / "sbom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    assert deb_purl("iptables", "1.8.7-1", "arm64", "debian-11") in text
