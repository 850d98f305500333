"""What a build leaves in ``_output/<release>``: binaries, ``SHA256SUMS`` (and ``SHA512SUMS``
once the release artifacts are written, ``artifacts/checksums.py``), ``build-info.json``,
``build.log`` and a small state file that makes the no-op check cheap.

The state file records the plan's fingerprint and the size and mtime of every published file,
so "nothing changed and the output is intact" is decided without hashing hundreds of MB.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tkedistro.core import files
from tkedistro.core.files import sha256_file

SUMS_NAME = "SHA256SUMS"
SHA512_SUMS_NAME = "SHA512SUMS"
INFO_NAME = "build-info.json"
LOG_NAME = "build.log"
STATE_NAME = ".tkedistro-build.json"


def format_sums(sums: Mapping[str, str]) -> str:
    """``<hex>  <path>`` lines sorted by path: what ``sha256sum -c``/``sha512sum -c`` read."""
    return "".join(f"{sums[rel]}  {rel}\n" for rel in sorted(sums))


def write_sha256sums(out_dir: Path, rel_paths: Sequence[str]) -> dict[str, str]:
    """Hash each file (paths relative to ``out_dir``) and write ``SHA256SUMS`` (sha256sum -c)."""
    sums = {rel: sha256_file(out_dir / rel) for rel in sorted(rel_paths)}
    files.write_text(out_dir / SUMS_NAME, format_sums(sums))
    return sums


def read_sums(path: Path) -> dict[str, str]:
    """A ``SHA256SUMS``/``SHA512SUMS`` file as {path: hex digest}."""
    sums: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        sha, _, rel = line.partition("  ")
        if sha and rel:
            sums[rel] = sha
    return sums


def read_sha256sums(path: Path) -> dict[str, str]:
    return read_sums(path)


def read_sha512sums(path: Path) -> dict[str, str]:
    return read_sums(path)


def write_build_info(out_dir: Path, info: Mapping[str, Any]) -> None:
    files.write_json(out_dir / INFO_NAME, info)


def read_build_info(out_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((out_dir / INFO_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def write_state(out_dir: Path, fingerprint: str, artifacts: str | None = None) -> None:
    """Record the fingerprint (and the artifacts' inputs digest, when a finisher made them)
    and size+mtime of every file (written last, before publish)."""
    published = sorted(
        str(p.relative_to(out_dir)) for p in out_dir.rglob("*")
        if p.is_file() and p.name != STATE_NAME
    )
    state: dict[str, object] = {"fingerprint": fingerprint,
                                "files": {rel: _stat(out_dir / rel) for rel in published}}
    if artifacts is not None:
        state["artifacts"] = artifacts
    files.write_text(out_dir / STATE_NAME, json.dumps(state, indent=1) + "\n")


def is_intact(out_dir: Path, fingerprint: str, artifacts: str | None = None) -> bool:
    """True when ``out_dir`` was built for ``fingerprint`` (and its artifacts made from
    ``artifacts``, when given) and no file changed size or mtime."""
    try:
        state = json.loads((out_dir / STATE_NAME).read_text(encoding="utf-8"))
        if state.get("fingerprint") != fingerprint:
            return False
        if artifacts is not None and state.get("artifacts") != artifacts:
            return False
        recorded: dict[str, list[int]] = state["files"]
        return SUMS_NAME in recorded and all(
            _stat(out_dir / rel) == list(stat) for rel, stat in recorded.items()
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
