"""What ``tkedistro source`` records about a prepared tree (``_src/.<release>.tkedistro/
source.json``): which series entry made which commit, the stamp of the inputs, and the mirror
packs the tree borrowed from. Cheap to import: the unchanged re-run reads it first."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_VERSION = 1


@dataclass(frozen=True)
class Input:
    """One series entry as given: its key changes whenever its commit could change."""

    position: int
    file: str
    path: Path
    subject: str | None
    key: str


@dataclass(frozen=True)
class Series:
    """The series as this run sees it: its entries, their stamp (what the commits depend on)
    and the digest of the manifest's and patches' bytes (what the quick re-run compares)."""

    inputs: tuple[Input, ...]
    stamp: str
    digest: str


@dataclass(frozen=True)
class Applied:
    key: str
    file: str
    subject: str
    method: str
    commit: str


@dataclass(frozen=True)
class State:
    base: str
    head: str
    stamp: str | None  # None while a run is unfinished or failed
    applied: tuple[Applied, ...]
    tag: str = ""
    url: str = ""
    inputs: str | None = None  # digest of the manifest's and the patches' bytes when done
    packs: tuple[str, ...] = ()  # the mirror's packs the tree borrowed from when done


def stamp_of(base: str, inputs: list[Input]) -> str:
    text = json.dumps([STATE_VERSION, base, [i.key for i in inputs]])
    return hashlib.sha256(text.encode()).hexdigest()


def load_state(state_dir: Path) -> State | None:
    try:
        data = json.loads((state_dir / "source.json").read_text(encoding="utf-8"))
        if data.get("version") != STATE_VERSION:
            return None
        applied = tuple(Applied(**a) for a in data["applied"])
        return State(data["base"], data["head"], data["stamp"], applied,
                      tag=data.get("tag", ""), url=data.get("url", ""), inputs=data.get("inputs"),
                      packs=tuple(data.get("packs", ())))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_state(state_dir: Path, state: State) -> None:
    data = {"version": STATE_VERSION, **asdict(state)}
    tmp = state_dir / "source.json.tmp"
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tmp.replace(state_dir / "source.json")


def recorded_commits(state_dir: Path) -> set[str]:
    """The commits ``source.json`` says this tool made (one per applied patch)."""
    state = load_state(state_dir)
    return {a.commit for a in state.applied} if state else set()
