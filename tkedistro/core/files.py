"""Atomic file writes (a reader, or a crash, sees the old bytes or the new, never half), and
the last lines of a log for an error message."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a synced temporary file renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def log_tail(log: Path, lines: int) -> str:
    """The last ``lines`` lines of the text file ``log`` (empty when it cannot be read)."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(path: Path, algorithms: tuple[str, ...]) -> dict[str, str]:
    """The hex digests of a file's bytes for each of ``algorithms`` (``hashlib`` names), from
    one read in 1 MiB blocks."""
    digests = [hashlib.new(name) for name in algorithms]
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            for digest in digests:
                digest.update(block)
    return {name: digest.hexdigest() for name, digest in zip(algorithms, digests, strict=True)}


def json_digest(data: object) -> str:
    """``sha256:<hex>`` of ``data`` as JSON with sorted keys: the inputs digest of an image
    (equal digests mean nothing to rebuild)."""
    text = json.dumps(data, sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
