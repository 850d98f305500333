"""``ReleaseFinisher``: what the release operation (``release/operation.py``, every build
whoever starts it) makes after the binaries, before publishing.

In the staged output, in this order: the component images (``images/<component>.oci.tar``,
one multi-arch index each, when the manifest lists ``images:`` and they are not turned off),
the air-gapped kubeadm bundle (``bundle/``, ``artifacts/kubeadmbundle.py``), the release
tarballs (``release/``, the server tarballs with upstream's ``<component>.tar`` image
archives), the checksums of everything (``SHA256SUMS``, ``SHA512SUMS``), the SPDX SBOM
(``sbom.spdx.json``, each image's Debian packages included) and its CycloneDX rendering
(``sbom.cdx.json``) and the in-toto provenance statement (``provenance.intoto.json``) naming
every output's digest. Each step reuses what the published
output already holds for the same inputs, so an unchanged release rewrites nothing.

With a signing key, last: a detached signature ``F.sig`` of every file in SHA256SUMS and of
SHA256SUMS, SHA512SUMS and the provenance statement (``signing/blobs.py``), and the statement
signed again as a DSSE envelope, ``provenance.intoto.jsonl`` (``signing/dsse.py``). All of it
is in the staged output, published (renamed into place) only when every signature is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tkedistro.artifacts.checksums import hash_files, write_checksums
from tkedistro.artifacts.context import Finished, FinishRequest, ReleaseContext, release_context
from tkedistro.artifacts.kubeadmbundle import kubeadm_bundle
from tkedistro.artifacts.provenance import PROVENANCE_NAME, release_subjects, write_provenance
from tkedistro.artifacts.sbom import SBOM_NAME, write_sboms
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
from tkedistro.signing.keys import SigningKey

ARTIFACTS_VERSION = 3  # bump when what the finisher writes changes meaning


@dataclass(frozen=True)
class ReleaseFinisher:
    """Makes the release artifacts with the run's ``engines``; ``images=False`` (``build
    --no-images``) leaves the images out (``tkedistro images`` adds them later without
    rebuilding the binaries)."""

    engines: Engines
    images: bool = True
    signing: SigningKey | None = None  # None: unsigned

    def inputs(self, manifest: Manifest) -> Mapping[str, object]:
        """What the artifacts are made from besides the binaries (decides a refinish): a
        new signing key (or none after one) remakes them."""
        signed = {"signed_by": self.signing.fingerprint} if self.signing else {}
        return {"artifacts_version": ARTIFACTS_VERSION,
                "images": list(manifest.images) if self.images else [],
                "upstream": manifest.upstream.url, **signed}

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
        with kubeadm_bundle(request, ctx, self.engines, images=bool(shipped)) as bundle:
            with console.step(TARBALLS_STEP, ", ".join(ctx.platforms)):
                tarballs = write_tarballs(request.out, ctx, bundle.server_images)
        files = [*request.binaries, *tarballs, *(str(image["archive"]) for image in shipped),
                 *bundle.files]
        with console.step("sbom", f"{len(files)} files, {len(ctx.patches)} patches"):
            digests = hash_files(request.out, files)
            sboms = write_sboms(request.out, ctx, per_file(digests), shipped)
            digests = write_checksums(request.out, [*files, *sboms], known=digests)
        with console.step("provenance", f"{len(digests['sha256'])} files, "
                                        f"{len(shipped)} images"):
            subjects = release_subjects(per_file(digests), shipped)
            write_provenance(request.out, ctx, subjects)
        info = {"images": shipped, "tarballs": tarballs, "bundle": bundle.files,
                "sbom": SBOM_NAME, "sboms": sboms, "provenance": PROVENANCE_NAME,
                "checksums": [SUMS_NAME, SHA512_SUMS_NAME]}
        if self.signing is not None:
            info["signatures"] = sign_output(request.out, list(digests["sha256"]),
                                             self.signing)
        return Finished(sums=dict(digests["sha256"]), info=info)


def sign_output(out: Path, summed: Sequence[str], key: SigningKey) -> dict[str, Any]:
    """Sign the finished output ``out``: ``F.sig`` for each file of ``summed`` (SHA256SUMS'
    names), the sums files and the provenance; the provenance as a DSSE envelope too."""
    from tkedistro.signing.blobs import sign_files
    from tkedistro.signing.dsse import keyid_of, write_envelope

    names = [*summed, SUMS_NAME, SHA512_SUMS_NAME, PROVENANCE_NAME]
    with console.step("sign", f"{len(names)} files, key {key.fingerprint[:19]}"):
        signatures = sign_files(out, names, key)
        envelope = write_envelope(out, PROVENANCE_NAME, key)
    return {"key": key.fingerprint, "keyid": keyid_of(key), "files": len(signatures),
            "envelope": envelope}


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
    base of each platform in the Docker engine (made once, reused while its inputs match),
    buildah's own storage in the cache (never the host's), one run at a time."""
    from tkedistro.artifacts.imagesbom import ImageSbomWriter
    from tkedistro.images.base import LOCK_WAIT, ensure_component_base, work_dir
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
                                      None, request.previous,
                                      describer=ImageSbomWriter.for_release(ctx))
    return [image.to_json() for image in shipped]


def oci_work(ws: Workspace) -> Path:
    return ws.cache / "oci"


