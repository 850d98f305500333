"""``tkedistro build RELEASE``: prepare_source, check_builder, build, smoke_check, publish.

Each step is a small function; the container work (``container.py``) goes through the backend
protocol, the decisions come from the pure ``plan``. A failed or interrupted build leaves the
previous ``_output/<release>`` untouched (see ``publish.py``).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tkedistro import __version__
from tkedistro.build import container, output, pause, publish
from tkedistro.build.finishing import (
    Finished,
    Finisher,
    FinishRequest,
    SourceInfo,
    artifacts_digest,
)
from tkedistro.build.plan import BuildPlan, plan_build, select_targets
from tkedistro.build.smoke import SmokeResult, not_run_lines
from tkedistro.core import console
from tkedistro.core.errors import BuilderImageError, BuildError, NotReproducibleError
from tkedistro.core.files import sha256_file
from tkedistro.core.locks import output_lock
from tkedistro.core.workspace import Workspace, manifest_name
from tkedistro.engine import emulation
from tkedistro.engine.protocols import ContainerBackend, ImageEngine, ImageInfo
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import Manifest, load_release
from tkedistro.source.buildwrites import build_writes


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


def default_backend() -> ContainerBackend:
    from tkedistro.engine.docker import DockerBackend

    return DockerBackend()


def default_image_engine() -> ImageEngine:
    from tkedistro.engine.docker_images import DockerImages

    return DockerImages()


def prepare_source(ws: Workspace, release: str, options: BuildOptions) -> SourceInfo:
    from tkedistro.source import prepare as source

    with console.step("prepare_source", release):
        result: SourceInfo = source.prepare_source(ws, release, upstream=options.upstream)
    return result


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


def make_plan(manifest: Manifest, src: SourceInfo, image: ImageInfo,
              options: BuildOptions) -> BuildPlan:
    platforms = select_targets(manifest, options.components, options.platforms)[1]
    return plan_build(
        manifest,
        tree_commit=src.head_commit,
        source_date_epoch=commit_epoch(src.path, src.head_commit),
        image=image.name,
        image_id=image.id,
        host_platform=host_platform(),
        components=options.components,
        platforms=options.platforms,
        cpus=options.cpus,
        memory=options.memory,
        conformance_tools=options.conformance_tools,
        runnable={p: emulation.can_run(p) for p in platforms},
        pause_tag=pause_tag(manifest, src.path),
    )


def build_info(plan: BuildPlan, manifest: Manifest, ws: Workspace, src: SourceInfo,
               go_version: str, started: float, sums: dict[str, str],
               smoke: Sequence[SmokeResult]) -> dict[str, Any]:
    where = manifest_name(plan.release)
    patches = [{"file": p.file, "sha256": sha256_file(
                    ws.repo_file(p.file, f"{where}: patches[{i}].file"))}
               for i, p in enumerate(manifest.patches)]
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return {
        "release": plan.release,
        "distro_version": plan.distro_version,
        "upstream": {"url": manifest.upstream.url, "fetched_from": src.upstream_url,
                     "tag": src.tag, "commit": src.base_commit},
        "patches": patches,
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


def build_release(ws: Workspace, release: str, options: BuildOptions,
                  backend: ContainerBackend | None = None,
                  finisher: Finisher | None = None) -> BuildResult:
    """Build ``release`` into ``_output/<release>``; ``finisher`` makes what ships besides
    the binaries (``tkedistro.artifacts``) before the output is published."""
    manifest = load_release(ws, release)
    select_targets(manifest, options.components, options.platforms)  # fail before any work
    backend = backend or default_backend()
    backend.check_available()  # no engine: fail before fetching and checking out the source
    with output_lock(ws, release, f"build {release}"):
        return _build_locked(ws, manifest, options, backend, finisher)


def _build_locked(ws: Workspace, manifest: Manifest, options: BuildOptions,
                  backend: ContainerBackend, finisher: Finisher | None) -> BuildResult:
    started = time.time()
    src = prepare_source(ws, manifest.release, options)
    image = lookup_image(backend, options.builder_image or manifest.builder.image,
                         manifest.release)
    plan = make_plan(manifest, src, image, options)
    final = ws.output_dir(manifest.release)
    job = _Job(ws, manifest, plan, src, final, started, finisher,
               artifacts_digest(finisher, plan, manifest))
    if not options.force and output.is_intact(final, plan.fingerprint, job.artifacts):
        result = _result(plan, final, "up_to_date", output.read_build_info(final), started)
    elif not options.force and finisher and output.is_intact(final, plan.fingerprint):
        result = _refinish(job, finisher)
    else:
        result = _build_and_publish(backend, job)
    if options.verify_reproducible:
        from tkedistro.build.reproduce import verify_reproducible

        result.reproducible = verify_reproducible(backend, plan, ws, src.path, final,
                                                  _second_finish(job))
        if differ := result.reproducible["differ"]:
            kept = ws.rel(Path(result.reproducible["kept"]))
            raise NotReproducibleError(
                f"not reproducible: {', '.join(differ)} differ between {ws.rel(final)} and a "
                f"second build of the same tree at another path (kept in {kept})",
                hint=f"compare them, e.g. cmp -l {ws.rel(final)}/{differ[0]} {kept}/{differ[0]}; "
                     f"{ws.rel(final)} is complete and published")
    return result


@dataclass(frozen=True)
class _Job:
    """One build of one plan: where from, where to, and what finishes it."""

    ws: Workspace
    manifest: Manifest
    plan: BuildPlan
    src: SourceInfo
    final: Path
    started: float
    finisher: Finisher | None
    artifacts: str | None  # the finisher's inputs digest (None: no finisher)

    def finish(self, out: Path, go_version: str, binaries: Sequence[str],
               previous: Path | None) -> Finished | None:
        if self.finisher is None:
            return None
        return self.finisher.finish(FinishRequest(self.ws, out, self.plan, self.manifest,
                                                  self.src, go_version, binaries, previous))


def _build_and_publish(backend: ContainerBackend, job: _Job) -> BuildResult:
    plan, ws, final = job.plan, job.ws, job.final
    with publish.staging_for(final) as staging:
        with build_writes(ws, plan.release, job.src.path):  # what make leaves in _src is removed
            built = container.build_in_container(backend, plan, ws, job.src.path, staging,
                                                 final)
        finished = job.finish(staging.out, built.go_version, built.binaries,
                              final if final.is_dir() else None)
        if finished is None:
            sums = output.write_sha256sums(staging.out, built.binaries)
        else:
            sums = {rel: finished.sums[rel] for rel in built.binaries}
        info = build_info(plan, job.manifest, ws, job.src, built.go_version, job.started, sums,
                          built.smoke)
        if finished is not None:
            info["artifacts"] = finished.info
        _publish(staging, job, info)
    result = _result(plan, final, "built", info, job.started)
    result.smoke = built.smoke
    return result


def _publish(staging: publish.Staging, job: _Job, info: dict[str, Any]) -> None:
    output.write_build_info(staging.out, info)
    output.write_state(staging.out, job.plan.fingerprint, job.artifacts)
    with console.step("publish", job.ws.rel(job.final)):
        publish.publish(staging.out, job.final)


def _refinish(job: _Job, finisher: Finisher) -> BuildResult:
    """The binaries are current, the artifacts are not: remake only those, on hard links of
    the published binaries, and publish the whole output again."""
    plan, final = job.plan, job.final
    old = output.read_build_info(final) or {}
    binaries = [str(target.output_path) for target in plan.targets]
    with publish.staging_for(final) as staging:
        link_files(final, staging.out, binaries)
        if (final / output.LOG_NAME).is_file():
            shutil.copyfile(final / output.LOG_NAME, staging.log)
        with staging.log.open("a", encoding="utf-8") as log:
            log.write(f"# tkedistro {__version__}: artifacts remade, binaries kept\n")
        go_version = str(old.get("builder", {}).get("go_version") or plan.go_version)
        finished = finisher.finish(FinishRequest(job.ws, staging.out, plan, job.manifest,
                                                 job.src, go_version, binaries, final))
        info = {**old, "artifacts": finished.info,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _publish(staging, job, info)
    return _result(plan, final, "finished", info, job.started)


def link_files(source: Path, dest: Path, rel_paths: Sequence[str]) -> None:
    """Hard-link (copy across devices) ``rel_paths`` of ``source`` into ``dest``."""
    for rel in rel_paths:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source / rel, target)
        except OSError:
            shutil.copy2(source / rel, target)


def _second_finish(job: _Job) -> Any:
    """For ``--verify-reproducible``: finish the second build too, reusing nothing."""
    if job.finisher is None:
        return None

    def finish(out: Path, go_version: str, binaries: Sequence[str]) -> dict[str, str]:
        finished = job.finish(out, go_version, binaries, None)
        return finished.sums if finished is not None else {}

    return finish


def _result(plan: BuildPlan, final: Path, status: str, info: dict[str, Any] | None,
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
