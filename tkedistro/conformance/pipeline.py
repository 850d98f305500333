"""``tkedistro conformance RELEASE``: the suite built from the same tree, run against an
existing cluster (``--kubeconfig``) or the release's local multi-node cluster
(``tkedistro.cluster``: the one ``tkedistro cluster up`` started when it runs the current
binaries, else one started for the run and removed after it). A local cluster runs the
release's shipped images (``_output/<release>/images/*.oci.tar``); which ones ran, with the
digests read back from its nodes, is recorded in the results (``running-images.json``).

Results go to ``_results/<release>/conformance/<run>/`` (``archive.py``), which a build leaves
alone.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tkedistro.cluster import lifecycle, logs
from tkedistro.cluster.config import NODE_REGISTRY, ClusterConfig
from tkedistro.cluster.host import missing_binaries, require_root
from tkedistro.cluster.lifecycle import NODE_BINARIES
from tkedistro.cluster.runningimages import RECORD_NAME, RunningImages, read_running_images
from tkedistro.cluster.shippedimages import release_images
from tkedistro.cluster.supportimages import support_images
from tkedistro.conformance import archive
from tkedistro.conformance.offline import OfflineImages, prepare_images, skip_regex
from tkedistro.conformance.report import BundleContext, Product, write_bundle
from tkedistro.conformance.results import Cause, SuiteResults, parse_junit
from tkedistro.conformance.suite import (
    CONFORMANCE_FOCUS,
    QUICK_FOCUS,
    SMOKE_FOCUS,
    SuiteRun,
    run_suite,
)
from tkedistro.core import console
from tkedistro.core.errors import ClusterError, ConformanceFailedError, Interrupted
from tkedistro.core.files import write_json
from tkedistro.core.locks import output_lock
from tkedistro.core.workspace import Workspace
from tkedistro.engine.engines import Engines
from tkedistro.engine.protocols import NodeEngine
from tkedistro.engine.registry import LocalRegistry
from tkedistro.images.push import ArchivedImage
from tkedistro.model.manifest import Manifest, load_release

TOOLS = ("e2e.test", "ginkgo", "kubectl")
CLUSTER_LOGS = "cluster-logs"  # in a run's results folder: the logs of a failed local cluster
DEFAULT_NODES = 4


@dataclass(frozen=True)
class ConformanceOptions:
    kubeconfig: Path | None = None  # an existing cluster; None means a local cluster
    kubeconfig_from: str = "--kubeconfig"  # where it came from: "--kubeconfig", "$KUBECONFIG"
    focus: str | None = None
    skip: str = ""
    quick: bool = False
    smoke: bool = False  # the real tier's subset: quick + a DNS spec + a two-node [Serial] spec
    timeout_min: float = 90.0
    nodes: int = DEFAULT_NODES  # ginkgo nodes for the specs not tagged [Serial]; 1: all serially
    cluster_nodes: int = lifecycle.DEFAULT_NODES  # node containers of a cluster made for the run
    keep_cluster: bool = False  # leave a cluster made for the run up afterwards
    retain: bool = False  # leave it up when the run failed (TKEDISTRO_KEEP_CLUSTER=1 too)
    product: Product | None = None
    build: bool = True  # build what is missing: tkedistro build RELEASE --with-conformance-tools
    upstream: str | None = None  # for that build: fetch from this mirror
    repo_list: Path | None = None  # KUBE_TEST_REPO_LIST for --kubeconfig runs

    @property
    def selected_focus(self) -> str:
        if self.focus:
            return self.focus
        return SMOKE_FOCUS if self.smoke else QUICK_FOCUS if self.quick else CONFORMANCE_FOCUS


@dataclass(frozen=True)
class ConformanceResult:
    release: str
    report_dir: Path
    results: SuiteResults
    cluster: str
    timed_out: bool = False
    loaded_images: tuple[str, ...] = ()
    unavailable_images: tuple[str, ...] = ()
    files: tuple[Path, ...] = field(default=())
    build: archive.BuildRef | None = None  # the build whose binaries ran
    running_images: RunningImages | None = None  # what a local cluster's nodes ran

    @property
    def ok(self) -> bool:
        return self.results.failed == 0 and not self.timed_out and self.results.ran > 0

    def to_json(self) -> dict[str, object]:
        return {
            "step": "conformance", "release": self.release, "ok": self.ok,
            "cluster": self.cluster, "report_dir": str(self.report_dir),
            "timed_out": self.timed_out,
            "build": self.build.to_json() if self.build else None, **self.results.to_json(),
            "loaded_images": list(self.loaded_images),
            "unavailable_images": list(self.unavailable_images),
            "files": [str(f) for f in self.files],
            "running_images": (self.running_images.to_json()
                               if self.running_images is not None else None),
        }

    def format_text(self) -> str:
        lines = [f"conformance {self.release} on {self.cluster}: {self.results.format_text()}"]
        if self.timed_out:
            lines.append("  the suite was stopped at the overall timeout")
        if self.unavailable_images:
            lines.append(f"  images unavailable offline ({len(self.unavailable_images)}): "
                         + ", ".join(self.unavailable_images))
        lines.append(f"  results: {self.report_dir}")
        if self.build:
            lines.append(f"  build tested: {self.build.format_text()}")
        if self.running_images is not None:
            lines.append(f"  {self.running_images.format_text()}")
        return "\n".join(lines)


def build_command(release: str) -> str:
    return f"tkedistro build {release} --with-conformance-tools"


def ensure_binaries(ws: Workspace, manifest: Manifest, options: ConformanceOptions,
                    bin_dir: Path, engines: Engines) -> None:
    """Build the conformance tools (and the cluster's components) when any is missing.

    They come from one build of the same patched tree, so they carry the same version stamp
    as the binaries under test; an output that has them all is used as it is. The build is
    the release operation ``tkedistro build`` runs: it publishes the same output (binaries and
    release artifacts).
    """
    release = manifest.release
    names = (*TOOLS, *(NODE_BINARIES if options.kubeconfig is None else ()))
    missing = missing_binaries(bin_dir, tuple(dict.fromkeys(names)))
    if not missing:
        return
    command = build_command(release)
    if not options.build:
        raise ClusterError(f"not built in {ws.rel(bin_dir)}: {', '.join(missing)}",
                           hint=f"build them from the same tree first: {command}")
    if options.kubeconfig is None:
        require_root()  # refuse before a long build, not after it
    from tkedistro.build.pipeline import BuildOptions
    from tkedistro.release.operation import build_release

    console.info(f"missing in {ws.rel(bin_dir)}: {', '.join(missing)}; running {command}")
    build_release(ws, manifest, BuildOptions(upstream=options.upstream, conformance_tools=True),
                  engines)


def _suite(options: ConformanceOptions, bin_dir: Path, kubeconfig: Path,
           report_dir: Path, repo_list: Path | None, skip: str) -> bool:
    run = SuiteRun(e2e_test=bin_dir / "e2e.test", kubectl=bin_dir / "kubectl",
                   kubeconfig=kubeconfig, report_dir=report_dir, focus=options.selected_focus,
                   skip=skip, timeout_s=options.timeout_min * 60,
                   nodes=options.nodes, ginkgo=bin_dir / "ginkgo", repo_list=repo_list)
    with console.step("conformance", f"focus {run.focus}"):
        return run_suite(run)


def _command(release: str, options: ConformanceOptions) -> str:
    argv = ["tkedistro", "conformance", release]
    if options.kubeconfig:
        argv += ["--kubeconfig", str(options.kubeconfig)]
    if options.focus:
        argv += ["--focus", options.focus]
    if options.skip:
        argv += ["--skip", options.skip]
    if options.quick:
        argv.append("--quick")
    if options.smoke:
        argv.append("--smoke")
    if options.repo_list:
        argv += ["--repo-list", str(options.repo_list)]
    if options.nodes != DEFAULT_NODES:
        argv += ["--nodes", str(options.nodes)]
    return shlex.join(argv)


def run_conformance(ws: Workspace, release: str, options: ConformanceOptions,
                    engines: Engines) -> ConformanceResult:
    """Run the suite; raises ``ConformanceFailedError`` when a selected spec failed."""
    manifest = load_release(ws, release)
    bin_dir = ws.release(release).bin_dir()  # the suite and the nodes run on this host
    ensure_binaries(ws, manifest, options, bin_dir, engines)
    if options.kubeconfig is None:
        release_images(ws, manifest)  # refused before the conformance images are made
    start = time.monotonic()
    offline: OfflineImages | None = None
    # a build must not swap _output/<release> while the suite or cluster runs from it
    with output_lock(ws, release, f"run conformance on {release}"):
        run = archive.start_run(ws, release, manifest.distro_version)
        report_dir = run.folder
        note = ""
        if options.kubeconfig is not None:
            cluster = f"existing cluster ({options.kubeconfig})"
            console.info(f"testing the existing cluster of {options.kubeconfig} (from "
                         f"{options.kubeconfig_from}; --local tests the release's local "
                         "cluster)")
            timed_out = _suite(options, bin_dir, options.kubeconfig, report_dir,
                               options.repo_list, options.skip)
            # written under the lock: the build files copied into the run are those that ran
            result = _finish(release, manifest, options, run, cluster, timed_out, offline)
        else:
            result, note = _run_local(ws, manifest, options, bin_dir, run, engines)
        archive.mark_latest(report_dir)
    console.verbose(f"conformance took {time.monotonic() - start:.0f}s")
    if not result.ok:
        raise ConformanceFailedError(result.format_text(), hint="\n".join(
            line for line in (f"details: {report_dir / 'e2e.log'}", note) if line))
    return result


def _run_local(ws: Workspace, manifest: Manifest, options: ConformanceOptions, bin_dir: Path,
               run: archive.Run, engines: Engines) -> tuple[ConformanceResult, str]:
    """The suite on the local cluster; a failed run leaves the cluster's logs in
    ``<results>/cluster-logs`` and a note naming them, ``cluster logs`` and ``cluster down``
    (under the error's hint when the suite could not run)."""
    release, report_dir = manifest.release, run.folder
    with LocalRegistry(registry_dir(ws)) as registry:
        offline = prepare_images(ws, release, manifest, registry.address, registry.has,
                                 served_as=NODE_REGISTRY, engines=engines, login=registry.login)
        _warn_missing(offline)
        shipped = release_images(ws, manifest)
        with _cluster(ws, manifest, options, bin_dir, registry, engines, report_dir,
                      shipped) as local:
            state = local.state
            cluster = (f"local cluster {state.name}: {len(state.nodes)} node "
                       f"containers, kubeadm; DNS: {state.dns}")
            console.info(f"testing the {cluster}")
            try:
                running = record_running_images(engines.nodes, local, shipped, report_dir)
                timed_out = _suite(options, bin_dir, Path(state.kubeconfig), report_dir,
                                   offline.repo_list, _with_skips(options.skip, offline))
                result = _finish(release, manifest, options, run, cluster, timed_out, offline,
                                 running)
            except Exception as exc:
                if not isinstance(exc, Interrupted):
                    logs.add_note(exc, local.fail(engines.nodes))
                raise
            return result, "" if result.ok else local.fail(engines.nodes)


@dataclass
class LocalCluster:
    """The local cluster of a run: made for it (removed after it, unless kept) or the one
    ``tkedistro cluster up`` started (always kept)."""

    state: lifecycle.ClusterState
    config: ClusterConfig
    made: bool
    options: ConformanceOptions
    logs_dir: Path
    failed: bool = False

    @property
    def kept(self) -> bool:
        return (not self.made or self.options.keep_cluster
                or (self.failed and lifecycle.retained(self.options.retain)))

    def fail(self, engine: NodeEngine) -> str:
        """Collect the cluster's logs; the note saying where they are and what to run."""
        self.failed = True
        collected = logs.collect_after_failure(engine, self.config, self.logs_dir)
        return logs.failure_note(self.config.release, collected, self.kept)


def record_running_images(engine: NodeEngine, local: LocalCluster,
                          shipped: list[ArchivedImage], report_dir: Path) -> RunningImages:
    """The shipped images the cluster's nodes run, read back from them, in
    ``<report_dir>/running-images.json``."""
    with console.step("conformance", "the shipped images the nodes run"):
        running = read_running_images(engine, local.config, local.state.nodes, shipped)
    write_json(report_dir / RECORD_NAME, running.to_json())
    (console.info if running.ok else console.warn)(running.format_text())
    return running


def registry_dir(ws: Workspace) -> Path:
    """The local registry's storage: in the user cache, so images survive between runs."""
    return ws.cache / "registry"


@contextmanager
def _cluster(ws: Workspace, manifest: Manifest, options: ConformanceOptions, bin_dir: Path,
             registry: LocalRegistry, engines: Engines, report_dir: Path,
             shipped: list[ArchivedImage]) -> Iterator[LocalCluster]:
    """The running cluster of the release when it runs these binaries, else a new one for
    this run (removed afterwards unless ``keep_cluster``, or ``retain`` after a failure).
    Logs of a failed cluster go into ``<report_dir>/cluster-logs``."""
    release = manifest.release
    config = lifecycle.cluster_config(ws, release, manifest.distro_version)
    logs_dir = report_dir / CLUSTER_LOGS
    running = lifecycle.status(ws, release, engines.nodes)
    if running.up and running.state and lifecycle.runs_current(ws, running.state, bin_dir):
        console.info(f"using the running cluster {running.name} (tkedistro cluster up)")
        yield LocalCluster(running.state, config, False, options, logs_dir)
        return
    require_root()
    state = lifecycle.up(ws, manifest, bin_dir,
                         nodes=options.cluster_nodes, registry=registry, engines=engines,
                         support=support_images(ws, release, manifest, engines),
                         shipped=shipped, retain=options.retain, logs_dir=logs_dir)
    local = LocalCluster(state, config, True, options, logs_dir)
    try:
        yield local
    finally:
        if local.kept:
            console.info(f"cluster {state.name} left up; remove it with "
                         f"`tkedistro cluster down {release}`")
        else:
            lifecycle.down(ws, release, engines.nodes)


def _warn_missing(offline: OfflineImages) -> None:
    for m in offline.missing:
        console.warn(f"image {m.ref} unavailable ({m.why}): skipping {len(m.specs)} spec(s) "
                     "that need it instead of letting them wait for it")


def _with_skips(skip: str, offline: OfflineImages) -> str:
    extra = skip_regex(offline.skipped_specs)
    return "|".join(part for part in (skip, extra) if part)


def _finish(release: str, manifest: Manifest, options: ConformanceOptions, run: archive.Run,
            cluster: str, timed_out: bool, offline: OfflineImages | None,
            running: RunningImages | None = None) -> ConformanceResult:
    loaded = [i.pushed for i in offline.images] if offline else []
    unavailable = [m.ref for m in offline.missing] if offline else []
    report_dir = run.folder
    results = parse_junit(report_dir / "junit_01.xml")
    product = options.product or Product(name="tkedistro", version=manifest.distro_version)
    ctx = BundleContext(product=product, manifest=manifest, results=results, cluster=cluster,
                        focus=options.selected_focus, skip=options.skip,
                        unavailable_images=tuple(unavailable), command=_command(release, options))
    files = write_bundle(ctx, report_dir)
    result = ConformanceResult(release, report_dir, results, cluster, timed_out,
                               tuple(loaded), tuple(unavailable), tuple(files), run.build,
                               running)
    write_json(report_dir / "summary.json", result.to_json())
    return result


__all__ = ["Cause", "ConformanceOptions", "ConformanceResult", "run_conformance"]
