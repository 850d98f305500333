"""The in-progress state of a rebase: JSON in ``ws.state_dir(release)``, written atomically.

Before a rebase touches anything it copies the manifest and every file of the release's
patch folder (their bytes) and records ``_src``'s HEAD and branch, so ``--abort`` can put
them back byte for byte, even after a crash or a reboot.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from tkedistro.core.files import write_atomic
from tkedistro.core.rebasemark import read_rebase_state
from tkedistro.core.workspace import Workspace
from tkedistro.series.replay import PatchOutcome

STATE_VERSION = 1


class Phase(StrEnum):
    """Where a rebase is: replaying patches, stopped at a conflict, or writing the result."""

    REPLAY = "replay"
    CONFLICT = "conflict"
    FINALIZE = "finalize"


@dataclass
class RebaseState:
    release: str
    onto_tag: str
    onto_commit: str
    old_tag: str
    old_commit: str
    url: str
    series: list[str]  # repo-relative patch files, in order
    subjects: dict[str, str]  # file -> subject from the manifest (plain diffs)
    src_existed: bool
    orig_head: str | None
    orig_branch: str | None
    distro_version: str
    position: int = 0  # index into series of the patch being replayed
    pre_head: str | None = None  # HEAD before the current patch
    phase: Phase = Phase.REPLAY
    outcomes: list[PatchOutcome] = field(default_factory=list)
    version: int = STATE_VERSION
    # the tree of _src (work tree included) as the conflict left it: --abort backs up only
    # edits made after that
    conflict_tree: str | None = None
    new_line: bool = False  # `tkedistro new` made the manifest and patches: --abort removes them

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcomes"] = [o.to_json() for o in self.outcomes]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RebaseState:
        """The state ``data`` describes; ValueError for a version, phase or position this
        tool does not know (a rebase would finalize or replay from the wrong place)."""
        data = dict(data)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"version {data.get('version')!r} is not {STATE_VERSION}, the "
                             "one this tkedistro writes")
        phase = data.get("phase", Phase.REPLAY)
        if phase not in set(Phase):
            raise ValueError(f"unknown phase {phase!r} (known: "
                             f"{', '.join(p.value for p in Phase)})")
        data["phase"] = Phase(phase)
        data["outcomes"] = [PatchOutcome.from_json(o) for o in data.get("outcomes", [])]
        state = cls(**data)
        if not isinstance(state.position, int) or not 0 <= state.position <= len(state.series):
            raise ValueError(f"position {state.position!r} is outside the series of "
                             f"{len(state.series)} patch(es)")
        return state


def state_path(ws: Workspace, release: str) -> Path:
    return ws.release(release).rebase_state


def backup_dir(ws: Workspace, release: str) -> Path:
    return ws.release(release).rebase_backup


def save_state(ws: Workspace, state: RebaseState) -> None:
    text = json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n"
    write_atomic(state_path(ws, state.release), text.encode())


def load_state(ws: Workspace, release: str) -> RebaseState:
    return read_rebase_state(ws.release(release), RebaseState.from_json)


@dataclass(frozen=True)
class NewLine:
    """What ``tkedistro new`` wrote before the rebase began: --abort takes it away again."""

    files: tuple[str, ...]  # names written into the patch folder
    patches_dir_existed: bool


def snapshot(ws: Workspace, release: str, new_line: NewLine | None = None) -> None:
    """Copy the manifest and the patch folder's files (bytes) into the backup folder;
    for a ``new_line``, record that the manifest and its files were not there before."""
    dest = backup_dir(ws, release)
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "patches").mkdir(parents=True)
    if new_line is None:
        shutil.copyfile(ws.manifest_path(release), dest / "manifest.yaml")
    src = ws.patches_dir(release)
    made = set(new_line.files) if new_line else set()
    names = sorted(p.name for p in src.iterdir() if p.is_file() and p.name not in made) \
        if src.is_dir() else []
    for name in names:
        shutil.copyfile(src / name, dest / "patches" / name)
    existed = new_line.patches_dir_existed if new_line else src.is_dir()
    listing = {"patches_dir_existed": existed, "files": names,
               "manifest_existed": new_line is None}
    write_atomic(dest / "listing.json", json.dumps(listing).encode())


def restore(ws: Workspace, release: str) -> None:
    """Put the manifest and patch folder back exactly as ``snapshot`` found them."""
    dest = backup_dir(ws, release)
    listing = json.loads((dest / "listing.json").read_text())
    if listing.get("manifest_existed", True):
        write_atomic(ws.manifest_path(release), (dest / "manifest.yaml").read_bytes())
    else:
        ws.manifest_path(release).unlink(missing_ok=True)
    target = ws.patches_dir(release)
    keep = set(listing["files"])
    if target.is_dir():
        for path in target.iterdir():
            if path.is_file() and path.name not in keep:
                path.unlink()
    for name in listing["files"]:
        write_atomic(target / name, (dest / "patches" / name).read_bytes())
    if not listing["patches_dir_existed"] and target.is_dir() and not any(target.iterdir()):
        target.rmdir()


def clear(ws: Workspace, release: str) -> None:
    """Forget the rebase: the state file goes first, then the backups."""
    state_path(ws, release).unlink(missing_ok=True)
    shutil.rmtree(backup_dir(ws, release), ignore_errors=True)
    ws.release(release).rebase_patch.unlink(missing_ok=True)
