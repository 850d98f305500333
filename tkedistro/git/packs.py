"""A cheap integrity check of a repository's packs (no git run, nothing but the standard
library: the unchanged ``tkedistro source`` re-run calls it on the mirror a tree borrows from)."""

from __future__ import annotations

import os
from pathlib import Path

# an index ends with the pack's checksum and its own (20 bytes each); a pack has a 12-byte
# header and its 20-byte checksum
_IDX_TRAILER = 40
_PACK_MINIMUM = 32


def pack_damage(objects: Path) -> list[str]:
    """Deleted, truncated or unreadable packs under ``objects`` (cheap: file names and
    20-byte trailers).

    A pack ends with the checksum of its contents; its ``.idx`` repeats that checksum just
    before its own. A pack whose tail differs was cut short; an index without its pack
    lost it; an index or pack too short to hold its trailer, or one that cannot be read,
    is damaged too.
    """
    problems = []
    for idx in sorted((objects / "pack").glob("pack-*.idx")):
        pack = idx.with_suffix(".pack")
        if not pack.is_file():
            problems.append(f"{pack.name} is missing (its index {idx.name} is there)")
            continue
        try:
            intact = _trailers_match(idx, pack)
        except OSError as exc:
            problems.append(f"{pack.name} cannot be read ({exc.strerror or exc})")
            continue
        if not intact:
            problems.append(f"{pack.name} is truncated or damaged")
    return problems


def _trailers_match(idx: Path, pack: Path) -> bool:
    with idx.open("rb") as index, pack.open("rb") as data:
        if index.seek(0, os.SEEK_END) < _IDX_TRAILER:
            return False
        index.seek(-_IDX_TRAILER, os.SEEK_END)
        size = data.seek(0, os.SEEK_END)
        if size < _PACK_MINIMUM:
            return False
        data.seek(size - 20)
        return data.read(20) == index.read(20)
