"""Image SBOMs: the Debian packages inside each shipped image (read from its dpkg status in its
layers), the per-image SPDX document attached to the archive as an OCI 1.1 referrer, the
release SBOM listing them as ``pkg:deb`` packages, and its CycloneDX rendering.

The dpkg status and os-release are captured from the real bullseye component base
(``tests/unit/data/dpkg``); the copyright files are real Debian ones (iptables, zlib1g in
the machine-readable format, libc6 not). The images are made by a fake builder whose layers
are real tars, so the layer reading and the packing run on real files.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from tests.unit.test_release_images import BASES, OCI_MANIFEST, PLATFORMS, FakeBuilder, _ctx
from tkedistro.artifacts.cyclonedx import CYCLONEDX_NAME, write_cyclonedx
from tkedistro.artifacts.imagesbom import ImageSbomWriter
from tkedistro.artifacts.purl import deb_purl, golang_purl, oci_purl
from tkedistro.artifacts.sbom import image_contents, write_sbom
from tkedistro.debian.dpkg import copyright_license, parse_status, spdx_license_id
from tkedistro.engine.skopeo import oci_archive
from tkedistro.images.contents import archive_blobs, image_files
from tkedistro.images.ocilayout import read_index
from tkedistro.images.push import archive_index_digest
from tkedistro.images.shipped import SBOM_TYPE, make_release_images

DATA = Path(__file__).parent / "data" / "dpkg"
STATUS = (DATA / "status-bullseye-amd64").read_text()
COMPONENTS = ("kube-proxy", "pause")
VERSION = "v1.20.2-tke.1"


def test_the_real_status_file_lists_its_installed_packages() -> None:
    removed = "\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n"
    packages = {p.name: p for p in parse_status(STATUS + removed)}
    assert len(packages) == 120 and "gone" not in packages
    assert {"iptables", "libc6", "conntrack", "ipset", "kmod", "iproute2"} <= set(packages)
    libc = packages["libc6"]
    assert (libc.version, libc.arch, libc.source, libc.source_version) == (
        "2.31-13+deb11u11", "amd64", "glibc", "2.31-13+deb11u11")
    assert packages["iptables"].source == "iptables"
    # "Source: name (version)": a binNMU's source version is not its own
    coreutils = packages["coreutils"]
    assert (coreutils.version, coreutils.source, coreutils.source_version) == (
        "8.32-4+b1", "coreutils", "8.32-4")


def test_licenses_come_from_machine_readable_copyright_files_only() -> None:
    iptables, extracted = copyright_license(
        "iptables", (DATA / "copyright-iptables").read_text())
    assert iptables == ("Artistic-1.0 AND GPL-2.0-only AND GPL-2.0-or-later AND "
                        "LicenseRef-iptables-custom")
    assert [e.license_id for e in extracted] == ["LicenseRef-iptables-custom"]
    assert extracted[0].text.startswith("Permission to use, copy, modify")
    assert copyright_license("zlib1g", (DATA / "copyright-zlib1g").read_text()) == ("Zlib", ())
    assert copyright_license("libc6", (DATA / "copyright-libc6").read_text()) == (None, ())
    assert [spdx_license_id(n) for n in ("LGPL-2.1+", "Expat", "BSD-3-clause", "custom")] == [
        "LGPL-2.1-or-later", "MIT", "BSD-3-Clause", None]


def test_purls_are_the_purl_spec_forms() -> None:
    assert deb_purl("libc6", "2.31-13+deb11u11", "arm64", "debian-11", "glibc") == (
        "pkg:deb/debian/libc6@2.31-13%2Bdeb11u11?arch=arm64&distro=debian-11&upstream=glibc")
    assert deb_purl("iptables", "1.8.7-1", "amd64", "debian-11", "iptables") == (
        "pkg:deb/debian/iptables@1.8.7-1?arch=amd64&distro=debian-11")
    assert golang_purl("github.com/Azure/autorest", "v14.2.0+incompatible") == (
        "pkg:golang/github.com/Azure/autorest@v14.2.0%2Bincompatible")
    assert oci_purl("reg.example/k8s/Kube-Proxy", "sha256:" + "a" * 64, arch="amd64") == (
        "pkg:oci/kube-proxy@sha256:" + "a" * 64
        + "?arch=amd64&repository_url=reg.example/k8s/Kube-Proxy")


def _tar(entries: dict[str, bytes | str | None]) -> bytes:
    """A layer: bytes are files, a str a symlink's target, None a whiteout's name."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data or b"")
                tar.addfile(info, io.BytesIO(data or b""))
    return buffer.getvalue()


def _base_layer(arch: str) -> bytes:
    return _tar({
        "var/lib/dpkg/status": STATUS.replace("Architecture: amd64", f"Architecture: {arch}")
        .encode(),
        "usr/lib/os-release": (DATA / "os-release-bullseye").read_bytes(),
        "etc/os-release": "../usr/lib/os-release",
        "usr/share/doc/iptables/copyright": (DATA / "copyright-iptables").read_bytes(),
        "usr/share/doc/zlib1g/copyright": (DATA / "copyright-zlib1g").read_bytes(),
        "usr/share/doc/libc6/copyright": (DATA / "copyright-libc6").read_bytes(),
        "usr/share/doc/kmod/copyright": (DATA / "copyright-zlib1g").read_bytes(),
    })


class TarBuilder(FakeBuilder):
    """Images whose layers are real tars: a Debian base layer (not for pause) under the
    component's files; the kube-proxy layer whites out kmod's copyright file."""

    def commit(self, container: str, layout: Path, tag: str, timestamp: int) -> None:
        super().commit(container, layout, tag, timestamp)
        index = json.loads((layout / "index.json").read_text())
        manifest_path = layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]
        manifest = json.loads(manifest_path.read_text())
        state = self.containers[container]
        files: dict[str, bytes | str | None] = dict(state["files"])  # type: ignore[call-overload]
        if "usr/local/bin/kube-proxy" in files:
            files["usr/share/doc/kmod/.wh.copyright"] = None
        layers = [] if state["image"] == "scratch" else [_base_layer(tag.split("-")[1])]
        manifest["layers"] = []
        for data in [*layers, _tar(files)]:
            digest = hashlib.sha256(data).hexdigest()
            (layout / "blobs/sha256" / digest).write_bytes(data)
            manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": "sha256:" + digest, "size": len(data)})
        raw = json.dumps(manifest).encode()
        digest = hashlib.sha256(raw).hexdigest()
        (layout / "blobs/sha256" / digest).write_bytes(raw)
        index["manifests"][0].update({"mediaType": OCI_MANIFEST, "digest": "sha256:" + digest,
                                      "size": len(raw)})
        (layout / "index.json").write_text(json.dumps(index))


def _release(tmp: Path, name: str) -> tuple[Path, list[dict[str, Any]]]:
    out = tmp / name
    for platform in PLATFORMS:
        (out / "bin" / platform).mkdir(parents=True)
        for component in COMPONENTS:
            (out / "bin" / platform / component).write_bytes(
                b"\x7fELF k8s.io/kubernetes/vendor/github.com/spf13/pflag.Parse\x00")
    tree = tmp / "tree"
    (tree / "vendor").mkdir(parents=True, exist_ok=True)
    (tree / "go.mod").write_text("module k8s.io/kubernetes\n")
    (tree / "vendor/modules.txt").write_text(
        "# github.com/spf13/pflag v1.0.5\n## explicit\ngithub.com/spf13/pflag\n")
    ctx = _ctx(tmp, tree=tree, image_components=COMPONENTS)
    made = make_release_images(out, ctx, tmp / f"work-{name}", TarBuilder(), BASES,
                               describer=ImageSbomWriter.for_release(ctx))
    return out, [image.to_json() for image in made]


@pytest.fixture
def release(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    return _release(tmp_path, "out")


def _referrer(archive: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """index.json, the referrer's manifest and its SPDX document, read from the archive."""
    with tarfile.open(archive) as tar:
        def read(name: str) -> Any:
            return json.loads(tar.extractfile(name).read())  # type: ignore[union-attr]

        listing = read("index.json")
        entry = next(m for m in listing["manifests"] if "artifactType" in m)
        manifest = read(f"blobs/sha256/{entry['digest'][7:]}")
        return listing, manifest, read(f"blobs/sha256/{manifest['layers'][0]['digest'][7:]}")


def test_each_archive_carries_its_sbom_as_a_referrer_of_its_index(
        release: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    out, images = release
    proxy = next(i for i in images if i["component"] == "kube-proxy")
    listing, manifest, sbom = _referrer(out / proxy["archive"])
    image_entry, referrer = listing["manifests"]
    assert image_entry["digest"] == proxy["index_digest"]
    assert referrer["artifactType"] == SBOM_TYPE and "org.opencontainers.image.ref.name" \
        not in referrer.get("annotations", {})
    assert manifest["subject"]["digest"] == proxy["index_digest"]
    assert manifest["artifactType"] == SBOM_TYPE
    assert manifest["config"] == {"mediaType": "application/vnd.oci.empty.v1+json",
                                  "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
                                  "size": 2}
    assert manifest["layers"][0]["mediaType"] == SBOM_TYPE
    assert sbom["name"] == proxy["ref"] and sbom["spdxVersion"] == "SPDX-2.3"
    purls = {r["referenceLocator"] for p in sbom["packages"] for r in p.get("externalRefs", [])}
    for arch in ("amd64", "arm64"):
        assert deb_purl("iptables", "1.8.7-1", arch, "debian-11") in purls
        assert deb_purl("libc6", "2.31-13+deb11u11", arch, "debian-11", "glibc") in purls
    assert "pkg:golang/github.com/spf13/pflag@v1.0.5" in purls
    path = tmp_path / "image.spdx.json"
    path.write_text(json.dumps(sbom))
    assert validate_full_spdx_document(parse_file(str(path))) == []
    # skopeo needs the image named once index.json lists the referrer too; the push reads
    # the image index beside it
    assert oci_archive(out / proxy["archive"]) == f"oci-archive:{out / proxy['archive']}:{VERSION}"
    assert archive_index_digest(out / proxy["archive"]) == proxy["index_digest"]


def test_the_same_inputs_give_the_same_archive_bytes(
        release: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    out, images = release
    again, second = _release(tmp_path, "again")
    assert images == second
    for image in images:
        assert (out / image["archive"]).read_bytes() == (again / image["archive"]).read_bytes()


def test_pause_has_no_debian_packages_and_whiteouts_remove_files(
        release: tuple[Path, list[dict[str, Any]]]) -> None:
    out, images = release
    contents = image_contents(out, images)
    pause = contents["images/pause.oci.tar"]
    assert [(c.platform, c.packages) for c in pause] == [(p, ()) for p in PLATFORMS]
    proxy = {c.platform: c for c in contents["images/kube-proxy.oci.tar"]}
    assert proxy["linux/arm64"].distro == "debian-11"
    packages = {p.name: p for p in proxy["linux/arm64"].packages}
    assert packages["zlib1g"].license == "Zlib" and packages["libc6"].license is None
    assert packages["kmod"].license is None  # its copyright file is whited out above
    image = next(i for i in images if i["component"] == "kube-proxy")
    with archive_blobs(out / image["archive"]) as open_blob:
        found = image_files(open_blob, image["manifests"]["linux/amd64"],
                            lambda p: p.startswith("usr/"))
    assert "usr/local/bin/kube-proxy" in found and "usr/share/doc/kmod/copyright" not in found
    assert read_index(_unpacked(out / image["archive"])).digest == image["index_digest"]


def _unpacked(archive: Path) -> Path:
    folder = archive.with_suffix(".layout")
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder


def test_release_sbom_lists_every_images_debian_packages_and_validates(
        release: tuple[Path, list[dict[str, Any]]]) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    out, images = release
    ctx = _ctx(out.parent, tree=out.parent / "tree", image_components=COMPONENTS,
               upstream_url="https://github.com/kubernetes/kubernetes.git")
    files = {i["archive"]: {"sha256": i["sha256"][7:]} for i in images}
    path = write_sbom(out, ctx, files, images, image_contents(out, images))
    assert validate_full_spdx_document(parse_file(str(path))) == []
    sbom = json.loads(path.read_text())
    by_id = {p["SPDXID"]: p for p in sbom["packages"]}
    by_purl = {r["referenceLocator"]: p for p in sbom["packages"]
               for r in p.get("externalRefs", [])}
    proxy = next(p["SPDXID"] for p in sbom["packages"] if p["name"].endswith(
        f"kube-proxy:{VERSION}"))
    contained = {by_id[r["relatedSpdxElement"]]["name"] for r in sbom["relationships"]
                 if r["spdxElementId"] == proxy and r["relationshipType"] == "CONTAINS"}
    assert {"iptables", "libc6", "conntrack"} <= contained
    for arch in ("amd64", "arm64"):
        libc = by_purl[deb_purl("libc6", "2.31-13+deb11u11", arch, "debian-11", "glibc")]
        assert libc["sourceInfo"] == "built from the Debian source package glibc " \
                                     "2.31-13+deb11u11"
        assert libc["licenseDeclared"] == "NOASSERTION"
        iptables = by_purl[deb_purl("iptables", "1.8.7-1", arch, "debian-11")]
        assert iptables["licenseDeclared"].endswith("LicenseRef-iptables-custom")
    assert [e["licenseId"] for e in sbom["hasExtractedLicensingInfos"]] == [
        "LicenseRef-iptables-custom"]
    debs = [p for p in by_purl if p.startswith("pkg:deb/")]
    shared = [p for p in parse_status(STATUS) if p.arch == "all"]
    assert len(debs) == 2 * 120 - len(shared)  # one package per purl, not one per image
    assert deb_purl("libaudit-common", "1:3.0-2", "all", "debian-11", "audit") in by_purl
    cdx = write_cyclonedx(out, sbom)
    assert cdx.name == CYCLONEDX_NAME
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(cdx.read_text()) is None
    document = json.loads(cdx.read_text())
    assert document["specVersion"] == "1.6"
    assert {c["purl"] for c in document["components"] if "purl" in c} >= set(debs)
