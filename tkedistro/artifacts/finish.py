"""``ReleaseFinisher``: what the release operation (``release/operation.py``, every build
whoever starts it) makes after the binaries, before publishing.

In the staged output, in this order: the component images (``images/<component>.oci.tar``,
one multi-arch index each, when the manifest lists ``images:`` and they are not turned off),
the release tarballs (``release/``), the checksums of everything (``SHA256SUMS``,
``SHA512SUMS``), the SPDX SBOM (``sbom.spdx.json``) and the in-toto provenance statement
(``provenance.intoto.json``) naming every output's digest. Each step reuses what the published
output already holds for the same inputs, so an unchanged release rewrites nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tkedistro.artifacts.checksums import hash_files, write_checksums
from tkedistro.artifacts.context import Finished, FinishRequest, ReleaseContext, release_context
from tkedistro.artifacts.provenance import PROVENANCE_NAME, release_subjects, write_provenance
from tkedistro.artifacts.sbom import SBOM_NAME, write_sbom
from tkedistro.artifacts.tarballs import STEP as TARBALLS_STEP
from tkedistro.artifacts.tarballs import write_tarballs
from tkedistro.build.output import SHA512_SUMS_NAME, SUMS_NAME
from tkedistro.build.plan import BuildPlan
from tkedistro.core import console
from tkedistro.core.files import json_digest
from tkedistro.core.locks import exclusive_lock
from tkedistro.core.workspace import Workspace
from tkedistro.engine.engines import Engines
from tkedistro.model.manifest import Manifest

ARTIFACTS_VERSION = 1  # bump when what the finisher writes changes meaning


@dataclass(frozen=True)
class ReleaseFinisher:
    """Makes the release artifacts with the run's ``engines``; ``images=False`` (``build
    --no-images``) leaves the images out (``tkedistro images`` adds them later without
    rebuilding the binaries)."""

    engines: Engines
    images: bool = True

    def inputs(self, manifest: Manifest) -> Mapping[str, object]:
        """What the artifacts are made from besides the binaries (decides a refinish)."""
        return {"artifacts_version": ARTIFACTS_VERSION,
                "images": list(manifest.images) if self.images else [],
                "upstream": manifest.upstream.url}

    def digest(self, plan: BuildPlan, manifest: Manifest) -> str:
        """The artifacts' inputs digest recorded in the output's state; with server images,
        their Debian bases' recipes too (``images/base.py``: a new suite remakes the images)."""
        from tkedistro.images.base import bases_identity

        servers = self.images and any(c != "pause" for c in manifest.images)
        bases = {"bases": bases_identity(plan.platforms)} if servers else {}
        return json_digest({"binaries": plan.fingerprint, **self.inputs(manifest), **bases})

    def finish(self, request: FinishRequest) -> Finished:
        """Make the artifacts in ``request.out`` and write its checksum files."""
        ctx = release_context(request)
        shipped = (make_images(request, ctx, self.engines)
                   if self.images and ctx.image_components else [])
        with console.step(TARBALLS_STEP, ", ".join(ctx.platforms)):
            tarballs = write_tarballs(request.out, ctx)
        files = [*request.binaries, *tarballs, *(str(image["archive"]) for image in shipped)]
        with console.step("sbom", f"{len(files)} files, {len(ctx.patches)} patches"):
            digests = hash_files(request.out, files)
            write_sbom(request.out, ctx, per_file(digests), shipped)
            digests = write_checksums(request.out, [*files, SBOM_NAME], known=digests)
        with console.step("provenance", f"{len(digests['sha256'])} files, "
                                        f"{len(shipped)} images"):
            subjects = release_subjects(per_file(digests), shipped)
            write_provenance(request.out, ctx, subjects)
        info = {"images": shipped, "tarballs": tarballs, "sbom": SBOM_NAME,
                "provenance": PROVENANCE_NAME, "checksums": [SUMS_NAME, SHA512_SUMS_NAME]}
        return Finished(sums=dict(digests["sha256"]), info=info)


def per_file(digests: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """``{"sha256": {path: hex}, "sha512": {...}}`` -> ``{path: {"sha256": .., "sha512": ..}}``."""
    files: dict[str, dict[str, str]] = {}
    for algorithm, sums in digests.items():
        for rel, value in sums.items():
            files.setdefault(rel, {})[algorithm] = value
    return files


def make_images(request: FinishRequest, ctx: ReleaseContext,
                engines: Engines) -> list[dict[str, Any]]:
    """The component images of ``ctx`` as OCI archives in ``request.out/images``: the Debian
    base of each platform in the Docker engine (made once, shared with the cluster's images),
    buildah's own storage in the cache (never the host's), one run at a time."""
    from tkedistro.images.base import ensure_component_base
    from tkedistro.images.components import LOCK_WAIT, work_dir
    from tkedistro.images.shipped import make_release_images

    if any(c != "pause" for c in ctx.image_components):
        bases = work_dir(request.ws)
        with exclusive_lock(bases / ".lock", "another tkedistro run is making component "
                            f"bases (lock {bases / '.lock'})", wait=LOCK_WAIT,
                            waiting="another run is making a component base; waiting"):
            for platform in ctx.platforms:
                ensure_component_base(engines.images, bases, platform)
    oci = oci_work(request.ws)
    with exclusive_lock(oci / ".lock", f"another tkedistro run is making images (lock "
                        f"{oci / '.lock'})", wait=LOCK_WAIT,
                        waiting="another run is making release images; waiting for it"):
        shipped = make_release_images(request.out, ctx, oci / "work",
                                      engines.oci(oci / "storage"),
                                      None, request.previous)
    return [image.to_json() for image in shipped]


def oci_work(ws: Workspace) -> Path:
    return ws.cache / "oci"


