"""What ``tkedistro source`` records about a prepared tree (``_src/.<release>.tkedistro/
source.json``): which series entry made which commit, the stamp of the inputs, and the mirror
packs the tree borrowed from. Cheap to import: the unchanged re-run reads it first."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from tkedistro.core.errors import CommandError
from tkedistro.core.files import write_atomic
from tkedistro.core.workspace import ReleasePaths
from tkedistro.git.packs import pack_damage
from tkedistro.git.repo import Repo

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


def load_state(paths: ReleasePaths) -> State | None:
    try:
        data = json.loads(paths.source_state.read_text(encoding="utf-8"))
        if data.get("version") != STATE_VERSION:
            return None
        applied = tuple(Applied(**a) for a in data["applied"])
        return State(data["base"], data["head"], data["stamp"], applied,
                      tag=data.get("tag", ""), url=data.get("url", ""), inputs=data.get("inputs"),
                      packs=tuple(data.get("packs", ())))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_state(paths: ReleasePaths, state: State) -> None:
    data = {"version": STATE_VERSION, **asdict(state)}
    write_atomic(paths.source_state, (json.dumps(data, indent=1) + "\n").encode())


def recorded_commits(paths: ReleasePaths) -> set[str]:
    """The commits ``source.json`` says this tool made (one per applied patch)."""
    state = load_state(paths)
    return {a.commit for a in state.applied} if state else set()


def inputs_digest(manifest: Path, files: list[Path]) -> str:
    digest = hashlib.sha256(manifest.read_bytes())
    for path in files:
        digest.update(f"\0{path}\0".encode())
        digest.update(path.read_bytes() if path.is_file() else b"\0missing")
    return digest.hexdigest()


def tree_matches(tree: Repo, state: State, paths: ReleasePaths) -> bool:
    """HEAD is the recorded one and nothing is changed, untracked or half-done in the tree."""
    if paths.source_applying.exists():
        return False
    try:
        if not tree.exists() or tree.head() != state.head:
            return False
        if not mirror_intact(tree, state):
            return False  # the cache mirror lost objects: the full run repairs it
        return not tree.status() and tree.operation_in_progress() is None
    except CommandError:  # e.g. the cache (and the objects it lends) was deleted
        return False


def mirror_intact(tree: Repo, state: State) -> bool:
    """The packs the tree borrowed from are all there, none cut short (no git run needed)."""
    if any(not Path(idx).is_file() for idx in state.packs):
        return False
    return not any(pack_damage(objects) for objects in tree.borrowed_objects())
