"""The signed provenance: the in-toto statement in a DSSE envelope (a signed SLSA
attestation), ``provenance.intoto.jsonl`` — one JSON envelope per line, as the SLSA GitHub
generator and ``cosign verify-blob-attestation`` / ``slsa-verifier`` read it.

The envelope is ``{"payloadType": "application/vnd.in-toto+json", "payload": base64(statement),
"signatures": [{"keyid", "sig": base64(DER ECDSA signature over the DSSE PAE)}]}``, made with
securesystemslib's ``dsse.Envelope`` and ``CryptoSigner``; ``keyid`` is securesystemslib's
for the public key (``keyid_of``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tkedistro.core import files
from tkedistro.signing.keys import SigningKey

ENVELOPE_NAME = "provenance.intoto.jsonl"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


def _signer(key: SigningKey) -> Any:
    from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

    return CryptoSigner(key.private)


def keyid_of(key: SigningKey) -> str:
    """The ``keyid`` the envelope's signature carries for ``key``."""
    return str(_signer(key).public_key.keyid)


def sign_statement(statement: bytes, key: SigningKey) -> dict[str, Any]:
    """The DSSE envelope of the in-toto ``statement`` (its bytes as written), signed."""
    from securesystemslib.dsse import Envelope

    envelope = Envelope(payload=statement, payload_type=PAYLOAD_TYPE, signatures={})
    envelope.sign(_signer(key))
    return dict(envelope.to_dict())


def write_envelope(out_dir: Path, statement_name: str, key: SigningKey) -> str:
    """Sign ``out_dir/statement_name`` into ``out_dir/provenance.intoto.jsonl``; returns the
    envelope's name."""
    envelope = sign_statement((out_dir / statement_name).read_bytes(), key)
    files.write_atomic(out_dir / ENVELOPE_NAME,
                       (json.dumps(envelope, sort_keys=True, separators=(",", ":")) + "\n")
                       .encode())
    return ENVELOPE_NAME
