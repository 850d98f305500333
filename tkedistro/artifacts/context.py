"""Everything the release artifacts are made from, resolved once by the build and frozen.

The build pipeline fills a ``ReleaseContext`` from the manifest, the prepared source and the
build plan; tarballs, images, checksums, the SBOM and the provenance statement read only this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tkedistro import __version__
from tkedistro.build.finishing import FinishRequest
from tkedistro.core.workspace import Workspace, manifest_name
from tkedistro.model.manifest import Manifest
from tkedistro.model.patches import parse_patch


@dataclass(frozen=True)
class PatchInfo:
    """One patch of the series as shipped: its file (relative to the distro repo), sha256 and
    trailers (``Upstream-Ref``, ``Upstream-Status``, ``Patch-Kind`` ...)."""

    file: str
    sha256: str
    subject: str | None = None
    trailers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReleaseContext:
    release: str  # "1.20"
    distro_version: str  # "v1.20.2-tke.1"
    upstream_url: str  # the manifest's upstream.url
    tag: str  # "v1.20.2"
    upstream_commit: str  # the pinned upstream commit
    tree_commit: str  # the patched tree's HEAD (one commit per patch on top)
    tree: Path  # the patched source tree, read only (vendor/modules.txt, LICENSES, build/pause)
    source_date_epoch: int  # the tree commit's time: every timestamp in an artifact
    platforms: tuple[str, ...]  # ("linux/amd64", "linux/arm64")
    components: tuple[str, ...]  # the components built (bin/<os>/<arch>/<component>)
    image_components: tuple[str, ...]  # the images shipped (manifest ``images``)
    patches: tuple[PatchInfo, ...]
    builder_image: str
    builder_image_id: str  # sha256:...
    go_version: str  # the builder's Go ("1.15.15")
    tool_version: str  # tkedistro's version


def patch_infos(ws: Workspace, manifest: Manifest) -> tuple[PatchInfo, ...]:
    """The series as shipped: every patch file (through the workspace's path policy) with its
    sha256, subject and trailers."""
    where = manifest_name(manifest.release)
    infos = []
    for index, entry in enumerate(manifest.patches):
        path = ws.repo_file(entry.file, f"{where}: patches[{index}].file")
        parsed = parse_patch(path, entry.file)
        infos.append(PatchInfo(entry.file, parsed.sha256, entry.subject or parsed.subject,
                               dict(parsed.trailers)))
    return tuple(infos)


def release_context(request: FinishRequest) -> ReleaseContext:
    """The context of one finish: the manifest, the prepared source and the plan."""
    plan, manifest, src = request.plan, request.manifest, request.src
    return ReleaseContext(
        release=plan.release,
        distro_version=plan.distro_version,
        upstream_url=manifest.upstream.url,
        tag=src.tag,
        upstream_commit=src.base_commit,
        tree_commit=plan.tree_commit,
        tree=src.path,
        source_date_epoch=int(plan.env["SOURCE_DATE_EPOCH"]),
        platforms=plan.platforms,
        components=plan.components,
        image_components=tuple(c for c in manifest.images
                               if c == "pause" or c in plan.components),
        patches=patch_infos(request.ws, manifest),
        builder_image=plan.image,
        builder_image_id=plan.image_id,
        go_version=request.go_version,
        tool_version=__version__,
    )
