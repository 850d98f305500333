"""What each shipped OCI image is made of, decided without a builder: per component and
platform the binary, where it goes, the base, the config; per component the inputs digest
that says whether a published archive can be reused.

The server components follow upstream's layout (binary at ``/usr/local/bin/<component>``, no
entrypoint) on the Debian component base of their platform; pause follows upstream's
``build/pause/Dockerfile`` (``FROM scratch``, ``/pause``, ``USER 65535:65535``, entrypoint
``/pause``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Protocol

from tkedistro.core import files
from tkedistro.core.errors import ImageError
from tkedistro.core.files import json_digest, sha256_file
from tkedistro.debian.release import IDENTITY_LABELS
from tkedistro.debian.rootfs import INPUTS_LABEL, SOURCE_LABEL
from tkedistro.engine.protocols import ImageConfig
from tkedistro.images.base import base_ref
from tkedistro.images.recipes import (
    BASE_DIGEST_LABEL,
    BASE_LABEL,
    BASE_NAME_LABEL,
    BIN_DIR,
    BINARY_LABEL,
    FIXED_MTIME,
    REVISION_LABEL,
    TITLE_LABEL,
    VERSION_LABEL,
    binary_path,
    component_ref,
)

RECIPE_VERSION = 2  # bump when the image layout, config or archive packing changes meaning
SCRATCH = "scratch"
PAUSE = "pause"
PAUSE_USER = "65535:65535"
CREATED_LABEL = "org.opencontainers.image.created"
DAEMON = "docker-daemon:"  # the transport of a base in the local Docker engine


class ReleaseInputs(Protocol):
    """What the images are made from: the fields of ``artifacts.context.ReleaseContext``
    they read (a protocol, so ``images/`` does not import the layer above it)."""

    @property
    def distro_version(self) -> str: ...
    @property
    def upstream_url(self) -> str: ...
    @property
    def upstream_commit(self) -> str: ...
    @property
    def source_date_epoch(self) -> int: ...
    @property
    def platforms(self) -> tuple[str, ...]: ...
    @property
    def image_components(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class BaseImage:
    """What a server image sits on: where the builder read it, its image id there, and the
    Debian archive labels it carries (``debian/release.py``: suite, mirror, (In)Release)."""

    source: str  # a ref the builder can read (``docker-daemon:...``) or ``scratch``
    image_id: str  # ``sha256:<config digest>`` (``scratch`` for none)
    debian: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        """The base's ref, without the transport (``tkedistro/component-base:trixie-amd64``)."""
        return self.source.removeprefix(DAEMON)

    def identity(self) -> dict[str, object]:
        """What ``images.json`` and the provenance record of it."""
        return {"name": self.name, "digest": self.image_id, "labels": dict(self.debian)}


SCRATCH_BASE = BaseImage(SCRATCH, SCRATCH)


def base_image(source: str, image_id: str, labels: Mapping[str, str]) -> BaseImage:
    """``source`` as the builder pulled it (``image_id``), with its Debian archive labels."""
    return BaseImage(source, image_id,
                     tuple((key, labels[key]) for key in IDENTITY_LABELS if key in labels))


@dataclass(frozen=True)
class PlatformImage:
    """One component for one platform: the binary, where it goes and what it sits on."""

    component: str
    platform: str
    binary: Path
    binary_sha256: str
    base: BaseImage

    @property
    def base_id(self) -> str:
        return self.base.image_id

    @property
    def os(self) -> str:
        return self.platform.partition("/")[0]

    @property
    def arch(self) -> str:
        return self.platform.partition("/")[2]

    @property
    def target(self) -> PurePosixPath:
        return PurePosixPath("/pause") if self.component == PAUSE else BIN_DIR / self.component

    @property
    def tag(self) -> str:
        """The tag of this platform's image in its (scratch) OCI layout."""
        return f"{self.os}-{self.arch}"

    def to_json(self) -> dict[str, object]:
        return {"platform": self.platform, "binary": self.binary_sha256,
                "base": self.base.source, "base_id": self.base.image_id,
                "base_labels": dict(self.base.debian), "target": str(self.target)}


@dataclass(frozen=True)
class ComponentPlan:
    """One shipped component: an image per platform, gathered in one index."""

    component: str
    ref: str  # <repository>/<component>:<distro version>
    version: str
    revision: str
    source: str
    epoch: int
    images: tuple[PlatformImage, ...]

    def labels(self) -> dict[str, str]:
        created = datetime.fromtimestamp(self.epoch, UTC)
        return {TITLE_LABEL: self.component, VERSION_LABEL: self.version,
                REVISION_LABEL: self.revision, SOURCE_LABEL: self.source,
                CREATED_LABEL: created.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def inputs_digest(self, builder_version: str, sbom_version: int = 0) -> str:
        """What the archive is made from (``sbom_version``: of the attached SBOM, 0 for
        none)."""
        doc = {"recipe": RECIPE_VERSION, "ref": self.ref, "epoch": self.epoch,
               "labels": self.labels(), "builder": builder_version, "mtime": FIXED_MTIME,
               "images": [image.to_json() for image in self.images]}
        return json_digest({**doc, "sbom": sbom_version} if sbom_version else doc)

    def bases(self) -> dict[str, dict[str, object]]:
        """Platform -> the identity of its base (none for an image on scratch)."""
        return {image.platform: image.base.identity() for image in self.images
                if image.base_id != SCRATCH}

    def config(self, image: PlatformImage, inputs: str) -> ImageConfig:
        """The image's config; its labels carry the component's inputs digest (replacing a
        base's own) and, where there is a base, its name and id (as the manifest's
        annotations do)."""
        labels = {**self.labels(), BINARY_LABEL: "sha256:" + image.binary_sha256,
                  INPUTS_LABEL: inputs}
        if self.component == PAUSE:
            return ImageConfig(image.os, image.arch, labels, ("/pause",), PAUSE_USER)
        if image.base_id == SCRATCH:
            return ImageConfig(image.os, image.arch, labels)
        names = {BASE_NAME_LABEL: image.base.name, BASE_DIGEST_LABEL: image.base_id}
        return ImageConfig(image.os, image.arch, {**labels, **names, BASE_LABEL: image.base_id},
                           annotations=names)


def base_sources(ctx: ReleaseInputs, bases: Mapping[str, str] | None) -> dict[str, str]:
    """Platform -> base ref for the server components: ``bases`` when given (every platform
    must be in it), else the Debian component bases in the local Docker engine."""
    if bases is None:
        return {p: "docker-daemon:" + base_ref(p) for p in ctx.platforms}
    missing = [p for p in ctx.platforms if p not in bases]
    if missing:
        raise ImageError(f"no component base given for {', '.join(missing)}",
                         hint="make the Debian component base of every platform first")
    return {p: bases[p] for p in ctx.platforms}


def missing_binaries(out_dir: Path, ctx: ReleaseInputs) -> list[Path]:
    return [binary_path(out_dir, c, p) for c in ctx.image_components for p in ctx.platforms
            if not binary_path(out_dir, c, p).is_file()]


def plan_component(out_dir: Path, ctx: ReleaseInputs, component: str,
                   bases: Mapping[str, BaseImage], repository: str) -> ComponentPlan:
    """The plan of ``component``; ``bases``: platform -> the base its server images sit on."""
    images = []
    for platform in ctx.platforms:
        binary = binary_path(out_dir, component, platform)
        base = SCRATCH_BASE if component == PAUSE else bases[platform]
        images.append(PlatformImage(component, platform, binary, sha256_file(binary), base))
    return ComponentPlan(component, component_ref(component, ctx.distro_version, repository),
                         ctx.distro_version, ctx.upstream_commit, ctx.upstream_url,
                         ctx.source_date_epoch, tuple(images))


def write_rootfs(folder: Path, image: PlatformImage) -> Path:
    """A fresh folder holding just the binary at its target path, every entry with a fixed
    mode and mtime (a copy: fixing a hard link's mtime would touch the build output)."""
    files.remove(folder)
    relative = Path(image.target.relative_to("/"))
    files.ensure_dir((folder / relative).parent)
    files.copy_file(image.binary, folder / relative, mode=0o755)
    entries = [(relative, 0o755)] + [(p, 0o755) for p in relative.parents if p != Path(".")]
    for name, mode in entries + [(Path("."), 0o755)]:
        files.set_mode(folder / name, mode)
        os.utime(folder / name, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
    return folder
