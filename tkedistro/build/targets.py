"""What one build makes: the components and platforms asked for, checked against the manifest
and the known names (with a "did you mean"), selected once per build."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import NamedTuple

from tkedistro.core.errors import ManifestError
from tkedistro.model.manifest import COMPONENTS, PLATFORMS, Manifest


def _did_you_mean(value: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, allowed, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def select(kind: str, requested: Sequence[str], default: Sequence[str],
           allowed: Sequence[str]) -> tuple[str, ...]:
    """The requested values (deduplicated, in the order of ``allowed``) or ``default``."""
    problems = [
        f"unknown {kind} {value!r}{_did_you_mean(value, allowed)} (known: {', '.join(allowed)})"
        for value in requested
        if value not in allowed
    ]
    if problems:
        raise ManifestError(problems, hint=f"pass --{kind} once per {kind}")
    chosen = set(requested or default)
    return tuple(value for value in allowed if value in chosen)


class Targets(NamedTuple):
    """The components and platforms one build makes (selected once, ``select_targets``)."""

    components: tuple[str, ...]
    platforms: tuple[str, ...]


def select_targets(manifest: Manifest, components: Sequence[str],
                   platforms: Sequence[str]) -> Targets:
    """The components and platforms to build (manifest defaults); unknown ones are errors."""
    return Targets(select("component", components, manifest.components, COMPONENTS),
                   select("platform", platforms, manifest.platforms, PLATFORMS))
