"""The blobs of an OCI image, in an archive (``images/<component>.oci.tar``) or a layout
folder (what ``skopeo copy`` wrote for ``verify IMAGE``): every blob's bytes hash to the
digest its name says and are as long as the descriptor that names it says, walked from
``index.json`` through the index and each platform's manifest to its config and layers.

Each blob is streamed through sha256 once; only small blobs (the JSON documents) are kept.
A problem names the blob and its place: ``blob sha256:... (layer of linux/amd64 manifest)
does not match its digest``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tkedistro.verify.findings import Finding

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
BLOB_PREFIX = "blobs/sha256/"
MAX_DOCUMENT = 4 * 2**20
CHECK = "image"


@dataclass
class Blobs:
    """What an image holds: blob name (``sha256:<hex>``) -> (sha256 of its bytes, size), the
    bytes of the small ones, and ``index.json``."""

    hashed: dict[str, tuple[str, int]] = field(default_factory=dict)
    documents: dict[str, bytes] = field(default_factory=dict)
    index_json: bytes | None = None


@dataclass
class Walked:
    """The image as its documents describe it, once its blobs were checked."""

    index_digest: str | None = None  # the one index (or manifest) index.json names
    manifests: dict[str, str] = field(default_factory=dict)  # platform -> manifest digest
    findings: list[Finding] = field(default_factory=list)


def _hash(stream: IO[bytes], keep: bool) -> tuple[str, int, bytes | None]:
    digest, size, kept = hashlib.sha256(), 0, []
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
        size += len(block)
        if keep and size <= MAX_DOCUMENT:
            kept.append(block)
    data = b"".join(kept) if keep and size <= MAX_DOCUMENT else None
    return f"sha256:{digest.hexdigest()}", size, data


def _add_blob(blobs: Blobs, name: str, stream: IO[bytes]) -> None:
    found, size, data = _hash(stream, keep=True)
    digest = "sha256:" + name.removeprefix(BLOB_PREFIX)
    blobs.hashed[digest] = (found, size)
    if data is not None:
        blobs.documents[digest] = data


def read_archive(archive: Path) -> Blobs:
    """The blobs of an OCI archive (a plain tar), read in one pass; ``OSError`` or
    ``tarfile.TarError`` when it is not one."""
    blobs = Blobs()
    with tarfile.open(archive, "r:") as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            with handle:
                if name == "index.json":
                    blobs.index_json = handle.read(MAX_DOCUMENT)
                elif name.startswith(BLOB_PREFIX):
                    _add_blob(blobs, name, handle)
    return blobs


def read_layout(layout: Path) -> Blobs:
    """The blobs of an OCI layout folder (symlinks are not followed)."""
    blobs = Blobs()
    index = layout / "index.json"
    if index.is_file() and not index.is_symlink():
        blobs.index_json = index.read_bytes()[:MAX_DOCUMENT]
    folder = layout / BLOB_PREFIX
    for name in sorted(os.listdir(folder)) if folder.is_dir() else []:
        path = folder / name
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                _add_blob(blobs, BLOB_PREFIX + name, handle)
    return blobs


def _document(blobs: Blobs, digest: str) -> dict[str, Any] | None:
    try:
        data = json.loads(blobs.documents.get(digest, b""))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _descriptors(doc: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
    value = (doc or {}).get(key)
    return [d for d in value if isinstance(d, dict)] if isinstance(value, list) else []


def _platform(descriptor: dict[str, Any]) -> str:
    platform = descriptor.get("platform")
    if not isinstance(platform, dict):
        return ""
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    return "/".join(str(p) for p in parts if p)


class _Walk:
    """One walk from index.json; ``subject`` names the archive or image in findings."""

    def __init__(self, subject: str, blobs: Blobs) -> None:
        self.subject, self.blobs, self.seen = subject, blobs, set[str]()
        self.result = Walked()

    def problem(self, text: str) -> None:
        self.result.findings.append(Finding(CHECK, self.subject, text))

    def blob(self, descriptor: dict[str, Any], role: str) -> bool:
        """Check the blob ``descriptor`` names; True when its bytes are what it says."""
        digest = str(descriptor.get("digest"))
        self.seen.add(digest)
        if digest not in self.blobs.hashed:
            self.problem(f"blob {digest} ({role}) is missing")
            return False
        found, size = self.blobs.hashed[digest]
        if found != digest:
            self.problem(f"blob {digest} ({role}) does not match its digest (its bytes hash "
                         f"to {found})")
            return False
        if descriptor.get("size") != size:
            self.problem(f"blob {digest} ({role}) is {size} bytes, its descriptor says "
                         f"{descriptor.get('size')}")
            return False
        return True

    def manifest(self, descriptor: dict[str, Any], platform: str) -> None:
        name = f"{platform} manifest" if platform else "manifest"
        if not self.blob(descriptor, name):
            return
        if platform:
            self.result.manifests[platform] = str(descriptor.get("digest"))
        doc = _document(self.blobs, str(descriptor.get("digest")))
        for config in [d for d in [(doc or {}).get("config")] if isinstance(d, dict)]:
            self.blob(config, f"config of {name}")
        for layer in _descriptors(doc, "layers"):
            self.blob(layer, f"layer of {name}")

    def index(self, descriptor: dict[str, Any]) -> None:
        if not self.blob(descriptor, "image index"):
            return
        for entry in _descriptors(_document(self.blobs, str(descriptor.get("digest"))),
                                  "manifests"):
            if entry.get("mediaType") in INDEX_TYPES:
                self.index(entry)
            else:
                self.manifest(entry, _platform(entry) or "unknown platform")

    def top(self) -> None:
        try:
            top = _descriptors(json.loads(self.blobs.index_json or b"null"), "manifests")
        except ValueError:
            top = []
        images = [d for d in top if "artifactType" not in d]
        if len(images) != 1:
            self.problem(f"index.json names {len(images)} images, expected one")
            return
        self.result.index_digest = str(images[0].get("digest"))
        if images[0].get("mediaType") in INDEX_TYPES:
            self.index(images[0])
        else:
            self.manifest(images[0], _platform(images[0]))
        for referrer in (d for d in top if "artifactType" in d):
            self.referrer(referrer)

    def referrer(self, descriptor: dict[str, Any]) -> None:
        """An artifact attached to the image (its SBOM): its blobs, and its subject the image."""
        self.manifest(descriptor, "")
        kind = str(descriptor.get("artifactType"))
        subject = (_document(self.blobs, str(descriptor.get("digest"))) or {}).get("subject")
        if not isinstance(subject, dict) or subject.get("digest") != self.result.index_digest:
            self.problem(f"the {kind} artifact {descriptor.get('digest')} is not attached to "
                         f"the image {self.result.index_digest} (its subject differs)")


def check_blobs(subject: str, blobs: Blobs) -> Walked:
    """Walk the image from ``index.json`` checking every blob on the way, then every blob no
    document names (its bytes must still hash to its name)."""
    walk = _Walk(subject, blobs)
    walk.top()
    for digest, (found, _size) in sorted(blobs.hashed.items()):
        if digest not in walk.seen and found != digest:
            walk.problem(f"blob {digest} (named by no manifest) does not match its digest")
    return walk.result


def check_archive(folder: Path, rel: str) -> Walked:
    """``check_blobs`` of the archive ``folder/rel``; an unreadable archive is a problem."""
    try:
        blobs = read_archive(folder / rel)
    except (OSError, tarfile.TarError) as exc:
        result = Walked()
        result.findings.append(Finding(CHECK, rel, f"not a readable OCI archive: {exc}"))
        return result
    return check_blobs(rel, blobs)
