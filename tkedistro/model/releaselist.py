"""``tkedistro list``: the releases of a distro repo, as data and text.

Every manifest is loaded and checked (``manifest.load_release``: pydantic, ruamel.yaml) as it
always was, but only when something changed: the rows of the last good listing are kept in
the cache (``core/startcache.py``) under the manifests' names and content digests and the
code's stamp, so an unchanged repo is listed without loading the checks. A listing that
fails is never kept: each run reports its problems afresh.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from tkedistro.core import files, startcache
from tkedistro.core.errors import TkedistroError
from tkedistro.core.workspace import (
    MANIFEST_SUFFIX,
    MAX_MANIFEST_BYTES,
    Workspace,
    list_release_names,
)


def list_releases(ws: Workspace) -> dict[str, Any]:
    """Every release with its pin, distro version and patch count (all manifests must load)."""
    names = list_release_names(ws.releases_dir)
    key = _listing_key(ws, names)
    if key is not None:
        kept = startcache.recall(ws.cache, "list", key)
        if isinstance(kept, dict):
            return kept
    data = _checked_list(ws, names)
    if key is not None:
        startcache.remember(ws.cache, "list", key, data)
    return data


def _checked_list(ws: Workspace, names: list[str]) -> dict[str, Any]:
    from tkedistro.core.errors import ManifestError
    from tkedistro.model.manifest import load_release

    manifests, problems = [], []
    for name in names:
        try:
            manifests.append(load_release(ws, name))
        except ManifestError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ManifestError(problems, hint="run `tkedistro validate` to see every problem")
    return {"releases": [{
        "release": manifest.release,
        "tag": manifest.upstream.tag,
        "commit": manifest.upstream.commit,
        "distro_version": manifest.distro_version,
        "patches": len(manifest.patches),
    } for manifest in manifests]}


def _listing_key(ws: Workspace, names: list[str]) -> list[Any] | None:
    """What the listing is made from: the code, each manifest's name and content digest;
    None when a manifest is not a plain small file (the checks say what is wrong)."""
    digests = []
    for name in names:
        digest = _digest(ws.releases_dir / f"{name}{MANIFEST_SUFFIX}")
        if digest is None:
            return None
        digests.append([name, digest])
    return [startcache.code_stamp(), digests]


def _digest(path: Path) -> str | None:
    """The SHA-256 of the regular file ``path``, read through the safe file layer (never
    blocking on a FIFO, never through a symlink); None for any other file, a missing one, or
    one larger than a manifest may be."""
    try:
        return hashlib.sha256(files.read_bytes(path, max_bytes=MAX_MANIFEST_BYTES)).hexdigest()
    except (OSError, TkedistroError):
        return None


def format_list(data: dict[str, Any]) -> str:
    rows = [
        [r["release"], r["tag"], r["commit"][:12], r["distro_version"], str(r["patches"])]
        for r in data["releases"]
    ]
    if not rows:
        return "no release manifests in releases/"
    return _table(["RELEASE", "TAG", "COMMIT", "DISTRO VERSION", "PATCHES"], rows)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)
