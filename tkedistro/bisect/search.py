"""The binary search over the positions of a series, as ``git bisect`` does it.

Position ``k`` is the pinned upstream plus the first ``k`` patches; ``good`` passes the check,
``bad`` fails it. Between a good and a bad position, the untested position nearest the middle
is checked next; one the check skips (exit 125) is set aside and its neighbours are tried.
Pure: the caller's ``probe`` checks out and runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

GOOD, BAD, SKIP = "good", "bad", "skip"
SKIP_EXIT = 125  # what `git bisect run` takes for "cannot test this one"


def outcome_of(exit_code: int) -> str:
    """A check's exit status as ``git bisect run`` reads it: 0 good, 125 skip, else bad."""
    return GOOD if exit_code == 0 else SKIP if exit_code == SKIP_EXIT else BAD


@dataclass(frozen=True)
class Bounds:
    """Where the search ended: ``good`` passes, ``bad`` fails; ``skipped`` lie between."""

    good: int
    bad: int
    skipped: tuple[int, ...] = ()

    @property
    def found(self) -> bool:
        """The first bad position is known: nothing untested lies between."""
        return not self.skipped


def next_position(good: int, bad: int, skipped: set[int]) -> int | None:
    """The untested position between ``good`` and ``bad`` nearest their middle (the lower
    on a tie); None when every one between is skipped or there is none."""
    candidates = [p for p in range(good + 1, bad) if p not in skipped]
    if not candidates:
        return None
    middle = (good + bad) / 2
    return min(candidates, key=lambda p: (abs(p - middle), p))


def narrow(good: int, bad: int, probe: Callable[[int], str]) -> Bounds:
    """Narrow ``good`` (passes) .. ``bad`` (fails) down to adjacent positions, probing
    each chosen position once; positions the probe skips stay between when nothing else
    is left."""
    skipped: set[int] = set()
    while (at := next_position(good, bad, skipped)) is not None:
        outcome = probe(at)
        if outcome == GOOD:
            good = at
        elif outcome == BAD:
            bad = at
        else:
            skipped.add(at)
    return Bounds(good, bad, tuple(sorted(p for p in skipped if good < p < bad)))
