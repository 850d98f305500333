"""Each shipped image's own SPDX 2.3 SBOM, attached to the image in its archive as an OCI 1.1
referrer (``artifactType`` ``application/spdx+json``, ``subject`` the image index; see
``images/shipped.py``).

It DESCRIBES the image (``pkg:oci`` purls of its index and of each platform's manifest), which
CONTAINS the component's binary of each platform (sha256) and the Debian packages of each
platform (``pkg:deb`` purls, read from the image's dpkg status); each binary STATIC_LINKs the
vendored Go modules read from it (``pkg:golang`` purls), as in the release SBOM. Its time is
the release's ``source_date_epoch``, so the same image gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from tkedistro.artifacts.context import ReleaseContext
from tkedistro.artifacts.gomodules import GoModule, linked_modules, load_modules, main_module
from tkedistro.artifacts.purl import golang_purl, oci_purl, split_ref
from tkedistro.artifacts.sbom import K8S_LICENSE, SpdxDocument, iso_utc, purl_refs, spdx_checksums
from tkedistro.images.contents import DebianContents
from tkedistro.images.ocilayout import LayoutIndex
from tkedistro.images.ociplan import ComponentPlan, PlatformImage

IMAGE_SBOM_VERSION = 1  # part of every image's inputs digest (images/ociplan.py)


@dataclass
class ImageSbomWriter:
    """The ``ImageDescriber`` of a release: its context and vendored modules."""

    ctx: ReleaseContext
    modules: Sequence[GoModule] = field(default_factory=list)
    main: str | None = None
    version: int = IMAGE_SBOM_VERSION

    @classmethod
    def for_release(cls, ctx: ReleaseContext) -> ImageSbomWriter:
        return cls(ctx, load_modules(ctx.tree), main_module(ctx.tree))

    def describe(self, plan: ComponentPlan, index: LayoutIndex,
                 contents: Sequence[DebianContents]) -> bytes:
        doc = SpdxDocument()
        repository, tag = split_ref(plan.ref)
        purls = [oci_purl(repository, index.digest, tag=tag)] + [
            oci_purl(repository, digest, arch=platform.split("/")[-1], tag=tag)
            for platform, digest in index.manifests.items()]
        image = doc.package(
            ["Image", plan.component], plan.ref, versionInfo=tag or index.digest,
            primaryPackagePurpose="CONTAINER", externalRefs=purl_refs(*purls),
            comment=f"OCI image index {index.digest}; platforms: "
                    + ", ".join(f"{p} {d}" for p, d in sorted(index.manifests.items())))
        doc.relate("SPDXRef-DOCUMENT", "DESCRIBES", image)
        modules: dict[str, str] = {}
        for platform in plan.images:
            doc.relate(image, "CONTAINS", self._binary(doc, platform, modules))
        doc.add_debian(image, contents)
        data = doc.to_json(self.ctx, name=plan.ref,
                           namespace=f"{self.ctx.release}/images/{plan.component}")
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    def _binary(self, doc: SpdxDocument, image: PlatformImage, modules: dict[str, str]) -> str:
        ident = doc.package(
            ["Binary", image.os, image.arch, image.component], image.component,
            versionInfo=self.ctx.distro_version, packageFileName=str(image.target),
            checksums=spdx_checksums({"sha256": image.binary_sha256}),
            primaryPackagePurpose="APPLICATION", licenseDeclared=K8S_LICENSE,
            builtDate=iso_utc(self.ctx.source_date_epoch))
        linked = (linked_modules(image.binary, self.modules, self.main)
                  if self.main and self.modules else None)
        by_path = {m.path: m for m in self.modules}
        for path in sorted(linked or ()):
            mod = by_path.get(path)
            if mod is None or mod.in_tree:
                continue
            if path not in modules:
                modules[path] = doc.package(
                    ["GoModule", path], path, versionInfo=mod.used_version,
                    primaryPackagePurpose="LIBRARY",
                    externalRefs=purl_refs(golang_purl(mod.used_path, mod.used_version)))
            doc.relate(ident, "STATIC_LINK", modules[path])
        return ident
