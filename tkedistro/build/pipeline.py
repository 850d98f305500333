"""``tkedistro build RELEASE``: prepare_source, check_builder, build, smoke_check, publish.

Each step is a small function; the container work goes through the backend protocol, the
decisions come from the pure ``plan``. A failed or interrupted build leaves the previous
``_output/<release>`` untouched (see ``publish.py``).
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from tkedistro import __version__
from tkedistro.build import output, publish
from tkedistro.build.backend import ContainerBackend, ContainerSpec, ImageInfo, Mount, Session
from tkedistro.build.plan import (
    CONTAINER_CACHE,
    CONTAINER_OUT,
    CONTAINER_SRC,
    CONTAINER_WORK,
    VERSION_FILE_NAME,
    BuildPlan,
    check_go_version,
    plan_build,
    select_targets,
)
from tkedistro.build.smoke import SmokeResult, run_smoke_check
from tkedistro.core import console
from tkedistro.core.errors import BuilderImageError, BuildError, NotReproducibleError
from tkedistro.core.locks import output_lock
from tkedistro.core.workspace import Workspace
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import Manifest, load_manifest

LOG_TAIL_LINES = 20


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


class SourceInfo(Protocol):
    """What the build needs from ``tkedistro.source.prepare.SourceResult``."""

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
        }

    def format_text(self) -> str:
        if self.status == "up_to_date":
            return (f"{self.release} is up to date ({self.distro_version}, {self.output_dir}); "
                    "--force rebuilds")
        lines = [f"built {self.release} ({self.distro_version}) in {self.seconds:.1f}s "
                 f"-> {self.output_dir}"]
        versions = {s.component + "@" + s.platform: s.version if s.stamped else "exit 0"
                    for s in self.smoke}
        for rel, sha in self.binaries.items():
            parts = rel.split("/")
            key = f"{parts[-1]}@{parts[-3]}/{parts[-2]}"
            checked = f"  runs: {versions[key]}" if key in versions else ""
            lines.append(f"  {rel}  sha256:{sha[:16]}{checked}")
        if self.reproducible is not None:
            differ = self.reproducible["differ"]
            lines.append("reproducible: " + ("yes, SHA256SUMS identical" if not differ
                                             else "NO, differ: " + ", ".join(differ)))
        return "\n".join(lines)


def host_platform() -> str:
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
    return f"linux/{arch or platform.machine()}"


def default_backend() -> ContainerBackend:
    from tkedistro.build.docker import DockerBackend

    return DockerBackend()


def prepare_source(ws: Workspace, release: str, options: BuildOptions) -> SourceInfo:
    from tkedistro.source import prepare as source

    with console.step("prepare_source", release):
        result: SourceInfo = source.prepare_source(ws, release, upstream=options.upstream)
    return result


def lookup_image(backend: ContainerBackend, image: str) -> ImageInfo:
    backend.check_available()
    info = backend.image_info(image)
    if info is None:
        raise BuilderImageError(
            f"builder image {image} is not in the {backend.name} engine",
            hint=f"make it offline with scripts/make-builder-image.sh {image}",
        )
    return info


def commit_epoch(tree: Path, commit: str) -> int:
    return Repo(tree).commit_epoch(commit)


def make_plan(manifest: Manifest, src: SourceInfo, image: ImageInfo,
              options: BuildOptions) -> BuildPlan:
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
    )


def container_spec(plan: BuildPlan, ws: Workspace, tree: Path, work: Path, out: Path,
                   src_target: PurePosixPath = CONTAINER_SRC) -> ContainerSpec:
    cache = ws.gocache_dir
    for sub in ("home", "go-build"):
        (cache / sub).mkdir(parents=True, exist_ok=True)
    return ContainerSpec(
        image=plan.image,
        env=dict(plan.env),
        mounts=(
            Mount(tree, src_target),
            Mount(work, CONTAINER_WORK, read_only=True),
            Mount(out, CONTAINER_OUT, read_only=True),
            Mount(cache, CONTAINER_CACHE),
        ),
        user=f"{os.getuid()}:{os.getgid()}",
        network="none",
        cpus=plan.cpus,
        memory=plan.memory,
        workdir=src_target,
    )


def check_builder(session: Session, plan: BuildPlan) -> str:
    with console.step("check_builder", f"{plan.image}: go version"):
        result = session.run(["go", "version"])
        return check_go_version(plan.go_version, result.output, plan.image)


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_make(session: Session, plan: BuildPlan, log: Path, final: Path) -> None:
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(plan.make_argv)}\n")
    what = " ".join((*plan.components, *plan.tools))
    with console.step("build", what + " for " + " ".join(plan.platforms)):
        result = session.run(plan.make_argv, log=log)
    if not result.ok:
        kept = publish.failed_log_path(final)
        raise BuildError(
            f"build failed: `{' '.join(plan.make_argv)}` exited {result.exit_code} "
            f"in the builder container",
            details=f"last lines of the log:\n{log_tail(log)}\nfull log: {kept}",
            hint=f"the previous {final.name} output is untouched",
        )


def collect_binaries(plan: BuildPlan, tree: Path, out: Path, final: Path) -> list[str]:
    rel_paths = []
    for target in plan.targets:
        built = tree / target.tree_path
        if not built.is_file():
            raise BuildError(
                f"build finished but {target.component} for {target.platform} is missing: "
                f"{built}",
                details=f"full log: {publish.failed_log_path(final)}",
            )
        dest = out / target.output_path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, dest)
        rel_paths.append(str(target.output_path))
    return rel_paths


def build_info(plan: BuildPlan, manifest: Manifest, ws: Workspace, src: SourceInfo,
               go_version: str, started: float, sums: dict[str, str],
               smoke: Sequence[SmokeResult]) -> dict[str, Any]:
    patches = [{"file": p.file, "sha256": output.sha256_file(ws.root / p.file)}
               for p in manifest.patches]
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
        "started_at": time.strftime(stamp, time.gmtime(started)),
        "finished_at": time.strftime(stamp, time.gmtime()),
        "tool": {"name": "tkedistro", "version": __version__},
        "fingerprint": plan.fingerprint,
        "binaries": sums,
        "smoke": [s.to_json() for s in smoke],
    }


@dataclass
class _Built:
    go_version: str
    binaries: list[str]
    smoke: list[SmokeResult]


def build_in_container(backend: ContainerBackend, plan: BuildPlan, ws: Workspace, tree: Path,
                       staging: publish.Staging, final: Path,
                       src_target: PurePosixPath = CONTAINER_SRC) -> _Built:
    """check_builder, build and smoke_check in one builder container."""
    (staging.work / VERSION_FILE_NAME).write_text(plan.version_file, encoding="utf-8")
    spec = container_spec(plan, ws, tree, staging.work, staging.out, src_target)
    staging.log.write_text(f"# tkedistro {__version__} build of {plan.release}\n"
                           f"# container: {spec.describe()}\n", encoding="utf-8")
    with backend.session(spec) as session:
        with staging.log.open("a", encoding="utf-8") as handle:
            handle.write(f"# container id: {session.container_id}\n")
        go_version = check_builder(session, plan)
        run_make(session, plan, staging.log, final)
        binaries = collect_binaries(plan, tree, staging.out, final)
        with console.step("smoke_check", f"{len(plan.smoke)} binaries"):
            smoke = run_smoke_check(session, plan.smoke, plan.distro_version)
    return _Built(go_version, binaries, smoke)


def build_release(ws: Workspace, release: str, options: BuildOptions,
                  backend: ContainerBackend | None = None) -> BuildResult:
    manifest = load_manifest(ws.manifest_path(release), f"releases/{release}.yaml")
    select_targets(manifest, options.components, options.platforms)  # fail before any work
    with output_lock(ws, release, f"build {release}"):
        return _build_locked(ws, manifest, options, backend or default_backend())


def _build_locked(ws: Workspace, manifest: Manifest, options: BuildOptions,
                  backend: ContainerBackend) -> BuildResult:
    started = time.time()
    src = prepare_source(ws, manifest.release, options)
    image = lookup_image(backend, options.builder_image or manifest.builder.image)
    plan = make_plan(manifest, src, image, options)
    final = ws.output_dir(manifest.release)
    if not options.force and output.is_intact(final, plan.fingerprint):
        result = _result(plan, final, "up_to_date", output.read_build_info(final), started)
    else:
        result = _build_and_publish(backend, plan, manifest, ws, src, final, started)
    if options.verify_reproducible:
        from tkedistro.build.reproduce import verify_reproducible

        result.reproducible = verify_reproducible(backend, plan, ws, src, final)
        if differ := result.reproducible["differ"]:
            kept = ws.rel(Path(result.reproducible["kept"]))
            raise NotReproducibleError(
                f"not reproducible: {', '.join(differ)} differ between {ws.rel(final)} and a "
                f"second build of the same tree at another path (kept in {kept})",
                hint=f"compare them, e.g. cmp -l {ws.rel(final)}/{differ[0]} {kept}/{differ[0]}; "
                     f"{ws.rel(final)} is complete and published")
    return result


def _build_and_publish(backend: ContainerBackend, plan: BuildPlan, manifest: Manifest,
                       ws: Workspace, src: SourceInfo, final: Path,
                       started: float) -> BuildResult:
    with publish.staging_for(final) as staging:
        built = build_in_container(backend, plan, ws, src.path, staging, final)
        sums = output.write_sha256sums(staging.out, built.binaries)
        info = build_info(plan, manifest, ws, src, built.go_version, started, sums, built.smoke)
        output.write_build_info(staging.out, info)
        output.write_state(staging.out, plan.fingerprint)
        with console.step("publish", ws.rel(final)):
            publish.publish(staging.out, final)
    result = _result(plan, final, "built", info, started)
    result.smoke = built.smoke
    return result


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
    )
