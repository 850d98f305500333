"""Whether a release is mid-rebase, and the refusal every other command gives then.

A release is mid-rebase exactly while its rebase state file (``ReleasePaths.rebase_state``)
exists. ``source``, ``build`` and ``patches export`` call ``refuse_if_rebasing`` under the
release lock; ``series/state.py`` reads the whole state through ``read_rebase_state``. Here,
below both ``source/`` and ``series/``, so neither has to import the other for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from tkedistro.core.errors import RebaseStateError
from tkedistro.core.statefile import StateFile, kind_of
from tkedistro.core.workspace import ReleasePaths

T = TypeVar("T")


def is_rebasing(release: ReleasePaths) -> bool:
    """One ``lstat``: a symlink there counts (and reading it is then refused, exit 3)."""
    return os.path.lexists(release.rebase_state)


def rebase_state_file(release: ReleasePaths) -> StateFile:
    """``rebase.json`` as messages name it, and how to recover when it is damaged: every
    rebase command needs it, so the way out is to forget the rebase."""
    shown = f"{release.layout.state}/{release.rebase_state.name}"
    backup = f"{release.layout.state}/{release.rebase_backup.name}"
    return StateFile(
        release.rebase_state, shown, "the rebase state",
        recovery=f"tkedistro rebase {release.name} --continue, --skip and --abort all need "
                 f"it; to forget the rebase, delete {shown}: the manifest and patch files stay "
                 "as they are now (a rebase changes them only when it finishes; their copies "
                 f"from before it are in {backup}/), and `tkedistro source {release.name} "
                 f"--force` puts {release.layout.src} back on the series, saving what the "
                 "rebase left there to a backup ref first")


def read_rebase_state(release: ReleasePaths, parse: Callable[[StateFile, dict[str, Any]], T]
                      ) -> T:
    """``parse`` of the rebase state's JSON object; ``RebaseStateError`` when there is none,
    ``DamagedStateError`` (exit 17, with how to recover) when it is not what tkedistro
    writes (``parse`` raises it for what its schema refuses)."""
    file = rebase_state_file(release)
    try:
        data = file.read()
    except FileNotFoundError:
        raise RebaseStateError(
            f"release {release.name} is not being rebased (no {file.path.name} in "
            f"{file.path.parent})",
            hint=f"start one with: tkedistro rebase {release.name} --onto TAG",
        ) from None
    return parse(file, data)


def rebase_onto(release: ReleasePaths) -> str | None:
    """The tag ``release`` is being rebased onto, or None when it is not mid-rebase."""
    if not is_rebasing(release):
        return None
    return read_rebase_state(release, _onto_tag)


def refuse_if_rebasing(release: ReleasePaths) -> None:
    """A release mid-rebase is the rebase's: ``RebaseStateError`` (exit 17) for any other
    command that would touch it (one stat when it is not)."""
    onto = rebase_onto(release)
    if onto is not None:
        raise RebaseStateError(
            f"release {release.name} is mid-rebase onto {onto}; "
            "finish or abandon the rebase first",
            hint=f"tkedistro rebase {release.name} --continue | --skip | --abort",
        )


def _onto_tag(file: StateFile, data: dict[str, Any]) -> str:
    """The tag of a rebase state (the rest is checked by the rebase commands' schema)."""
    tag = data.get("onto_tag")
    if not isinstance(tag, str) or not tag.isprintable() or not tag or tag.startswith("-"):
        raise file.damaged([f"onto_tag: expected a tag like v1.20.2, got {kind_of(tag)}"])
    return tag
