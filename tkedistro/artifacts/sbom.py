"""The release's SPDX 2.3 JSON SBOM, ``<out_dir>/sbom.spdx.json``.

What it names, one SPDX package each: the distro release (the document DESCRIBES it), the
upstream Kubernetes source (``git+<url>@<tag>``, the commit in ``sourceInfo``), the patched
tree (the tree commit), every patch (sha256, its trailers such as ``Upstream-Ref`` and
``Upstream-Status`` in the comment), every binary (sha256 and sha512, purpose APPLICATION),
every other release file (the tarballs), every image (``pkg:oci`` purls of the index and of each
platform's manifest), every Debian package inside the images (``pkg:deb/debian/<name>@<version>
?arch=..&distro=debian-<version>``, one per purl, read from each platform's dpkg status by
``images/contents.py``; the license of its machine-readable copyright file, else NOASSERTION,
licenses without an SPDX identifier in ``hasExtractedLicensingInfos``; the source package in
``sourceInfo``), every vendored Go module (``pkg:golang`` purls; see ``gomodules``), and the
builder image with its Go toolchain. Patches, binaries and images are packages rather than
SPDX files because an SPDX 2.3 file must carry a SHA1, which nothing here records.

Relationships (SPDX 2.3 names; "A TYPE B"): patch PATCH_APPLIED tree, tree DESCENDANT_OF
upstream, tree CONTAINS module (vendor/), binary and tarball GENERATED_FROM tree, binary
STATIC_LINK module (only for the modules read from the binary, ``gomodules.linked_modules``),
release CONTAINS binary/tarball/image, image CONTAINS the binary of each of its platforms and
its Debian packages, builder image and Go BUILD_TOOL_OF each binary, builder image CONTAINS Go.

The document is a function of its inputs: ``created`` is the tree commit's time, the namespace
ends in the sha256 of the rest of the document, keys and lists are sorted. ``write_sboms`` also
writes its CycloneDX rendering (``artifacts/cyclonedx.py``); each image's own SBOM, attached to
its archive, is ``artifacts/imagesbom.py``'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tkedistro.artifacts.context import ReleaseContext
from tkedistro.artifacts.gomodules import GoModule, linked_modules, load_modules, main_module
from tkedistro.artifacts.purl import (
    SpdxIds,
    deb_purl,
    github_purl,
    golang_purl,
    oci_purl,
    split_ref,
)
from tkedistro.core.files import json_digest, write_atomic
from tkedistro.core.workspace import output_bin
from tkedistro.debian.dpkg import DebianPackage
from tkedistro.images.contents import DebianContents, archive_blobs, platform_contents

SBOM_NAME = "sbom.spdx.json"
NAMESPACE_BASE = "https://tkedistro.invalid/spdx"
BINARY = re.compile(r"^bin/(?P<os>[^/]+)/(?P<arch>[^/]+)/(?P<component>[^/]+)$")
NOASSERTION = "NOASSERTION"
K8S_LICENSE = "Apache-2.0"

Files = Mapping[str, Mapping[str, str]]
ImageContents = Mapping[str, Sequence[DebianContents]]  # archive -> each platform's packages
Linked = Mapping[str, frozenset[str] | None]


def iso_utc(epoch: int) -> str:
    """``2021-01-13T13:20:00Z``: the SPDX timestamp of a Unix time."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bare(digest: str) -> str:
    return digest.removeprefix("sha256:")


def spdx_checksums(sums: Mapping[str, str]) -> list[dict[str, str]]:
    """SPDX ``checksums`` of ``{"sha256": hex, ...}`` (unknown algorithms left out)."""
    names = {"sha256": "SHA256", "sha512": "SHA512", "sha1": "SHA1"}
    return [
        {"algorithm": names[k], "checksumValue": _bare(v).lower()}
        for k, v in sorted(sums.items())
        if k in names and v
    ]


def purl_refs(*locators: str | None) -> list[dict[str, str]]:
    """SPDX ``externalRefs`` of the given purls (None and duplicates left out)."""
    return [
        {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p}
        for p in sorted({p for p in locators if p})
    ]


class SpdxDocument:
    """Packages, relationships and extracted licenses as they are added; ``to_json`` sorts
    them."""

    def __init__(self) -> None:
        self.ids = SpdxIds()
        self.packages: list[dict[str, Any]] = []
        self.relationships: set[tuple[str, str, str]] = set()
        self.licenses: dict[str, dict[str, str]] = {}
        self.debian: dict[str, str] = {}  # purl -> id of the Debian packages added

    def package(self, id_parts: Sequence[str], name: str, **fields: Any) -> str:
        spdx_id = self.ids.new(*id_parts)
        entry: dict[str, Any] = {
            "SPDXID": spdx_id, "name": name, "downloadLocation": NOASSERTION,
            "filesAnalyzed": False, "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION, "copyrightText": NOASSERTION,
        }
        entry.update({k: v for k, v in fields.items() if v not in (None, [], "")})
        self.packages.append(entry)
        return spdx_id

    def relate(self, element: str, kind: str, related: str) -> None:
        self.relationships.add((element, kind, related))

    def to_json(self, ctx: ReleaseContext, name: str = "", namespace: str = ""
                ) -> dict[str, Any]:
        """The document (``name``: default ``tkedistro-<distro version>``; ``namespace``:
        the part of its namespace before the digest, default ``<release>/<distro
        version>``)."""
        doc: dict[str, Any] = {
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": name or f"tkedistro-{ctx.distro_version}",
            "creationInfo": {
                "created": iso_utc(ctx.source_date_epoch),
                "creators": [f"Tool: tkedistro-{ctx.tool_version}"],
            },
            "packages": sorted(self.packages, key=lambda p: str(p["SPDXID"])),
            "relationships": [
                {"spdxElementId": a, "relationshipType": kind, "relatedSpdxElement": b}
                for a, kind, b in sorted(self.relationships)
            ],
        }
        if self.licenses:
            doc["hasExtractedLicensingInfos"] = [v for _, v in sorted(self.licenses.items())]
        digest = _bare(json_digest(doc))
        where = namespace or f"{ctx.release}/{ctx.distro_version}"
        doc["documentNamespace"] = f"{NAMESPACE_BASE}/{where}-{digest}"
        return doc

    def add_debian(self, image: str, contents: Sequence[DebianContents]) -> None:
        """Each platform's Debian packages (one package per purl, however many images hold
        it), contained in ``image``."""
        for platform in contents:
            for deb in platform.packages:
                purl = deb_purl(deb.name, deb.version, deb.arch, platform.distro, deb.source)
                if purl not in self.debian:
                    self.debian[purl] = self._debian_package(deb, purl)
                self.relate(image, "CONTAINS", self.debian[purl])

    def _debian_package(self, deb: DebianPackage, purl: str) -> str:
        for extracted in deb.extracted:
            self.licenses[extracted.license_id] = {
                "licenseId": extracted.license_id, "name": extracted.name,
                "extractedText": extracted.text}
        return self.package(
            ["Deb", deb.arch, deb.name], deb.name, versionInfo=deb.version,
            primaryPackagePurpose="LIBRARY" if deb.name.startswith("lib") else "APPLICATION",
            licenseDeclared=deb.license or NOASSERTION, externalRefs=purl_refs(purl),
            supplier="Organization: Debian",
            sourceInfo=f"built from the Debian source package {deb.source} "
                       f"{deb.source_version}",
            comment=("license from its machine-readable /usr/share/doc/"
                     f"{deb.name}/copyright" if deb.license else
                     "no machine-readable copyright file in the image"))




def _trailer_comment(trailers: Mapping[str, str]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in sorted(trailers.items()))


def _vcs_location(url: str, tag: str) -> str:
    """SPDX's ``git+<url>@<tag>`` for the schemes SPDX allows there; NOASSERTION for a local
    mirror (``file://``, a path), which ``sourceInfo`` names instead."""
    if url.split("://", 1)[0] in ("https", "http", "ssh", "git"):
        return f"git+{url}@{tag}"
    return NOASSERTION


def _source(doc: SpdxDocument, ctx: ReleaseContext) -> str:
    """The upstream, the patched tree and the patches; returns the tree's id."""
    upstream = doc.package(
        ["Upstream", "kubernetes", ctx.tag], "kubernetes",
        versionInfo=ctx.tag, downloadLocation=_vcs_location(ctx.upstream_url, ctx.tag),
        sourceInfo=f"upstream {ctx.upstream_url} tag {ctx.tag}, commit {ctx.upstream_commit}",
        licenseDeclared=K8S_LICENSE, primaryPackagePurpose="SOURCE",
        externalRefs=purl_refs(github_purl(ctx.upstream_url, ctx.tag)),
    )
    tree = doc.package(
        ["Source", ctx.distro_version], f"kubernetes-{ctx.distro_version}-source",
        versionInfo=ctx.distro_version, licenseDeclared=K8S_LICENSE,
        primaryPackagePurpose="SOURCE",
        sourceInfo=(f"tree commit {ctx.tree_commit}: upstream commit {ctx.upstream_commit} "
                    f"({ctx.tag}) with {len(ctx.patches)} patches, one commit each"),
    )
    doc.relate(tree, "DESCENDANT_OF", upstream)
    for number, patch in enumerate(ctx.patches, start=1):
        ident = doc.package(
            ["Patch", f"{number:04d}", Path(patch.file).name], Path(patch.file).name,
            packageFileName=patch.file, checksums=spdx_checksums({"sha256": patch.sha256}),
            summary=patch.subject, comment=_trailer_comment(patch.trailers),
            primaryPackagePurpose="SOURCE",
        )
        doc.relate(ident, "PATCH_APPLIED", tree)
    return tree


def _modules(doc: SpdxDocument, ctx: ReleaseContext, tree: str,
             modules: Sequence[GoModule]) -> dict[str, str]:
    """One package per vendored module, contained in the tree; module path -> id."""
    ids: dict[str, str] = {}
    for mod in modules:
        if mod.in_tree:
            comment = (f"part of the Kubernetes tree ({mod.replace_path}), built at tree commit "
                       f"{ctx.tree_commit}; {mod.packages} packages in vendor/")
            purl = None
        else:
            replaced = (f"; replaced by {mod.used_path} {mod.used_version}"
                        if (mod.used_path, mod.used_version) != (mod.path, mod.version) else "")
            comment = f"vendored: {mod.packages} packages in vendor/{replaced}"
            purl = golang_purl(mod.used_path, mod.used_version)
        ident = doc.package(
            ["GoModule", mod.path], mod.path, versionInfo=mod.used_version,
            primaryPackagePurpose="LIBRARY", comment=comment, externalRefs=purl_refs(purl),
            licenseDeclared=K8S_LICENSE if mod.in_tree else NOASSERTION,
        )
        doc.relate(tree, "CONTAINS", ident)
        ids[mod.path] = ident
    return ids


def _toolchain(doc: SpdxDocument, ctx: ReleaseContext) -> tuple[str, str]:
    builder = doc.package(
        ["BuilderImage"], ctx.builder_image, versionInfo=ctx.builder_image_id,
        checksums=spdx_checksums({"sha256": ctx.builder_image_id}),
        primaryPackagePurpose="CONTAINER",
        comment="the build container's image; its checksum is the image id (config digest)",
    )
    go = doc.package(
        ["Go", ctx.go_version], "go", versionInfo=ctx.go_version,
        primaryPackagePurpose="APPLICATION", licenseDeclared="BSD-3-Clause",
        externalRefs=purl_refs(golang_purl("stdlib", ctx.go_version)),
        comment="the Go toolchain of the builder image",
    )
    doc.relate(builder, "CONTAINS", go)
    return builder, go


def _binaries(doc: SpdxDocument, ctx: ReleaseContext, files: Files, linked: Linked,
              modules: Mapping[str, str]) -> dict[str, str]:
    """One package per binary; relative path -> id."""
    ids: dict[str, str] = {}
    for path in sorted(p for p in files if BINARY.match(p)):
        found = BINARY.match(path)
        assert found is not None
        links = linked.get(path)
        comment = (f"links {len(links)} of the {len(modules)} vendored Go modules (read from "
                   "its function names)" if links is not None else
                   "links some of the vendored Go modules (not read from the binary)")
        ident = doc.package(
            ["Binary", found["os"], found["arch"], found["component"]], found["component"],
            versionInfo=ctx.distro_version, packageFileName=path,
            checksums=spdx_checksums(files[path]), primaryPackagePurpose="APPLICATION",
            licenseDeclared=K8S_LICENSE, builtDate=iso_utc(ctx.source_date_epoch),
            comment=comment,
        )
        for mod in sorted(links or ()):
            if mod in modules:
                doc.relate(ident, "STATIC_LINK", modules[mod])
        ids[path] = ident
    return ids


def _images(doc: SpdxDocument, ctx: ReleaseContext, files: Files,
            images: Sequence[Mapping[str, Any]], binaries: Mapping[str, str],
            contents: ImageContents) -> list[str]:
    ids = []
    for image in sorted(images, key=lambda i: str(i.get("ref", ""))):
        ref = str(image["ref"])
        repository, tag = split_ref(ref)
        index = str(image["index_digest"])
        platforms: Mapping[str, str] = image.get("manifests") or {}
        purls = [oci_purl(repository, index, tag=tag)] + [
            oci_purl(repository, digest, arch=platform.split("/")[-1], tag=tag)
            for platform, digest in platforms.items()
        ]
        archive = str(image.get("archive") or "")
        ident = doc.package(
            ["Image", str(image.get("component") or repository)], ref,
            versionInfo=tag or index, primaryPackagePurpose="CONTAINER",
            packageFileName=archive if archive in files else None,
            checksums=spdx_checksums(files.get(archive, {})), externalRefs=purl_refs(*purls),
            comment=f"OCI image index {index}; platforms: "
                    + ", ".join(f"{p} {d}" for p, d in sorted(platforms.items())),
        )
        component = str(image.get("component") or "")
        for platform in sorted(platforms):
            binary = binaries.get(str(output_bin(platform) / component))
            if binary:
                doc.relate(ident, "CONTAINS", binary)
        doc.add_debian(ident, contents.get(archive, ()))
        ids.append(ident)
    return ids


def sbom_document(ctx: ReleaseContext, files: Files, images: Sequence[Mapping[str, Any]],
                  modules: Sequence[GoModule], linked: Linked,
                  contents: ImageContents | None = None) -> dict[str, Any]:
    """The SPDX document as JSON data (``linked``: binary path -> modules it links, or None
    when unknown; ``contents``: each image archive's Debian packages)."""
    doc = SpdxDocument()
    release = doc.package(
        ["Release", ctx.distro_version], "tkedistro-kubernetes", versionInfo=ctx.distro_version,
        licenseDeclared=K8S_LICENSE,
        comment=f"Kubernetes {ctx.release} as built by tkedistro for "
                + ", ".join(ctx.platforms),
    )
    doc.relate("SPDXRef-DOCUMENT", "DESCRIBES", release)
    tree = _source(doc, ctx)
    module_ids = _modules(doc, ctx, tree, modules)
    builder, go = _toolchain(doc, ctx)
    binaries = _binaries(doc, ctx, files, linked, module_ids)
    for ident in binaries.values():
        doc.relate(release, "CONTAINS", ident)
        doc.relate(ident, "GENERATED_FROM", tree)
        doc.relate(builder, "BUILD_TOOL_OF", ident)
        doc.relate(go, "BUILD_TOOL_OF", ident)
    archives = {str(i.get("archive") or "") for i in images}
    for path in sorted(set(files) - set(binaries) - archives):
        ident = doc.package(
            ["File", path], Path(path).name, versionInfo=ctx.distro_version,
            packageFileName=path, checksums=spdx_checksums(files[path]),
            primaryPackagePurpose="ARCHIVE" if ".tar" in path else "FILE",
        )
        doc.relate(release, "CONTAINS", ident)
        doc.relate(ident, "GENERATED_FROM", tree)
    for ident in _images(doc, ctx, files, images, binaries, contents or {}):
        doc.relate(release, "CONTAINS", ident)
    return doc.to_json(ctx)


def read_linked(out_dir: Path, ctx: ReleaseContext, files: Files,
                modules: Sequence[GoModule]) -> dict[str, frozenset[str] | None]:
    """Which vendored modules each binary under ``out_dir`` links (None when not known)."""
    main = main_module(ctx.tree)
    linked: dict[str, frozenset[str] | None] = {}
    for path in sorted(p for p in files if BINARY.match(p)):
        binary = out_dir / path
        linked[path] = (linked_modules(binary, modules, main)
                        if main and binary.is_file() else None)
    return linked


def image_contents(out_dir: Path, images: Sequence[Mapping[str, Any]]) -> dict[
        str, list[DebianContents]]:
    """Each image archive's Debian packages, per platform, read from its layers."""
    found: dict[str, list[DebianContents]] = {}
    for image in images:
        archive = str(image["archive"])
        with archive_blobs(out_dir / archive) as open_blob:
            found[archive] = platform_contents(open_blob, image.get("manifests") or {})
    return found


def write_sbom(out_dir: Path, ctx: ReleaseContext, files: Files,
               images: Sequence[Mapping[str, Any]],
               contents: ImageContents | None = None) -> Path:
    """Write ``out_dir/sbom.spdx.json`` for the release output ``files`` (relative path ->
    {"sha256", "sha512"}), ``images`` (``images/images.json`` entries) and their Debian
    ``contents`` (``image_contents``); returns its path."""
    modules = load_modules(ctx.tree)
    doc = sbom_document(ctx, files, images, modules, read_linked(out_dir, ctx, files, modules),
                        contents)
    target = out_dir / SBOM_NAME
    write_atomic(target, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    return target


def write_sboms(out_dir: Path, ctx: ReleaseContext, files: Files,
                images: Sequence[Mapping[str, Any]]) -> list[str]:
    """The release's SBOMs: SPDX (``write_sbom``, with every image's Debian packages read
    from its archive) and its CycloneDX rendering; returns their names."""
    from tkedistro.artifacts.cyclonedx import CYCLONEDX_NAME, write_cyclonedx

    spdx = write_sbom(out_dir, ctx, files, images, image_contents(out_dir, images))
    write_cyclonedx(out_dir, json.loads(spdx.read_bytes()))
    return [SBOM_NAME, CYCLONEDX_NAME]
