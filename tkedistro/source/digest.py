"""The digest of a series' input bytes (the manifest and the patch files) that
``source.json`` records when a run is done, and the cheap look at it the command line takes
before anything else is loaded (``inputs_unchanged``): only then is the tree's ``git status``
started early (``git/probe.py``), since only an unchanged re-run reads its answer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tkedistro.core.workspace import ReleasePaths


def inputs_digest(manifest: Path, files: list[Path]) -> str:
    digest = hashlib.sha256(manifest.read_bytes())
    for path in files:
        digest.update(f"\0{path}\0".encode())
        digest.update(path.read_bytes() if path.is_file() else b"\0missing")
    return digest.hexdigest()


def inputs_unchanged(paths: ReleasePaths) -> bool:
    """Whether the manifest's and patches' bytes are the ones ``source.json`` recorded. A
    hint read without the lock or any check of the file (the unchanged re-run decides under
    the lock); False when anything is missing or odd."""
    try:
        data = json.loads(paths.source_state.read_bytes())
        files = [paths.root / entry["file"] for entry in data["applied"]]
        recorded = data["inputs"]
        return bool(recorded) and recorded == inputs_digest(paths.manifest_file, files)
    except (OSError, ValueError, KeyError, TypeError):
        return False
