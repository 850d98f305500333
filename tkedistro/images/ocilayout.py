"""An OCI image layout folder read and packed into an OCI archive, byte for byte the same
for the same layout.

The archive holds ``oci-layout``, ``index.json`` and the blobs the index reaches (nothing a
builder may have left beside them), in sorted order, every entry owned by 0:0 with no names,
a fixed mode and the given mtime, in plain ustar (no pax headers, so no access or change
times). ``skopeo``'s ``oci-archive:`` transport reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tarfile
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core import files
from tkedistro.core.errors import ImageError
from tkedistro.core.files import rename

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
REF_NAME = "org.opencontainers.image.ref.name"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"


@dataclass(frozen=True)
class LayoutIndex:
    """The one index of a layout: its digest, ref name and each platform's manifest digest."""

    digest: str
    ref_name: str
    manifests: dict[str, str]  # "linux/amd64" -> sha256:...


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64 or not hexdigest.isalnum():
        raise ImageError(f"{layout}: unexpected digest {digest!r}")
    return layout / "blobs" / algorithm / hexdigest


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(files.read_bytes(path))
    except (OSError, ValueError) as exc:
        raise ImageError(f"{path}: not a readable OCI document: {exc}") from exc
    if not isinstance(data, dict):
        raise ImageError(f"{path}: not a JSON object")
    return data


def _descriptors(doc: dict[str, object], key: str) -> list[dict[str, object]]:
    value = doc.get(key)
    return [d for d in value if isinstance(d, dict)] if isinstance(value, list) else []


def read_index(layout: Path) -> LayoutIndex:
    """The layout's single image index (besides any referrers, which carry an
    ``artifactType``); ``ImageError`` when there is not exactly one."""
    listed = _descriptors(_read_json(layout / "index.json"), "manifests")
    entries = [e for e in listed if "artifactType" not in e]
    if len(entries) != 1 or entries[0].get("mediaType") not in INDEX_TYPES:
        raise ImageError(f"{layout}/index.json: expected one image index, found "
                         f"{[e.get('mediaType') for e in entries]}")
    digest = str(entries[0].get("digest"))
    annotations = entries[0].get("annotations")
    ref_name = str(annotations.get(REF_NAME, "")) if isinstance(annotations, dict) else ""
    manifests: dict[str, str] = {}
    for entry in _descriptors(_read_json(blob_path(layout, digest)), "manifests"):
        platform = entry.get("platform")
        if isinstance(platform, dict):
            key = f"{platform.get('os')}/{platform.get('architecture')}"
            manifests[key] = str(entry.get("digest"))
    return LayoutIndex(digest, ref_name, manifests)


def _put_blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    files.ensure_dir(blob_path(layout, digest).parent)
    files.write_atomic(blob_path(layout, digest), data)
    return {"digest": digest, "size": len(data)}


def add_referrer(layout: Path, artifact_type: str, payload: bytes,
                 annotations: Mapping[str, str]) -> str:
    """Attach ``payload`` to the layout's image index as an OCI 1.1 referrer: an artifact
    manifest (``artifactType``, the empty config, ``payload`` as its one layer, ``subject``
    the index) listed in ``index.json`` beside the index, without a ref name. Returns the
    artifact manifest's digest; the same payload gives the same bytes."""
    listed = _read_json(layout / "index.json")
    subject = next(e for e in _descriptors(listed, "manifests") if "artifactType" not in e)
    manifest = {
        "schemaVersion": 2, "mediaType": MANIFEST_TYPES[0], "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_TYPE, **_put_blob(layout, EMPTY_JSON)},
        "layers": [{"mediaType": artifact_type, **_put_blob(layout, payload)}],
        "subject": {k: subject[k] for k in ("mediaType", "digest", "size")},
        "annotations": dict(sorted(annotations.items())),
    }
    written = _put_blob(layout, json.dumps(manifest, sort_keys=True,
                                           separators=(",", ":")).encode())
    entries = [e for e in _descriptors(listed, "manifests")
               if e.get("artifactType") != artifact_type]
    entries.append({"mediaType": MANIFEST_TYPES[0], "artifactType": artifact_type, **written,
                    "annotations": dict(sorted(annotations.items()))})
    files.write_atomic(layout / "index.json", json.dumps(
        {**listed, "manifests": entries}, separators=(",", ":")).encode())
    return str(written["digest"])


def reachable_blobs(layout: Path) -> set[str]:
    """Every digest ``index.json`` reaches: indexes, manifests, configs and layers."""
    found: set[str] = set()
    pending = _descriptors(_read_json(layout / "index.json"), "manifests")
    while pending:
        descriptor = pending.pop()
        digest = str(descriptor.get("digest"))
        if digest in found:
            continue
        found.add(digest)
        media = str(descriptor.get("mediaType", ""))
        if media in INDEX_TYPES or media in MANIFEST_TYPES:
            doc = _read_json(blob_path(layout, digest))
            pending += _descriptors(doc, "manifests") + _descriptors(doc, "layers")
            pending += [d for d in [doc.get("config")] if isinstance(d, dict)]
    return found


def _info(name: str, mtime: int, mode: int, size: int = 0, folder: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if folder else tarfile.REGTYPE
    info.mode, info.mtime, info.size = mode, mtime, size
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack_layout(layout: Path, archive: Path, mtime: int) -> None:
    """Write ``archive`` (atomically) from the layout folder; see the module docstring.

    The archive is streamed into a temporary file beside it, synced and renamed over it,
    never through a symlink (``core/files.py``)."""
    blobs = sorted(blob_path(layout, d).relative_to(layout).as_posix()
                   for d in reachable_blobs(layout))
    names = sorted(["oci-layout", "index.json", *blobs])
    folders = sorted({str(Path(name).parent) for name in blobs} | {"blobs"})
    temp = archive.with_name(f".{archive.name}.{secrets.token_hex(6)}.tmp")
    try:
        with files.open_for_writing(temp) as handle:
            with tarfile.open(fileobj=handle, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                _add_entries(tar, layout, sorted(folders + names), set(folders), mtime)
            handle.flush()
            os.fsync(handle.fileno())
        rename(temp, archive)
    except BaseException:
        with suppress(OSError):
            files.remove(temp)
        raise


def _add_entries(tar: tarfile.TarFile, layout: Path, names: list[str], folders: set[str],
                 mtime: int) -> None:
    for name in names:
        if name in folders:
            tar.addfile(_info(name + "/", mtime, 0o755, folder=True))
            continue
        path = files.check_path(layout / name)
        if not path.is_file():
            raise ImageError(f"{layout}: {name} is missing from the OCI layout")
        with path.open("rb") as handle:
            tar.addfile(_info(name, mtime, 0o644, path.stat().st_size), handle)
