"""Each patch of a series seen working on the running local cluster, as the patch declares.

A patch names the proof it should pass in its own ``Proof:`` trailer (docs/patches.md), so
the proof stays attached when the series is reordered, renamed, exported or rebased, and
another distro repo declares its own without code. ``declared_proofs`` reads them from the
series; ``prove_series`` runs each with its kind from ``proofkinds`` (every command inside a
node: curl, kubectl with the node's admin.conf, cat of cgroup files; never on the host). The
kinds that look at a pod share one pod, started once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from tkedistro.cluster.lifecycle import ClusterState
from tkedistro.cluster.proofkinds import needs_pod, run_proof
from tkedistro.cluster.proofkinds.base import ProofContext
from tkedistro.cluster.proofkinds.pod import proof_pod
from tkedistro.core.workspace import Workspace
from tkedistro.engine.protocols import NodeEngine
from tkedistro.model.manifest import Manifest
from tkedistro.model.patches import parse_patch
from tkedistro.model.proofspec import PROOF_TRAILER, Spec, parse_proof


@dataclass(frozen=True)
class Declared:
    """The proof one patch of the series declares."""

    patch: str  # the patch's file name, as the report shows it
    spec: Spec


@dataclass(frozen=True)
class Proof:
    patch: str  # the patch file name
    kind: str  # the proof kind it declared
    check: str  # what was checked, in a sentence
    passed: bool
    evidence: str  # what the cluster answered, short

    def to_json(self) -> dict[str, object]:
        return {"patch": self.patch, "kind": self.kind, "check": self.check,
                "passed": self.passed, "evidence": self.evidence}


def declared_proofs(ws: Workspace, manifest: Manifest) -> list[Declared]:
    """The ``Proof:`` trailer of each patch of the series that has one, in series order
    (``PatchFormatError`` for one that declares a proof wrongly, as ``validate`` says)."""
    found = []
    for index, entry in enumerate(manifest.patches):
        where = f"{ws.rel(manifest.path)}: patches[{index}].file"
        value = parse_patch(ws.repo_file(entry.file, where), entry.file).trailer(PROOF_TRAILER)
        if value is not None:
            found.append(Declared(PurePosixPath(entry.file).name,
                                  parse_proof(value, entry.file)))
    return found


def prove_series(engine: NodeEngine, state: ClusterState,
                 declared: Sequence[Declared]) -> list[Proof]:
    """One ``Proof`` per declared proof, in the order given: the ones without a pod first,
    then the others around one pod of the check's own."""
    ctx = ProofContext(engine, state.nodes[0])
    done = {i: _run(ctx, d) for i, d in enumerate(declared) if not needs_pod(d.spec)}
    later = [i for i, d in enumerate(declared) if needs_pod(d.spec)]
    if later:
        with proof_pod(engine, ctx.control) as pod:
            with_pod = ProofContext(engine, ctx.control, pod)
            done |= {i: _run(with_pod, declared[i]) for i in later}
    return [done[i] for i in range(len(declared))]


def _run(ctx: ProofContext, declared: Declared) -> Proof:
    outcome = run_proof(ctx, declared.spec)
    return Proof(declared.patch, declared.spec.kind, outcome.check, outcome.passed,
                 outcome.evidence)
