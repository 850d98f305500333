"""Which image id each ref got for which inputs digest, kept in ``work/images.json``.

The engine's labels say whether a local image was made from the current inputs; this record
gives that image's id without asking the engine for more than its labels. When the record does
not know it (a new ``work`` folder), ``local_id`` asks the engine to build ``FROM ref`` alone,
which adds nothing to the image and answers with its id (under a second).
"""

from __future__ import annotations

import json
from pathlib import Path

from tkedistro.core import files
from tkedistro.core.files import write_atomic
from tkedistro.engine.protocols import ImageEngine


class ImageRecord:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = json.loads(files.read_bytes(path))
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
        write_atomic(self.path, json.dumps(self._refs, indent=1, sort_keys=True).encode())


def local_id(engine: ImageEngine, ref: str, inputs: str, work: Path) -> str:
    """The id of the local image ``ref`` (made from ``inputs``), recorded for next time."""
    record = ImageRecord(work / "images.json")
    known = record.image_id(ref, inputs)
    if known:
        return known
    context = work / "context" / "_id"
    write_atomic(context / "Dockerfile", f"FROM {ref}\n".encode())
    found = engine.build(context, ref, {}).id
    record.remember(ref, inputs, found)
    return found
