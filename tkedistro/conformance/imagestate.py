"""Which image id each ref got for which inputs digest, kept in ``work/images.json``.

The engine's labels say whether a local image was made from the current inputs; this record
gives that image's id without asking the engine for more than its labels. A ref whose record
is missing or names other inputs is rebuilt (Docker's layer cache makes that cheap).
"""

from __future__ import annotations

import json
from pathlib import Path

from tkedistro.core.files import write_atomic


class ImageRecord:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        self._refs: dict[str, dict[str, str]] = data if isinstance(data, dict) else {}

    def image_id(self, ref: str, inputs: str) -> str | None:
        entry = self._refs.get(ref)
        if isinstance(entry, dict) and entry.get("inputs") == inputs:
            return entry.get("id") or None
        return None

    def remember(self, ref: str, inputs: str, image_id: str) -> None:
        self._refs[ref] = {"inputs": inputs, "id": image_id}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(self._refs, indent=1, sort_keys=True).encode())
