"""What ``tkedistro cluster prove RELEASE`` does and prints, around ``proofs``.

Each run leaves ``_results/<release>/prove/<UTC time>-<distro version>/``: ``summary.json``
(the report) and ``running-images.json`` (the shipped images the nodes run, digests read back
from them, against ``images.json``: ``runningimages``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tkedistro.cluster import lifecycle
from tkedistro.cluster.proofs import Proof, declared_proofs, prove_series
from tkedistro.cluster.runningimages import RECORD_NAME, RunningImages, read_running_images
from tkedistro.cluster.shippedimages import release_images
from tkedistro.core import files
from tkedistro.core.errors import ClusterError, PatchProofError
from tkedistro.core.workspace import ReleaseLayout, Workspace
from tkedistro.engine.protocols import NodeEngine

PROVE_RESULTS = "prove"  # under _results/<release>


@dataclass(frozen=True)
class ProofReport:
    release: str
    cluster: str
    proofs: tuple[Proof, ...]
    unproven: tuple[str, ...]  # patches of the series that declare no proof
    current: bool  # the cluster runs the build in _output/<release>
    running_images: RunningImages
    results_dir: Path | None = None  # where summary.json and running-images.json are

    @property
    def failed(self) -> list[Proof]:
        return [p for p in self.proofs if not p.passed]

    def to_json(self) -> dict[str, object]:
        return {"release": self.release, "cluster": self.cluster, "ok": not self.failed,
                "runs_current_build": self.current,
                "proofs": [p.to_json() for p in self.proofs], "unproven": list(self.unproven),
                "running_images": self.running_images.to_json(),
                "results_dir": str(self.results_dir) if self.results_dir else None}

    def format_text(self) -> str:
        lines = [f"patches of {self.release} on cluster {self.cluster}:"]
        for p in self.proofs:
            lines += [f"  {'PASS' if p.passed else 'FAIL'}  {p.patch}", f"        {p.check}",
                      f"        evidence: {p.evidence}"]
        lines += [f"  (no check on the cluster)  {u}" for u in self.unproven]
        lines.append(f"  {self.running_images.format_text()}")
        if self.results_dir is not None:
            lines.append(f"  results: {self.results_dir}")
        if not self.current:
            output = ReleaseLayout(self.release).output
            lines.append(f"note: the cluster runs another build than {output}; "
                         f"`tkedistro cluster up {self.release}` to prove the current one")
        return "\n".join(lines)

    def check(self) -> None:
        """``PatchProofError`` naming each patch whose effect was not seen."""
        if self.failed:
            names = ", ".join(p.patch for p in self.failed)
            raise PatchProofError(
                f"{len(self.failed)} of {len(self.proofs)} patches of {self.release} did not "
                f"show their effect on cluster {self.cluster}: {names}",
                hint="each FAIL above says what the cluster answered instead")


def prove(ws: Workspace, release: str, engine: NodeEngine) -> ProofReport:
    """Run the proofs the series' patches declare on the release's running cluster
    (``cluster up`` first)."""
    from tkedistro.model.manifest import load_release

    manifest = load_release(ws, release)
    declared = declared_proofs(ws, manifest)
    shipped = release_images(ws, manifest)
    config = lifecycle.cluster_config(ws, release, manifest.distro_version)
    with lifecycle.cluster_lock(ws, config):
        found = lifecycle.status(ws, release, engine)
        if found.state is None or not found.up:
            raise ClusterError(f"the cluster of {release} ({found.name}) is not up",
                               hint=f"start it: tkedistro cluster up {release}")
        proofs = prove_series(engine, found.state, declared)
        running = read_running_images(engine, config, found.state.nodes, shipped)
    proven = {d.patch for d in declared}
    patches = [PurePosixPath(p.file).name for p in manifest.patches]
    bin_dir = ws.release(release).bin_dir()
    current = bin_dir.is_dir() and lifecycle.runs_current(ws, found.state, bin_dir)
    report = ProofReport(release, found.state.name, tuple(proofs),
                         tuple(p for p in patches if p not in proven), current, running)
    return write_results(ws, report, manifest.distro_version)


def write_results(ws: Workspace, report: ProofReport, version: str,
                  now: float | None = None) -> ProofReport:
    """The report with its results folder, made and written (``summary.json``,
    ``running-images.json``)."""
    base = files.ensure_dir(ws.results_dir(report.release) / PROVE_RESULTS)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    name, n = f"{stamp}-{version}", 1
    while os.path.lexists(base / name):  # two runs in one second
        n += 1
        name = f"{stamp}-{version}.{n}"
    folder = files.ensure_dir(base / name)
    done = ProofReport(report.release, report.cluster, report.proofs, report.unproven,
                       report.current, report.running_images, folder)
    files.write_json(folder / RECORD_NAME, report.running_images.to_json())
    files.write_json(folder / "summary.json", done.to_json())
    return done
