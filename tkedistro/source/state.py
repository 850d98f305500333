"""What ``tkedistro source`` records about a prepared tree (``_src/.<release>.tkedistro/
source.json``): which series entry made which commit, the stamp of the inputs, and the mirror
packs the tree borrowed from. Cheap to import: the unchanged re-run reads it first, so it is
checked by hand (no pydantic): a version, hex SHAs, tags, repo paths through the path policy;
anything else is ``DamagedStateError`` (exit 17) with how to recover."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tkedistro.core.errors import CommandError
from tkedistro.core.files import write_json
from tkedistro.core.statefile import StateFile, kind_of
from tkedistro.core.workspace import ReleasePaths
from tkedistro.git.packs import pack_damage
from tkedistro.git.probe import StatusProbe
from tkedistro.git.repo import Repo
from tkedistro.model.refs import COMMIT_PATTERN, TAG_PATTERN

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
    """What ``source.json`` records (None when there is none); ``DamagedStateError`` (exit
    17) when it holds anything this tool does not write, each path through the path policy."""
    file = state_file(paths)
    try:
        data = file.read()
    except FileNotFoundError:
        return None
    return _checked(file, data, paths.root)


def state_file(paths: ReleasePaths) -> StateFile:
    shown = f"{paths.layout.state}/{paths.source_state.name}"
    return StateFile(
        paths.source_state, shown, f"the record of {paths.layout.src}",
        recovery=f"delete {shown} and run `tkedistro source {paths.name}`: it applies the "
                 f"series again from the pinned commit (work in progress in {paths.layout.src} "
                 "is refused as ever, or saved to a backup ref first with --force)")


_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(COMMIT_PATTERN)
_TAG = re.compile(f"(?:{TAG_PATTERN})?")
_PACK = re.compile(r"/(?:[^\0-\x1f\x7f]*/)?pack-[0-9a-f]{40,64}\.idx")
_REQUIRED = ("version", "base", "head", "stamp", "applied")
_OPTIONAL = ("tag", "url", "inputs", "packs")
_METHODS = ("applied", "3-way")


def _checked(file: StateFile, data: dict[str, Any], root: Path) -> State:
    """The hand check of ``source.json`` (no pydantic: the up-to-date path reads it)."""
    file.keys(data, "", _REQUIRED, _OPTIONAL)
    if type(data["version"]) is not int or data["version"] != STATE_VERSION:
        raise file.damaged([f"version: {kind_of(data['version'])} is not {STATE_VERSION}, "
                            "the one this tkedistro writes"])
    base, head = (_matching(file, data, key, _COMMIT, "a commit SHA") for key in ("base", "head"))
    stamp = None if data["stamp"] is None else _matching(file, data, "stamp", _SHA256,
                                                         "a sha256 or null")
    inputs = None if data.get("inputs") is None else _matching(file, data, "inputs", _SHA256,
                                                               "a sha256 or null")
    entries = file.value(data, "applied", list, expected="a list")
    applied = tuple(_applied(file, entry, f"applied[{n}]", root)
                    for n, entry in enumerate(entries))
    packs = file.value(data, "packs", list, expected="a list") if "packs" in data else []
    for n, pack in enumerate(packs):
        _matching(file, {f"packs[{n}]": pack}, f"packs[{n}]", _PACK,
                  "the absolute path of a pack index (pack-<sha>.idx)")
    tag = _matching(file, data, "tag", _TAG, "a tag like v1.20.0") if "tag" in data else ""
    url = file.value(data, "url", str, expected="a string") if "url" in data else ""
    return State(base, head, stamp, applied, tag=tag, url=url, inputs=inputs, packs=tuple(packs))


def _applied(file: StateFile, entry: object, where: str, root: Path) -> Applied:
    if not isinstance(entry, dict):
        raise file.damaged([f"{where}: expected an object, got {kind_of(entry)}"])
    file.keys(entry, where, ("key", "file", "subject", "method", "commit"))
    key = _matching(file, entry, "key", _SHA256, "a sha256", where)
    name = file.in_repo(root, file.value(entry, "file", str, where, "a repo path"),
                        f"{where}.file")
    subject = file.value(entry, "subject", str, where, "a string")
    method = file.value(entry, "method", str, where, "applied or 3-way")
    if method not in _METHODS:
        raise file.damaged([f"{where}.method: expected applied or 3-way, got {kind_of(method)}"])
    commit = _matching(file, entry, "commit", _COMMIT, "a commit SHA", where)
    return Applied(key, name, subject, method, commit)


def _matching(file: StateFile, data: dict[str, Any], key: str, pattern: re.Pattern[str],
              expected: str, where: str = "") -> str:
    value = data[key]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        shown = f"{where}.{key}" if where else key
        raise file.damaged([f"{shown}: expected {expected}, got {kind_of(value)}"])
    return value


def write_state(paths: ReleasePaths, state: State) -> None:
    write_json(paths.source_state, {"version": STATE_VERSION, **asdict(state)})


def recorded_commits(paths: ReleasePaths) -> set[str]:
    """The commits ``source.json`` says this tool made (one per applied patch)."""
    state = load_state(paths)
    return {a.commit for a in state.applied} if state else set()


def tree_matches(tree: Repo, state: State, paths: ReleasePaths,
                 probe: StatusProbe | None = None) -> bool:
    """HEAD is the recorded one and nothing is changed, untracked or half-done in the tree
    (as ``probe``, the status started when the command started, saw it, if given)."""
    if paths.source_applying.exists():
        return False
    try:
        if not tree.exists() or tree.operation_in_progress() is not None:
            return False
        if not mirror_intact(tree, state):
            return False  # the cache mirror lost objects: the full run repairs it
        head, changed = tree.head_and_status(probe)  # one git run
        return head == state.head and not changed
    except CommandError:  # e.g. the cache (and the objects it lends) was deleted
        return False


def mirror_intact(tree: Repo, state: State) -> bool:
    """The packs the tree borrowed from are all there, none cut short (no git run needed)."""
    if any(not Path(idx).is_file() for idx in state.packs):
        return False
    return not any(pack_damage(objects) for objects in tree.borrowed_objects())
