"""The build's steps: check_builder, plan, build_info and the result of ``tkedistro build``.

Each step is a small function; the container work (``container.py``) goes through the backend
protocol, the decisions come from the pure ``plan``. The one operation that runs them with the
source preparation, the release artifacts and the publish is ``tkedistro.release.operation``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tkedistro import __version__
from tkedistro.build import pause
from tkedistro.build.plan import BuildPlan, plan_build
from tkedistro.build.smoke import SmokeResult, not_run_lines
from tkedistro.build.targets import Targets
from tkedistro.core import files
from tkedistro.core.errors import BuilderImageError, BuildError
from tkedistro.core.workspace import manifest_name
from tkedistro.engine import emulation
from tkedistro.engine.protocols import ContainerBackend, ImageInfo
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import Manifest
from tkedistro.signing.keys import SigningKey
from tkedistro.source.prepared import PreparedRelease


@dataclass(frozen=True)
class BuildOptions:
    components: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    builder_image: str | None = None
    upstream: str | None = None
    force: bool = False
    cpus: float | None = None
    memory: str | None = None
    verify_reproducible: bool = False
    conformance_tools: bool = False  # also e2e.test and ginkgo (plan.CONFORMANCE_TOOLS)
    images: bool = True  # the component images among the artifacts (False: build --no-images)
    signing: SigningKey | None = field(default=None, repr=False)  # None: unsigned


@dataclass
class BuildResult:
    release: str
    status: str  # "built" or "up_to_date"
    output_dir: Path
    distro_version: str
    components: tuple[str, ...]
    platforms: tuple[str, ...]
    tree_commit: str
    image: str
    tools: tuple[str, ...]
    go_version: str | None
    binaries: dict[str, str] = field(default_factory=dict)
    smoke: list[SmokeResult] = field(default_factory=list)
    seconds: float = 0.0
    reproducible: dict[str, Any] | None = None
    artifacts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "status": self.status,
            "output_dir": str(self.output_dir),
            "distro_version": self.distro_version,
            "components": list(self.components),
            "platforms": list(self.platforms),
            "tools": list(self.tools),
            "tree_commit": self.tree_commit,
            "builder_image": self.image,
            "go_version": self.go_version,
            "binaries": self.binaries,
            "smoke": [s.to_json() for s in self.smoke],
            "seconds": round(self.seconds, 2),
            "reproducible": self.reproducible,
            "artifacts": self.artifacts,
        }

    def format_text(self) -> str:
        if self.status == "up_to_date":
            return (f"{self.release} is up to date ({self.distro_version}, {self.output_dir}); "
                    "--force rebuilds")
        verb = "built" if self.status == "built" else "remade the artifacts of"
        lines = [f"{verb} {self.release} ({self.distro_version}) in {self.seconds:.1f}s "
                 f"-> {self.output_dir}"]
        smoke = {f"{s.component}@{s.platform}": s for s in self.smoke}
        for rel, sha in self.binaries.items():
            parts = rel.split("/")
            ran = smoke.get(f"{parts[-1]}@{parts[-3]}/{parts[-2]}")
            checked = "" if ran is None else "  not run" if not ran.checked else \
                f"  runs{' (qemu)' if ran.mode == 'emulated' else ''}: {ran.summary()}"
            lines.append(f"  {rel}  sha256:{sha[:16]}{checked}")
        lines.extend(not_run_lines(self.smoke))
        if self.reproducible is not None:
            differ = self.reproducible["differ"]
            lines.append("reproducible: " + ("yes, SHA256SUMS identical" if not differ
                                             else "NO, differ: " + ", ".join(differ)))
        return "\n".join(lines)


def host_platform() -> str:
    return emulation.host_platform()


def lookup_image(backend: ContainerBackend, image: str, release: str = "RELEASE") -> ImageInfo:
    backend.check_available()
    info = backend.image_info(image)
    if info is None:
        raise BuilderImageError(
            f"builder image {image} is not in the {backend.name} engine",
            hint=f"make it offline with `sudo tkedistro builder-image {release} --image {image}`",
        )
    return info


def commit_epoch(tree: Path, commit: str) -> int:
    return Repo(tree).commit_epoch(commit)


def pause_tag(manifest: Manifest, tree: Path) -> str | None:
    """The ``TAG`` of the tree's build/pause/Makefile when the release ships pause."""
    if "pause" not in manifest.images:
        return None
    makefile = tree / pause.MAKEFILE
    if not (tree / pause.SOURCE).is_file() or not makefile.is_file():
        raise BuildError(f"{manifest_name(manifest.release)} lists pause in images:, but the tree "
                         f"has no {pause.SOURCE} and {pause.MAKEFILE}")
    return pause.pause_tag(makefile.read_text(encoding="utf-8", errors="replace"))


def make_plan(prepared: PreparedRelease, targets: Targets, image: ImageInfo,
              options: BuildOptions) -> BuildPlan:
    manifest = prepared.manifest
    return plan_build(
        manifest,
        tree_commit=prepared.tree_commit,
        source_date_epoch=commit_epoch(prepared.tree, prepared.tree_commit),
        image=image.name,
        image_id=image.id,
        host_platform=host_platform(),
        selected=targets,
        cpus=options.cpus,
        memory=options.memory,
        conformance_tools=options.conformance_tools,
        runnable={p: emulation.can_run(p) for p in targets.platforms},
        pause_tag=pause_tag(manifest, prepared.tree),
    )


def build_info(plan: BuildPlan, prepared: PreparedRelease, go_version: str, started: float,
               sums: dict[str, str], smoke: Sequence[SmokeResult]) -> dict[str, Any]:
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return {
        "release": plan.release,
        "distro_version": plan.distro_version,
        "upstream": {"url": prepared.manifest.upstream.url,
                     "fetched_from": prepared.upstream_url,
                     "tag": prepared.tag, "commit": prepared.upstream_commit},
        "patches": [{"file": p.file, "sha256": p.sha256} for p in prepared.patches],
        "tree_commit": plan.tree_commit,
        "builder": {"image": plan.image, "image_id": plan.image_id, "go_version": go_version},
        "platforms": list(plan.platforms),
        "components": list(plan.components),
        "tools": list(plan.tools),
        "make": list(plan.make_argv),
        **({"then": [list(a) for a in plan.extra_argv]} if plan.extra_argv else {}),
        "started_at": time.strftime(stamp, time.gmtime(started)),
        "finished_at": time.strftime(stamp, time.gmtime()),
        "tool": {"name": "tkedistro", "version": __version__},
        "fingerprint": plan.fingerprint,
        "binaries": sums,
        "smoke": [s.to_json() for s in smoke],
    }


def link_files(source: Path, dest: Path, rel_paths: Sequence[str]) -> None:
    """Hard-link (copy across devices, same mode) ``rel_paths`` of ``source`` into ``dest``;
    a symlink among them is refused (``UnsafePathError``), never followed."""
    for rel in rel_paths:
        files.link_or_copy(source / rel, dest / rel)


def result_of(plan: BuildPlan, final: Path, status: str, info: dict[str, Any] | None,
              started: float) -> BuildResult:
    info = info or {}
    return BuildResult(
        release=plan.release,
        status=status,
        output_dir=final,
        distro_version=plan.distro_version,
        components=plan.components,
        platforms=plan.platforms,
        tree_commit=plan.tree_commit,
        image=plan.image,
        tools=plan.tools,
        go_version=info.get("builder", {}).get("go_version"),
        binaries=dict(info.get("binaries", {})),
        seconds=time.time() - started,
        artifacts=dict(info.get("artifacts") or {}),
    )
