"""Answers the quick commands keep between runs, so they need not load what made them.

``tkedistro --help`` costs typer, click and rich; ``tkedistro list`` costs pydantic and
ruamel.yaml to check every manifest. Each keeps its last answer here, in
``<cache>/startup/<name>.json``, under a key that holds everything the answer was made from:
``code_stamp()`` (this package's files and the libraries that parse and print) and the
caller's inputs (the manifests' digests; the terminal). A different key is a miss: the
command runs as it always did and stores its new answer. A missing, damaged or unreadable
entry is a miss too, and a store that fails is skipped: the cache only ever saves time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import tkedistro
from tkedistro.core import files
from tkedistro.core.errors import TkedistroError

# the libraries whose upgrade can change an answer: the manifest checks, the help's printing
LIBRARIES = ("pydantic", "pydantic_core", "ruamel.yaml", "typer", "click", "rich")
MAX_ENTRY_BYTES = 1024 * 1024


def code_stamp() -> str:
    """A digest of the code that makes the answers: the Python version, the size and
    modification time of every file of the ``tkedistro`` package, and of each library's
    ``__init__``. An edit, an upgrade or a reinstall changes it."""
    digest = hashlib.sha256(sys.version.encode())
    for top in tkedistro.__path__:
        _stamp_tree(Path(top), digest)
    for name in LIBRARIES:
        info = _library_stat(name)
        digest.update(f"{name}:{info and (info.st_mtime_ns, info.st_size)}\n".encode())
    return digest.hexdigest()


def _library_stat(name: str) -> os.stat_result | None:
    """The stat of library ``name``'s ``__init__.py``, found without importing anything
    (``ruamel.yaml``: ``yaml/__init__.py`` in a folder of the ``ruamel`` namespace)."""
    top, _, inner = name.partition(".")
    try:
        spec = find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    found = [spec.origin] if not inner and spec.origin else [
        os.path.join(folder, *inner.split("."), "__init__.py")
        for folder in spec.submodule_search_locations or ()]
    for origin in found:
        try:
            return os.stat(origin)
        except OSError:
            continue
    return None


def _stamp_tree(folder: Path, digest: Any) -> None:
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    _stamp_tree(Path(entry.path), digest)
            else:
                info = entry.stat(follow_symlinks=False)
                digest.update(f"{entry.path}:{info.st_mtime_ns}:{info.st_size}\n".encode())


def entry_path(cache: Path, name: str) -> Path:
    return cache / "startup" / f"{name}.json"


def recall(cache: Path, name: str, key: Any) -> Any:
    """The answer stored as ``name`` under ``key``; None when there is none for this key."""
    try:
        stored = json.loads(files.read_bytes(entry_path(cache, name), max_bytes=MAX_ENTRY_BYTES))
    except (OSError, ValueError, TkedistroError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != json.loads(json.dumps(key)):
        return None
    return stored.get("answer")


def remember(cache: Path, name: str, key: Any, answer: Any) -> None:
    """Store ``answer`` as ``name`` under ``key`` (replacing the one before), if it can be."""
    path = entry_path(cache, name)
    try:
        files.ensure_dir(path.parent)
        files.write_json(path, {"key": key, "answer": answer})
    except (OSError, TkedistroError):
        pass  # a read-only or unsafe cache folder: the next run computes the answer again
