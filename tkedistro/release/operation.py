"""``build_release``: the one operation that makes ``_output/<release>``, for every caller.

``tkedistro build``, ``tkedistro images``, the build ``conformance`` starts for its missing
tools and the nightly's build step all run this, so each publishes the same output: the
binaries (built in the builder container), then the release artifacts (component images,
tarballs, SHA256SUMS/SHA512SUMS, SBOM, provenance; ``tkedistro.artifacts``), then the publish.
The source is prepared once into a ``PreparedRelease`` and the targets selected once; the
plan, ``build-info.json`` and the artifacts read those. A failed or interrupted build leaves
the previous ``_output/<release>`` untouched (``build/publish.py``).

The artifacts' inputs go into the output's state beside the binaries' fingerprint, so a build
whose binaries are current but whose artifacts are not (``--no-images`` then ``images``, a new
tkedistro) remakes only the artifacts, on hard links of the published binaries (``refinish``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tkedistro import __version__
from tkedistro.artifacts.context import Finished, FinishRequest
from tkedistro.artifacts.finish import ReleaseFinisher
from tkedistro.build import container, output, publish
from tkedistro.build.pipeline import (
    BuildOptions,
    BuildResult,
    build_info,
    link_files,
    lookup_image,
    make_plan,
    result_of,
)
from tkedistro.build.plan import BuildPlan
from tkedistro.build.reproduce import verify_dir, verify_reproducible
from tkedistro.build.targets import Targets, select_targets
from tkedistro.core import console, files
from tkedistro.core.errors import NotReproducibleError
from tkedistro.core.locks import output_lock
from tkedistro.core.workspace import Workspace
from tkedistro.engine.engines import Engines
from tkedistro.model.manifest import Manifest
from tkedistro.signing.keys import KEY_ENV, SIGN_KEY_FLAG
from tkedistro.source.buildwrites import build_writes
from tkedistro.source.prepared import PreparedRelease, prepare_release


def build_release(ws: Workspace, manifest: Manifest, options: BuildOptions,
                  engines: Engines) -> BuildResult:
    """Build the release of ``manifest`` (loaded once by the caller) into
    ``_output/<release>``: binaries and release artifacts."""
    release = manifest.release
    targets = select_targets(manifest, options.components, options.platforms)  # before any work
    engines.containers.check_available()  # no engine: fail before fetching the source
    with output_lock(ws, release, f"build {release}"):
        return _build_locked(ws, manifest, targets, options, engines)


def _build_locked(ws: Workspace, manifest: Manifest, targets: Targets, options: BuildOptions,
                  engines: Engines) -> BuildResult:
    started = time.time()
    # a symlinked output is refused before any work; nothing is read or written through it
    files.check_path(ws.output_dir(manifest.release))
    if options.verify_reproducible:
        files.check_path(verify_dir(ws.output_dir(manifest.release)))
    prepared = prepare_release(ws, manifest, options.upstream)
    image = lookup_image(engines.containers, options.builder_image or manifest.builder.image,
                         manifest.release)
    plan = make_plan(prepared, targets, image, options)
    finisher = ReleaseFinisher(engines, images=options.images, signing=options.signing)
    final = ws.output_dir(manifest.release)
    job = _Job(ws, prepared, plan, final, started, finisher, finisher.digest(plan, manifest),
               signed=options.signing is not None)
    if not options.force and output.is_intact(final, plan.fingerprint, job.artifacts):
        result = result_of(plan, final, "up_to_date", output.read_build_info(final), started)
    elif not options.force and output.is_intact(final, plan.fingerprint):
        result = _refinish(job)
    else:
        result = _build_and_publish(engines, job)
    if options.verify_reproducible:
        _verify(engines, job, result)
    return result


@dataclass(frozen=True)
class _Job:
    """One build of one plan: where from, where to, and what finishes it."""

    ws: Workspace
    prepared: PreparedRelease
    plan: BuildPlan
    final: Path
    started: float
    finisher: ReleaseFinisher
    artifacts: str  # the finisher's inputs digest
    signed: bool = False  # whether the finisher signs (says so when it does not)

    def finish(self, out: Path, go_version: str, binaries: Sequence[str],
               previous: Path | None) -> Finished:
        return self.finisher.finish(FinishRequest(self.ws, out, self.plan, self.prepared,
                                                  go_version, binaries, previous))


def _build_and_publish(engines: Engines, job: _Job) -> BuildResult:
    plan, ws, final = job.plan, job.ws, job.final
    with publish.staging_for(final) as staging:
        with build_writes(ws, plan.release, job.prepared.tree):  # make's leftovers in _src go
            built = container.build_in_container(engines.containers, plan, ws,
                                                 job.prepared.tree, staging, final)
        finished = job.finish(staging.out, built.go_version, built.binaries,
                              final if final.is_dir() else None)
        sums = {rel: finished.sums[rel] for rel in built.binaries}
        info = build_info(plan, job.prepared, built.go_version, job.started, sums, built.smoke)
        info["artifacts"] = finished.info
        _publish(staging, job, info)
    result = result_of(plan, final, "built", info, job.started)
    result.smoke = built.smoke
    return result


def _publish(staging: publish.Staging, job: _Job, info: dict[str, Any]) -> None:
    if not job.signed:
        console.info(f"unsigned: no signing key (see `tkedistro keys generate`; "
                     f"{SIGN_KEY_FLAG} or {KEY_ENV} gives one)")
    output.write_build_info(staging.out, info)
    output.write_state(staging.out, job.plan.fingerprint, job.artifacts)
    with console.step("publish", job.ws.rel(job.final)):
        publish.publish(staging.out, job.final)


def _refinish(job: _Job) -> BuildResult:
    """The binaries are current, the artifacts are not: remake only those, on hard links of
    the published binaries, and publish the whole output again."""
    plan, final = job.plan, job.final
    old = output.read_build_info(final) or {}
    binaries = [str(target.output_path) for target in plan.targets]
    with publish.staging_for(final) as staging:
        link_files(final, staging.out, binaries)
        if (final / output.LOG_NAME).is_file():
            files.copy_file(final / output.LOG_NAME, staging.log)
        with files.open_for_writing(staging.log, append=True) as log:
            log.write(f"# tkedistro {__version__}: artifacts remade, binaries kept\n".encode())
        go_version = str(old.get("builder", {}).get("go_version") or plan.go_version)
        finished = job.finish(staging.out, go_version, binaries, final)
        info = {**old, "artifacts": finished.info,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _publish(staging, job, info)
    return result_of(plan, final, "finished", info, job.started)


def _verify(engines: Engines, job: _Job, result: BuildResult) -> None:
    """``--verify-reproducible``: build again from a fresh tree, its artifacts too (reusing
    nothing), and compare every checksum with the published output's."""
    def finish(out: Path, go_version: str, binaries: Sequence[str]) -> dict[str, str]:
        return job.finish(out, go_version, binaries, None).sums

    ws, final = job.ws, job.final
    result.reproducible = verify_reproducible(engines.containers, job.plan, ws,
                                              job.prepared.tree, final, finish)
    if differ := result.reproducible["differ"]:
        kept = ws.rel(Path(result.reproducible["kept"]))
        raise NotReproducibleError(
            f"not reproducible: {', '.join(differ)} differ between {ws.rel(final)} and a "
            f"second build of the same tree at another path (kept in {kept})",
            hint=f"compare them, e.g. cmp -l {ws.rel(final)}/{differ[0]} {kept}/{differ[0]}; "
                 f"{ws.rel(final)} is complete and published")
