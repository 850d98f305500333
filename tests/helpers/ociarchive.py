"""A tiny, valid OCI archive made by hand: ``index.json`` naming one image index, which names
one linux/amd64 image (a config and one layer holding a text file). Small enough for a
registry test to push in a second; no buildah, no compiler."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def _tar_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _blob(blobs: dict[str, bytes], data: bytes, media_type: str) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[f"blobs/sha256/{digest[7:]}"] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def write_oci_archive(path: Path, text: str, tag: str) -> tuple[str, str]:
    """Write the archive to ``path``; returns its image index digest and the digest of its
    one (linux/amd64) manifest."""
    blobs: dict[str, bytes] = {}
    raw_layer = _tar_bytes({"hello.txt": text.encode()})
    layer = _blob(blobs, gzip.compress(raw_layer, mtime=0),
                  "application/vnd.oci.image.layer.v1.tar+gzip")
    config = _blob(blobs, json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(raw_layer).hexdigest()]},
    }).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = _blob(blobs, json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                                        "config": config, "layers": [layer]}).encode(),
                     MANIFEST_TYPE)
    index = _blob(blobs, json.dumps({
        "schemaVersion": 2, "mediaType": INDEX_TYPE,
        "manifests": [{**manifest, "platform": {"architecture": "amd64", "os": "linux"}}],
    }).encode(), INDEX_TYPE)
    top = {"schemaVersion": 2, "manifests": [
        {**index, "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    entries = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', **blobs,
               "index.json": json.dumps(top).encode()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_tar_bytes(entries))
    return str(index["digest"]), str(manifest["digest"])
