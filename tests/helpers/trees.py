"""What a folder holds, to show a command left it as it was."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def tree_digest(top: Path) -> dict[str, str]:
    """Every entry under ``top`` (links not followed): its mode and its bytes' sha256, its
    link target, or that it is a folder."""
    found = {}
    for folder, dirs, names in os.walk(top):
        for name in [*dirs, *names]:
            path = Path(folder, name)
            info = path.lstat()
            if path.is_symlink():
                what = "link " + os.readlink(path)
            elif path.is_dir():
                what = "dir"
            else:
                what = "file " + hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(path.relative_to(top))] = f"{oct(info.st_mode)} {what}"
    return found
