"""The hook through which what a release ships besides its binaries is made before publishing.

``build`` knows nothing of images, tarballs or SBOMs (they live in ``tkedistro.artifacts``, a
layer above); it calls a ``Finisher`` with the staged output. The finisher's inputs go into the
output's state beside the binaries' fingerprint, so a build whose binaries are current but
whose artifacts are not (``--no-images`` then ``images``, a new tkedistro) remakes only the
artifacts, on hard links of the published binaries (``refinish``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tkedistro.build.plan import BuildPlan
from tkedistro.core.files import json_digest
from tkedistro.core.workspace import Workspace
from tkedistro.model.manifest import Manifest


class SourceInfo(Protocol):
    """What the build needs from ``tkedistro.source.result.SourceResult``."""

    @property
    def path(self) -> Path: ...
    @property
    def upstream_url(self) -> str: ...
    @property
    def tag(self) -> str: ...
    @property
    def base_commit(self) -> str: ...
    @property
    def head_commit(self) -> str: ...


@dataclass(frozen=True)
class FinishRequest:
    """What a finisher is given: the staged output (binaries under ``bin/``) and where from."""

    ws: Workspace
    out: Path
    plan: BuildPlan
    manifest: Manifest
    src: SourceInfo
    go_version: str
    binaries: Sequence[str]  # relative to ``out``
    previous: Path | None  # the published output, whose artifacts may be reused


@dataclass
class Finished:
    """What the finisher made: every file it checksummed (relative path -> sha256, binaries
    included) and a summary for ``build-info.json`` and ``--json``."""

    sums: dict[str, str]
    info: dict[str, Any] = field(default_factory=dict)


class Finisher(Protocol):
    def inputs(self, plan: BuildPlan, manifest: Manifest) -> Mapping[str, object]:
        """What the artifacts are made from besides the binaries (decides a refinish)."""
        ...

    def finish(self, request: FinishRequest) -> Finished:
        """Make the artifacts in ``request.out`` and write its checksum files."""
        ...


def artifacts_digest(finisher: Finisher | None, plan: BuildPlan,
                     manifest: Manifest) -> str | None:
    if finisher is None:
        return None
    return json_digest({"binaries": plan.fingerprint, **finisher.inputs(plan, manifest)})
