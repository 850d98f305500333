"""What a build published in an output folder: its files (the state file aside) and
``SHA256SUMS``, for comparing the output of two callers of the release operation."""

from __future__ import annotations

import shutil
from pathlib import Path

from tkedistro.build import output


def published(out: Path) -> tuple[list[str], str]:
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*")
                   if p.is_file() and p.name != output.STATE_NAME)
    return files, (out / output.SUMS_NAME).read_text()


def take_published(out: Path) -> tuple[list[str], str]:
    """``published(out)``, then the output is removed so the next caller builds it anew."""
    found = published(out)
    shutil.rmtree(out)
    return found
