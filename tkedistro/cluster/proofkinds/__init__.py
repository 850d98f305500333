"""The generic check kinds a patch's ``Proof:`` trailer can name, one module each.

Each module gives ``NEEDS_POD`` and ``prove(ctx, spec)`` for the spec class of the same
kind in ``tkedistro.model.proofspec`` (which also says what parameters it takes, for
``validate``). To add a kind: its spec class there, a module here, a row in ``KINDS``, and
a row in the table of docs/patches.md.
"""

from __future__ import annotations

from typing import Any

from tkedistro.cluster.proofkinds import cgroupvalue, componenthttp, metriclabels
from tkedistro.cluster.proofkinds.base import Outcome, ProofContext, ProofKind
from tkedistro.model.proofspec import CgroupValue, ComponentHttp, MetricLabels, Spec

KINDS: dict[str, ProofKind[Any]] = {
    "component-http": ProofKind(ComponentHttp, componenthttp.NEEDS_POD, componenthttp.prove),
    "metric-labels": ProofKind(MetricLabels, metriclabels.NEEDS_POD, metriclabels.prove),
    "cgroup-value": ProofKind(CgroupValue, cgroupvalue.NEEDS_POD, cgroupvalue.prove),
}


def needs_pod(spec: Spec) -> bool:
    return KINDS[spec.kind].needs_pod


def run_proof(ctx: ProofContext, spec: Spec) -> Outcome:
    """Run the kind ``spec`` declares."""
    return KINDS[spec.kind].prove(ctx, spec)
