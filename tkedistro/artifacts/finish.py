"""``ReleaseFinisher``: what ``tkedistro build`` makes after the binaries, before publishing.

In the staged output, in this order: the component images (``images/<component>.oci.tar``,
one multi-arch index each, when the manifest lists ``images:`` and they are not turned off),
the release tarballs (``release/``), the checksums of everything (``SHA256SUMS``,
``SHA512SUMS``), the SPDX SBOM (``sbom.spdx.json``) and the in-toto provenance statement
(``provenance.intoto.json``) naming every output's digest. Each step reuses what the published
output already holds for the same inputs, so an unchanged release rewrites nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tkedistro.artifacts.context import ReleaseContext, release_context
from tkedistro.build.finishing import Finished, FinishRequest
from tkedistro.build.plan import BuildPlan
from tkedistro.core import console
from tkedistro.core.workspace import Workspace
from tkedistro.model.manifest import Manifest

ARTIFACTS_VERSION = 1  # bump when what the finisher writes changes meaning
SBOM_NAME = "sbom.spdx.json"
PROVENANCE_NAME = "provenance.intoto.json"


@dataclass(frozen=True)
class ReleaseFinisher:
    """Makes the release artifacts; ``images=False`` (``build --no-images``) leaves the
    images out (``tkedistro images`` adds them later without rebuilding the binaries)."""

    images: bool = True

    def inputs(self, plan: BuildPlan, manifest: Manifest) -> Mapping[str, object]:
        return {"artifacts_version": ARTIFACTS_VERSION,
                "images": list(manifest.images) if self.images else [],
                "upstream": manifest.upstream.url}

    def finish(self, request: FinishRequest) -> Finished:
        ctx = release_context(request)
        shipped = make_images(request, ctx) if self.images and ctx.image_components else []
        with console.step("release_tarballs", f"{len(ctx.platforms)} platforms"):
            tarballs = write_release_tarballs(request.out, ctx)
        files = [*request.binaries, *tarballs, *(image["archive"] for image in shipped)]
        with console.step("sbom", f"{len(files)} files, {len(ctx.patches)} patches"):
            sums = write_sums_and_sbom(request.out, ctx, files, shipped)
            subjects = {rel: sums[rel] for rel in sums}
            subjects.update({image["ref"]: image["index_digest"].removeprefix("sha256:")
                             for image in shipped})
            write_provenance_statement(request.out, ctx, subjects)
        info = {"images": shipped, "tarballs": tarballs, "sbom": SBOM_NAME,
                "provenance": PROVENANCE_NAME, "checksums": ["SHA256SUMS", "SHA512SUMS"]}
        return Finished(sums=sums, info=info)


def make_images(request: FinishRequest, ctx: ReleaseContext) -> list[dict[str, Any]]:
    """The component images of ``ctx`` as OCI archives in ``request.out/images``."""
    from tkedistro.build.buildah import Buildah
    from tkedistro.build.pipeline import default_image_engine
    from tkedistro.images.base import ensure_component_base
    from tkedistro.images.shipped import make_release_images

    work = oci_work(request.ws)
    engine = default_image_engine()
    bases = {}
    for platform in ctx.platforms:
        base = ensure_component_base(engine, work, platform)
        bases[platform] = f"docker-daemon:{base.ref}"
    with console.step("images", f"{', '.join(ctx.image_components)} for "
                                f"{' '.join(ctx.platforms)}"):
        shipped = make_release_images(request.out, ctx, work, Buildah(work / "storage"),
                                      bases, request.previous)
    return [image.to_json() for image in shipped]


def oci_work(ws: Workspace) -> Path:
    return ws.cache / "oci"


def write_release_tarballs(out: Path, ctx: ReleaseContext) -> list[str]:
    from tkedistro.artifacts.tarballs import write_tarballs

    return write_tarballs(out, ctx)


def write_sums_and_sbom(out: Path, ctx: ReleaseContext, files: Sequence[str],
                        images: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """SHA256SUMS and SHA512SUMS of ``files`` and the SBOM (which names their digests);
    relative path -> sha256 of everything checksummed."""
    from tkedistro.artifacts.checksums import write_checksums
    from tkedistro.artifacts.sbom import write_sbom

    digests = write_checksums(out, files)
    write_sbom(out, ctx, digests, images)
    digests = write_checksums(out, [*files, SBOM_NAME])
    return {rel: value["sha256"] for rel, value in digests.items()}


def write_provenance_statement(out: Path, ctx: ReleaseContext,
                               subjects: Mapping[str, str]) -> None:
    from tkedistro.artifacts.provenance import write_provenance

    write_provenance(out, ctx, subjects)


def read_images(out: Path) -> list[dict[str, Any]]:
    """The images a published output holds (``images/images.json``); [] when none."""
    try:
        data = json.loads((out / "images" / "images.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [dict(item) for item in data] if isinstance(data, list) else []
