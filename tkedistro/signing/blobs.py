"""Detached file signatures, cosign ``sign-blob``'s format: ``F.sig`` beside each file ``F``
holds the base64 of the DER ECDSA-P256-SHA256 signature over ``F``'s bytes (no newline).

``openssl dgst -sha256 -verify cosign.pub -signature <(base64 -d F.sig) F`` and ``cosign
verify-blob --key cosign.pub --signature F.sig F`` verify one. A file is hashed as it is read
(a 300 MB tarball is never held in memory) and the digest signed.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from pathlib import Path

from tkedistro.core import files
from tkedistro.signing.keys import SigningKey

SIGNATURE_SUFFIX = ".sig"


def signature_name(name: str) -> str:
    """``F.sig``: where the signature of the file ``F`` goes (a relative path keeps its
    folder)."""
    return name + SIGNATURE_SUFFIX


def sign_blob(data: bytes, key: SigningKey) -> bytes:
    """The base64 signature of ``data``: what ``F.sig`` holds."""
    return base64.b64encode(key.sign(data))


def sign_file(path: Path, key: SigningKey) -> bytes:
    """The base64 signature of the file ``path``, hashed in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return base64.b64encode(key.sign_digest(digest.digest()))


def sign_files(out_dir: Path, names: Sequence[str], key: SigningKey) -> list[str]:
    """Write ``out_dir/F.sig`` for each ``F`` of ``names`` (relative to ``out_dir``);
    returns the signature files' names, relative too."""
    written = []
    for name in dict.fromkeys(names):
        target = signature_name(name)
        files.write_atomic(out_dir / target, sign_file(out_dir / name, key))
        written.append(target)
    return written
