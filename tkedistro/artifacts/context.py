"""Everything the release artifacts are made from, resolved once by the build and frozen.

The release operation fills a ``ReleaseContext`` from the prepared source (``PreparedRelease``:
manifest, commits, the patches hashed once) and the build plan; tarballs, images, checksums,
the SBOM and the provenance statement read only this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tkedistro import __version__
from tkedistro.build.plan import BuildPlan
from tkedistro.core.workspace import Workspace
from tkedistro.source.prepared import PatchInfo, PreparedRelease

__all__ = ["Finished", "FinishRequest", "PatchInfo", "ReleaseContext", "release_context"]


@dataclass(frozen=True)
class FinishRequest:
    """What the finisher is given: the staged output (binaries under ``bin/``) and where from."""

    ws: Workspace
    out: Path
    plan: BuildPlan
    prepared: PreparedRelease
    go_version: str
    binaries: Sequence[str]  # relative to ``out``
    previous: Path | None  # the published output, whose artifacts may be reused


@dataclass
class Finished:
    """What the finisher made: every file it checksummed (relative path -> sha256, binaries
    included) and a summary for ``build-info.json`` and ``--json``."""

    sums: dict[str, str]
    info: dict[str, Any] = field(default_factory=dict)


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


def release_context(request: FinishRequest) -> ReleaseContext:
    """The context of one finish: the prepared source and the plan."""
    plan, prepared = request.plan, request.prepared
    return ReleaseContext(
        release=plan.release,
        distro_version=plan.distro_version,
        upstream_url=prepared.manifest.upstream.url,
        tag=prepared.tag,
        upstream_commit=prepared.upstream_commit,
        tree_commit=plan.tree_commit,
        tree=prepared.tree,
        source_date_epoch=int(plan.env["SOURCE_DATE_EPOCH"]),
        platforms=plan.platforms,
        components=plan.components,
        image_components=tuple(c for c in prepared.manifest.images
                               if c == "pause" or c in plan.components),
        patches=prepared.patches,
        builder_image=plan.image,
        builder_image_id=plan.image_id,
        go_version=request.go_version,
        tool_version=__version__,
    )
