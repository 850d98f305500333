"""Signatures against a given public key: the detached ``F.sig`` beside each shipped file and
the DSSE envelope of the provenance (``provenance.intoto.jsonl``).

The key is a PEM SubjectPublicKeyInfo ECDSA P-256 key (``cosign.pub``). ``F.sig`` is
cosign's ``sign-blob`` output: base64 of the DER ECDSA-P256-SHA256 signature over F's bytes;
the caller hands the sha256 it already read, so a large file is not read again. The envelope
is checked by securesystemslib's DSSE implementation (its PAE, its key), never by hand; the
envelope's key id is only a hint, so each signature is tried with the given key under the
id it names. cryptography and securesystemslib are imported here, when a key is given.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tkedistro.signing.blobs import SIGNATURE_SUFFIX
from tkedistro.signing.dsse import ENVELOPE_NAME, PAYLOAD_TYPE
from tkedistro.signing.keys import PublicKey
from tkedistro.verify.findings import Finding

if TYPE_CHECKING:
    pass

CHECK = "signature"
SCHEME = "ecdsa-sha2-nistp256"
MAX_SIGNATURE_BYTES = 4096
MAX_ENVELOPE_BYTES = 64 * 2**20


def _signature_bytes(sig_path: Path) -> bytes | str:
    """The DER signature in ``sig_path`` (base64), or what is wrong with the file."""
    try:
        if os.path.islink(sig_path):
            return f"{sig_path.name} is a symlink (never followed)"
        raw = sig_path.read_bytes()[:MAX_SIGNATURE_BYTES + 1]
    except FileNotFoundError:
        return f"no signature ({sig_path.name} is missing)"
    except OSError as exc:
        return f"{sig_path.name} cannot be read: {exc.strerror}"
    if len(raw) > MAX_SIGNATURE_BYTES:
        return f"{sig_path.name} is not a signature (larger than {MAX_SIGNATURE_BYTES} bytes)"
    try:
        return base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        return f"{sig_path.name} is not base64"


def check_file_signature(key: PublicKey, folder: Path, rel: str,
                         sha256_hex: str) -> Finding | None:
    """A problem when ``folder/rel.sig`` is missing or does not sign the file whose sha256
    is ``sha256_hex`` (read by the caller from the file's bytes)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    signature = _signature_bytes(folder / f"{rel}{SIGNATURE_SUFFIX}")
    if isinstance(signature, str):
        return Finding(CHECK, rel, signature)
    try:
        key.key.verify(signature, bytes.fromhex(sha256_hex),
                       ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return Finding(CHECK, rel, f"{Path(rel).name}{SIGNATURE_SUFFIX} does not verify with "
                                   f"{key.source} (the file or its signature changed, or it "
                                   "was signed with another key)")
    return None


def check_envelope(key: PublicKey, folder: Path, statement_name: str) -> list[Finding]:
    """The DSSE envelope ``provenance.intoto.jsonl``: its type, a signature by ``key`` and a
    payload byte for byte equal to ``statement_name``'s."""
    envelope, problem = _read_envelope(folder / ENVELOPE_NAME)
    if envelope is None:
        return [Finding(CHECK, ENVELOPE_NAME, problem)]
    if envelope.payload_type != PAYLOAD_TYPE:
        return [Finding(CHECK, ENVELOPE_NAME, f"payloadType is {envelope.payload_type!r}, "
                                              f"not {PAYLOAD_TYPE!r}")]
    findings = []
    if not _verifies(envelope, key):
        findings.append(Finding(CHECK, ENVELOPE_NAME, f"no DSSE signature verifies with "
                                                      f"{key.source}"))
    try:
        statement = (folder / statement_name).read_bytes()
    except OSError:
        statement = None
    if statement != envelope.payload:
        findings.append(Finding(CHECK, ENVELOPE_NAME, f"its payload is not {statement_name} "
                                                      "byte for byte"))
    return findings


def _read_envelope(path: Path) -> tuple[Any, str]:
    """(the envelope, "") or (None, what is wrong)."""
    from securesystemslib.dsse import Envelope

    try:
        if os.path.islink(path):
            return None, "a symlink (never followed)"
        text = path.read_bytes()[:MAX_ENVELOPE_BYTES].decode("utf-8")
    except FileNotFoundError:
        return None, "missing: the provenance has no signed envelope"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot be read: {exc}"
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        return None, f"expected one DSSE envelope (one JSON line), found {len(lines)} lines"
    try:
        return Envelope.from_dict(json.loads(lines[0])), ""
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        return None, f"not a DSSE envelope: {exc}"


def _verifies(envelope: Any, key: PublicKey) -> bool:
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

    public = SSlibKey.from_crypto(key.key, scheme=SCHEME)
    for keyid in envelope.signatures:
        named = SSlibKey(keyid, public.keytype, public.scheme, public.keyval)
        try:
            envelope.verify([named], 1)
            return True
        except (VerificationError, ValueError):
            continue
    return False
