"""Whether a release is mid-rebase, and the refusal every other command gives then.

A release is mid-rebase exactly while its rebase state file (``ReleasePaths.rebase_state``)
exists. ``source``, ``build`` and ``patches export`` call ``refuse_if_rebasing`` under the
release lock; ``series/state.py`` reads the whole state through ``read_rebase_state``. Here,
below both ``source/`` and ``series/``, so neither has to import the other for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from tkedistro.core.errors import RebaseStateError
from tkedistro.core.workspace import ReleasePaths

T = TypeVar("T")


def is_rebasing(release: ReleasePaths) -> bool:
    return release.rebase_state.exists()


def read_rebase_state(release: ReleasePaths, parse: Callable[[dict[str, Any]], T]) -> T:
    """``parse`` of the rebase state's JSON; ``RebaseStateError`` when there is none, or it
    cannot be read, or ``parse`` refuses it (``ValueError``, ``TypeError``, ``KeyError``)."""
    path = release.rebase_state
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise RebaseStateError(
            f"release {release.name} is not being rebased (no {path.name} in {path.parent})",
            hint=f"start one with: tkedistro rebase {release.name} --onto TAG",
        ) from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise RebaseStateError(
            f"{path}: rebase state unreadable ({exc})",
            hint=f"tkedistro rebase {release.name} --abort restores the saved files if they exist",
        ) from None
    except OSError as exc:
        raise RebaseStateError(
            f"{path}: rebase state cannot be read ({exc.strerror or exc})",
            hint=f"tkedistro rebase {release.name} --abort restores the saved files if they exist",
        ) from None


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


def _onto_tag(data: dict[str, Any]) -> str:
    return str(data["onto_tag"])
