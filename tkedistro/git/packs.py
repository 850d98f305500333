"""A cheap integrity check of a repository's packs (no git run, nothing but the standard
library: the unchanged ``tkedistro source`` re-run calls it on the mirror a tree borrows from)."""

from __future__ import annotations

import os
from pathlib import Path


def pack_damage(objects: Path) -> list[str]:
    """Deleted or truncated packs under ``objects`` (cheap: file names and 20-byte trailers).

    A pack ends with the checksum of its contents; its ``.idx`` repeats that checksum just
    before its own. A pack whose tail differs was cut short; an index without its pack
    lost it.
    """
    problems = []
    for idx in sorted((objects / "pack").glob("pack-*.idx")):
        pack = idx.with_suffix(".pack")
        if not pack.is_file():
            problems.append(f"{pack.name} is missing (its index {idx.name} is there)")
            continue
        with idx.open("rb") as index, pack.open("rb") as data:
            index.seek(-40, os.SEEK_END)
            size = data.seek(0, os.SEEK_END)
            data.seek(max(size - 20, 0))
            if size < 32 or data.read(20) != index.read(20):
                problems.append(f"{pack.name} is truncated or damaged")
    return problems
