"""The release's component images as reproducible multi-arch OCI archives.

``make_release_images`` makes, for each component of the manifest's ``images:``, one image
per platform through an ``OciBuilder`` (``engine/buildah.py``), gathers them in one index
pushed with all of its images into an OCI layout, and packs that layout into
``<out>/images/<component>.oci.tar`` (``images/ocilayout.py``: same layout, same bytes). Every
time in an image is the release's ``source_date_epoch``, so two runs from the same inputs give
the same digests and the same archive bytes. ``<out>/images/images.json`` lists them (the
checksums, the SBOM and the provenance read it).

Each entry also names, per platform, the base its image sits on (``bases``: its ref, image id
and Debian archive labels; none for pause), which the provenance lists as a material.

A component whose inputs digest (``images/ociplan.py``: binaries, base ids, labels, epoch,
recipe and builder version) equals the one in the previously published output, and whose
archive there still has its recorded sha256, is linked (or copied) from there, not rebuilt.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Protocol

from tkedistro.core import console, files
from tkedistro.core.errors import ImageError
from tkedistro.core.files import sha256_file, write_atomic
from tkedistro.engine.protocols import OciBuilder
from tkedistro.images.contents import DebianContents, layout_blobs, platform_contents
from tkedistro.images.ocilayout import LayoutIndex, add_referrer, pack_layout, read_index
from tkedistro.images.ociplan import (
    CREATED_LABEL,
    PAUSE,
    BaseImage,
    ComponentPlan,
    PlatformImage,
    ReleaseInputs,
    base_image,
    base_sources,
    missing_binaries,
    plan_component,
    write_rootfs,
)
from tkedistro.images.recipes import DEFAULT_REPOSITORY

STEP = "release_images"
IMAGES_DIR = "images"
IMAGES_JSON = "images.json"
SCHEMA = 1
SBOM_TYPE = "application/spdx+json"


class ImageDescriber(Protocol):
    """Writes the SPDX document attached to each image (``artifacts/imagesbom.py``)."""

    @property
    def version(self) -> int:
        """Part of every image's inputs digest: a new version makes the images again."""
        ...

    def describe(self, plan: ComponentPlan, index: LayoutIndex,
                 contents: Sequence[DebianContents]) -> bytes:
        """The SPDX JSON of the image ``plan`` made (``index``), whose platforms hold
        ``contents``."""
        ...


@dataclass(frozen=True)
class ShippedImage:
    """One component's archive: its index and per-platform manifest digests, where it is
    (``archive`` relative to the output folder), its size and sha256, its inputs, and the
    base of each platform's image (``ociplan.BaseImage.identity``; none on scratch)."""

    component: str
    ref: str
    index_digest: str
    manifests: Mapping[str, str]  # platform -> manifest digest
    archive: str
    size: int
    sha256: str
    inputs: str
    reused: bool = False
    bases: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"component": self.component, "ref": self.ref,
                "index_digest": self.index_digest, "manifests": dict(sorted(
                    self.manifests.items())), "archive": self.archive, "size": self.size,
                "sha256": self.sha256, "inputs": self.inputs, "reused": self.reused,
                "bases": {p: dict(b) for p, b in sorted(self.bases.items())}}

    @classmethod
    def from_json(cls, data: object) -> ShippedImage | None:
        """An entry of a published ``images.json``; None when it is not one."""
        if not isinstance(data, dict):
            return None
        try:
            manifests, bases = data["manifests"], data.get("bases", {})
            if not isinstance(manifests, dict) or not isinstance(bases, dict) or not all(
                    isinstance(base, dict) for base in bases.values()):
                return None
            return cls(str(data["component"]), str(data["ref"]), str(data["index_digest"]),
                       {str(k): str(v) for k, v in manifests.items()}, str(data["archive"]),
                       int(data["size"]), str(data["sha256"]), str(data["inputs"]),
                       bases={str(k): dict(v) for k, v in bases.items()})
        except (KeyError, TypeError, ValueError):
            return None


def archive_name(component: str) -> str:
    return f"{IMAGES_DIR}/{component}.oci.tar"


def make_release_images(out_dir: Path, ctx: ReleaseInputs, work: Path, builder: OciBuilder,
                        bases: Mapping[str, str] | None = None, previous: Path | None = None,
                        repository: str = DEFAULT_REPOSITORY,
                        describer: ImageDescriber | None = None) -> list[ShippedImage]:
    """Make (or reuse) the archive of every component of ``ctx.image_components``.

    ``out_dir`` holds ``bin/<os>/<arch>/<component>`` and gets ``images/``; ``work`` is
    scratch space (emptied per component); ``bases`` maps each platform to the base the
    server components sit on (a ref the builder reads; default: the Debian component bases
    in the local Docker engine); ``previous`` is the published output whose archives may be
    reused; ``describer`` (when given) writes each image's SBOM, attached to its index as an
    OCI referrer in the archive. ``ctx`` is the build's ``ReleaseContext``. Returns the
    images sorted by component, as written to ``images/images.json``."""
    missing = missing_binaries(out_dir, ctx)
    if missing:
        raise ImageError("the release images need binaries that are not built: "
                         + ", ".join(str(p) for p in missing),
                         hint="build them first (pause comes from the tree's build/pause)")
    version = builder.version()
    servers = [c for c in ctx.image_components if c != PAUSE]
    sources = base_sources(ctx, bases) if servers else {}
    pulled = _pull_bases(builder, sources)
    published = _published(previous)
    shipped = []
    for component in sorted(ctx.image_components):
        plan = plan_component(out_dir, ctx, component, pulled, repository)
        inputs = plan.inputs_digest(version, describer.version if describer else 0)
        old = published.get(component)
        if previous is not None and old is not None and _intact(old, previous, plan.ref, inputs):
            shipped.append(_reuse(old, previous, out_dir))
            console.info(f"{plan.ref}: reused (inputs unchanged)")
        else:
            with console.step(STEP, f"{plan.ref} ({', '.join(ctx.platforms)})"):
                shipped.append(_make(plan, inputs, builder, work / component, out_dir,
                                     describer))
    write_images_json(out_dir, shipped)
    return shipped


def _pull_bases(builder: OciBuilder, sources: Mapping[str, str]) -> dict[str, BaseImage]:
    """Platform -> its base, each distinct source pulled once and its labels read."""
    found = {}
    for source in sorted(set(sources.values())):
        image_id = builder.pull(source)
        found[source] = base_image(source, image_id, builder.image_labels(image_id))
    return {platform: found[source] for platform, source in sources.items()}


def write_images_json(out_dir: Path, shipped: list[ShippedImage]) -> Path:
    path = out_dir / IMAGES_DIR / IMAGES_JSON
    # without ``reused``: the file says what the images are, the same however they were made
    entries = [{k: v for k, v in image.to_json().items() if k != "reused"}
               for image in sorted(shipped, key=lambda i: i.component)]
    write_atomic(path, (json.dumps({"schema": SCHEMA, "images": entries}, indent=2,
                                   sort_keys=True) + "\n").encode())
    return path


def read_images_json(out_dir: Path) -> list[ShippedImage]:
    """The images of a published output ([] when it has none or the file is not readable)."""
    try:
        data = json.loads(files.read_bytes(out_dir / IMAGES_DIR / IMAGES_JSON))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return []
    entries = data.get("images")
    found = [ShippedImage.from_json(e) for e in entries] if isinstance(entries, list) else []
    return [image for image in found if image is not None]


def _published(previous: Path | None) -> dict[str, ShippedImage]:
    return {} if previous is None else {i.component: i for i in read_images_json(previous)}


def _intact(old: ShippedImage, previous: Path, ref: str, inputs: str) -> bool:
    if old.inputs != inputs or old.ref != ref or old.archive != archive_name(old.component):
        return False
    path = previous / old.archive
    return (path.is_file() and path.stat().st_size == old.size
            and "sha256:" + sha256_file(path) == old.sha256)


def _reuse(old: ShippedImage, previous: Path, out_dir: Path) -> ShippedImage:
    source, target = previous / old.archive, out_dir / old.archive
    if files.is_symlink(target) or not (target.exists() and os.path.samefile(source, target)):
        files.link_or_copy(source, target)
    return replace(old, reused=True)


def _make(plan: ComponentPlan, inputs: str, builder: OciBuilder, work: Path,
          out_dir: Path, describer: ImageDescriber | None) -> ShippedImage:
    files.remove(work)
    started = time.monotonic()
    for image in plan.images:
        _commit(plan, image, inputs, builder, work)
        _progress(started, f"{plan.component} {image.platform}: image committed")
    layout = work / "index"
    name = f"tkedistro-{plan.component}-{uuid.uuid4().hex[:12]}"
    builder.manifest_create(name)
    try:
        for image in plan.images:
            builder.manifest_add(name, work / image.tag, image.tag)
        builder.manifest_push_all(name, layout, plan.version)
    finally:
        builder.manifest_remove(name)
    index = read_index(layout)
    wanted = sorted(image.platform for image in plan.images)
    if index.ref_name != plan.version or sorted(index.manifests) != wanted:
        raise ImageError(f"{plan.ref}: the pushed index names {index.ref_name!r} for "
                         f"{sorted(index.manifests)}, expected {plan.version!r} for {wanted}")
    if describer is not None:
        contents = platform_contents(layout_blobs(layout), index.manifests)
        add_referrer(layout, SBOM_TYPE, describer.describe(plan, index, contents),
                     {CREATED_LABEL: plan.labels()[CREATED_LABEL]})
    archive = out_dir / archive_name(plan.component)
    pack_layout(layout, archive, plan.epoch)
    with suppress(OSError):
        files.remove(work)
    _progress(started, f"{plan.component}: {archive_name(plan.component)} "
                       f"{console.size(archive.stat().st_size)}")
    return ShippedImage(plan.component, plan.ref, index.digest, index.manifests,
                        archive_name(plan.component), archive.stat().st_size,
                        "sha256:" + sha256_file(archive), inputs, bases=plan.bases())


def _progress(started: float, text: str) -> None:
    console.info(f"[{STEP}] {console.duration(time.monotonic() - started)} {text}")


def _commit(plan: ComponentPlan, image: PlatformImage, inputs: str, builder: OciBuilder,
            work: Path) -> None:
    rootfs = write_rootfs(work / "rootfs" / image.tag, image)
    container = builder.from_image(image.base_id)
    try:
        builder.copy(container, rootfs, PurePosixPath("/"))
        builder.config(container, plan.config(image, inputs))
        builder.commit(container, work / image.tag, image.tag, plan.epoch)
    finally:
        builder.remove(container)
