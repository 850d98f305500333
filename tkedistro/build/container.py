"""One builder container: check_builder, build (``make``), collect the binaries, smoke_check.

Shared by the build pipeline and ``--verify-reproducible`` (``reproduce.py``); it knows the
backend protocol only, never Docker.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NoReturn

from tkedistro import __version__
from tkedistro.build import progress, publish
from tkedistro.build.plan import (
    CONTAINER_CACHE,
    CONTAINER_OUT,
    CONTAINER_SRC,
    CONTAINER_WORK,
    VERSION_FILE_NAME,
    BuildPlan,
    check_builder_commands,
    check_go_version,
)
from tkedistro.build.smoke import SmokeResult, run_smoke_check, smoke_detail
from tkedistro.core import console, files
from tkedistro.core.errors import BuildError
from tkedistro.core.files import log_tail
from tkedistro.core.workspace import Workspace
from tkedistro.engine.protocols import ContainerBackend, ContainerSpec, Mount, Session

LOG_TAIL_LINES = 20


def container_spec(plan: BuildPlan, ws: Workspace, tree: Path, work: Path, out: Path,
                   src_target: PurePosixPath = CONTAINER_SRC) -> ContainerSpec:
    """The builder container of ``plan``: ``tree``, ``work``, ``out`` and the Go cache are
    bind-mounted, so each is checked for a symlink first (the engine would follow one)."""
    return builder_spec(plan.image, plan.env, ws, tree, cpus=plan.cpus, memory=plan.memory,
                        src_target=src_target,
                        mounts=(Mount(work, CONTAINER_WORK, read_only=True),
                                Mount(out, CONTAINER_OUT, read_only=True)))


def builder_spec(image: str, env: Mapping[str, str], ws: Workspace, tree: Path, *,
                 cpus: float | None = None, memory: str | None = None,
                 src_target: PurePosixPath = CONTAINER_SRC,
                 mounts: tuple[Mount, ...] = ()) -> ContainerSpec:
    """A builder container as every build runs it: as the invoking user, no network, the
    tree at ``src_target``, ``mounts``, the tool's Go cache; every host folder is checked
    for a symlink first (the engine would follow one)."""
    cache = ws.gocache_dir
    for sub in ("home", "go-build"):
        files.ensure_dir(cache / sub)
    for folder in (tree, *(m.source for m in mounts), cache):
        files.check_path(folder)
    return ContainerSpec(
        image=image,
        env=dict(env),
        mounts=(Mount(tree, src_target), *mounts, Mount(cache, CONTAINER_CACHE)),
        user=f"{os.getuid()}:{os.getgid()}",
        network="none",
        cpus=cpus,
        memory=memory,
        workdir=src_target,
    )


# prints each of its arguments that is not a command in the container's PATH (names are the
# plan's constants, passed as arguments, never put into the script)
_MISSING_COMMANDS = 'for c in "$@"; do command -v "$c" >/dev/null 2>&1 || echo "$c"; done'


def check_builder(session: Session, plan: BuildPlan) -> str:
    """The builder's Go version (the manifest's) and every command the build runs, before
    anything is built: a missing ``gofmt`` fails here, not half-way through ``make``."""
    with console.step("check_builder", f"{plan.image}: go version, "
                                       f"{len(plan.commands)} commands"):
        result = session.run(["go", "version"])
        found = check_go_version(plan.go_version, result.output, plan.image, plan.release)
        if plan.commands:
            check_builder_commands({"sh": ("the command check", "dash"), **plan.commands},
                                   missing_commands(session, plan.commands), plan.image,
                                   plan.release)
        return found


def missing_commands(session: Session, commands: Iterable[str]) -> list[str]:
    """The ``commands`` not found in the container's PATH (``["sh"]``: no shell to ask)."""
    probe = session.run(["sh", "-c", _MISSING_COMMANDS, "sh", *commands])
    return probe.output.split() if probe.ok else ["sh"]


def run_make(session: Session, plan: BuildPlan, log: Path, final: Path) -> None:
    """``make`` (and what runs after it: the host-only tools' make, pause) in the container;
    the console names the log and shows Kubernetes' own status lines as they come."""
    what = " ".join((*plan.components, *plan.tools,
                     *(["pause"] if any(t.component == "pause" for t in plan.targets) else [])))
    argvs = (plan.make_argv, *plan.extra_argv)
    makes = sum(argv[0] == "make" for argv in argvs)
    with console.step("build", what + " for " + " ".join(plan.platforms)):
        console.info(f"[build] {progress.log_paths_text(log, final)}")
        shown = progress.BuildProgress("build")
        with progress.ticking(shown):
            made = 0
            for argv in argvs:
                with files.open_for_writing(log, append=True) as handle:
                    handle.write(f"$ {' '.join(argv)}\n".encode())
                if argv[0] == "make":
                    made += 1
                    shown.begin_run(argv, made, makes)
                result = session.run(argv, log=log, on_line=shown.line)
                shown.end_run()
                if not result.ok:
                    _build_failed(argv, result.exit_code, log, final)


def _build_failed(argv: tuple[str, ...], exit_code: int, log: Path, final: Path) -> NoReturn:
    kept = publish.failed_log_path(final)
    raise BuildError(
        f"build failed: `{' '.join(argv)}` exited {exit_code} in the builder container",
        details=f"last lines of the log:\n{log_tail(log, LOG_TAIL_LINES)}\nfull log: {kept}",
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
        files.copy_file(built, out / target.output_path, mode=0o755)  # never through a link
        rel_paths.append(str(target.output_path))
    return rel_paths


@dataclass
class Built:
    go_version: str
    binaries: list[str]
    smoke: list[SmokeResult]


def build_in_container(backend: ContainerBackend, plan: BuildPlan, ws: Workspace, tree: Path,
                       staging: publish.Staging, final: Path,
                       src_target: PurePosixPath = CONTAINER_SRC) -> Built:
    """check_builder, build and smoke_check in one builder container."""
    files.write_text(staging.work / VERSION_FILE_NAME, plan.version_file)
    spec = container_spec(plan, ws, tree, staging.work, staging.out, src_target)
    files.write_text(staging.log, f"# tkedistro {__version__} build of {plan.release}\n"
                                  f"# container: {spec.describe()}\n")
    with backend.session(spec) as session:
        with files.open_for_writing(staging.log, append=True) as handle:
            handle.write(f"# container id: {session.container_id}\n".encode())
        go_version = check_builder(session, plan)
        run_make(session, plan, staging.log, final)
        binaries = collect_binaries(plan, tree, staging.out, final)
        with console.step("smoke_check", smoke_detail(plan.smoke)):
            smoke = run_smoke_check(session, plan.smoke, plan.distro_version)
    return Built(go_version, binaries, smoke)
