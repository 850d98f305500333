"""The one protocol every proof kind implements, and what a kind is given and gives back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from tkedistro.cluster.proofkinds.pod import ProofPod
from tkedistro.core.errors import ClusterError
from tkedistro.engine.protocols import NodeEngine

S = TypeVar("S")


@dataclass(frozen=True)
class ProofContext:
    """What every check runs against: the engine of the node containers, the control-plane
    node (where kubectl and the control plane's ports are), and the check's own pod when the
    kind asked for one."""

    engine: NodeEngine
    control: str
    pod: ProofPod | None = None

    def need_pod(self) -> ProofPod:
        if self.pod is None:  # the registry's needs_pod says which kinds get one
            raise ClusterError("a proof that looks at a pod ran without the check's pod")
        return self.pod


@dataclass(frozen=True)
class Outcome:
    check: str  # what was checked, in a sentence
    passed: bool
    evidence: str  # what the cluster answered, short


@dataclass(frozen=True)
class ProofKind(Generic[S]):
    """A generic check, parameterised by the spec a patch's ``Proof:`` trailer declares
    (``tkedistro.model.proofspec``). Each module of this folder gives one: ``NEEDS_POD``
    (whether it looks at the pod ``proof_pod`` starts, one pod for all) and ``prove``
    (runs inside the nodes and never raises for what the cluster answered)."""

    spec: type[S]
    needs_pod: bool
    prove: Callable[[ProofContext, S], Outcome]
