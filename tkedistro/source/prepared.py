"""``PreparedRelease``: a release's source made ready for one build, frozen.

The manifest (loaded once by the caller), the patched tree and its commits, and every patch of
the series as shipped: its file, sha256 and trailers, each file read and hashed once. The build
plan, ``build-info.json``, the SBOM and the provenance statement all read this one object, so
they cannot disagree about what was built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tkedistro.core import console
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
class PreparedRelease:
    manifest: Manifest
    tree: Path  # _src/<release>: the pinned upstream plus one commit per patch
    upstream_url: str  # where the pinned upstream was fetched from (a mirror with --upstream)
    tag: str  # "v1.20.2"
    upstream_commit: str  # the pinned upstream commit
    tree_commit: str  # the patched tree's HEAD
    patches: tuple[PatchInfo, ...]

    @property
    def release(self) -> str:
        return self.manifest.release


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


def prepare_release(ws: Workspace, manifest: Manifest, upstream: str | None) -> PreparedRelease:
    """``tkedistro source`` for the build (``prepare_source``), then the series as shipped."""
    from tkedistro.source.prepare import prepare_source

    with console.step("prepare_source", manifest.release):
        src = prepare_source(ws, manifest.release, upstream=upstream)
    return PreparedRelease(manifest=manifest, tree=src.path, upstream_url=src.upstream_url,
                           tag=src.tag, upstream_commit=src.base_commit,
                           tree_commit=src.head_commit, patches=patch_infos(ws, manifest))
