"""Signing keys: an ECDSA P-256 pair in cosign's formats, made here or brought by the user.

- ``cosign.pub``: the public key, PEM ``SubjectPublicKeyInfo`` (what ``cosign verify --key``,
  ``openssl dgst -verify`` and a containers ``policy.json`` ``sigstoreSigned`` ``keyPath``
  read).
- ``cosign.key``: the private key encrypted with a passphrase, in the format of
  go-securesystemslib's ``encrypted`` package that cosign and skopeo read: PEM whose body is
  JSON ``{"kdf": {"name": "scrypt", "params": {"N", "r", "p"}, "salt"}, "cipher": {"name":
  "nacl/secretbox", "nonce"}, "ciphertext"}`` (byte strings in base64), the ciphertext being
  the PKCS#8 DER key. Written as ``ENCRYPTED COSIGN PRIVATE KEY`` (the one type skopeo 1.9
  reads; cosign reads it too); ``ENCRYPTED SIGSTORE PRIVATE KEY`` is read as well.

Where the key comes from, first found wins: ``--sign-key PATH``, ``TKEDISTRO_SIGNING_KEY``
(a path), ``TKEDISTRO_SIGNING_KEY_PEM`` (the key's text, for a CI secret); none means
unsigned. The passphrase: ``TKEDISTRO_SIGNING_PASSPHRASE_FILE`` (its first line), else
``TKEDISTRO_SIGNING_PASSPHRASE``, else empty. Neither the key text nor the passphrase is ever
printed, logged or written anywhere but a 0600 file (``write_private_key``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tkedistro.core import files
from tkedistro.core.errors import SigningError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

PRIVATE_KEY_NAME = "cosign.key"
PUBLIC_KEY_NAME = "cosign.pub"
PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"
PEM_TYPES = (PEM_TYPE, "ENCRYPTED SIGSTORE PRIVATE KEY")
KEY_ENV = "TKEDISTRO_SIGNING_KEY"
KEY_PEM_ENV = "TKEDISTRO_SIGNING_KEY_PEM"
PASSPHRASE_ENV = "TKEDISTRO_SIGNING_PASSPHRASE"
PASSPHRASE_FILE_ENV = "TKEDISTRO_SIGNING_PASSPHRASE_FILE"
SIGN_KEY_FLAG = "--sign-key"
GENERATE_HINT = "make a key pair with `tkedistro keys generate`"
# the parameters cosign writes and the only ones it (and skopeo) accept when reading
SCRYPT_N, SCRYPT_R, SCRYPT_P = 32768, 8, 1
_SCRYPT_MAXMEM = 128 * SCRYPT_N * SCRYPT_R * 2
_SALT_SIZE, _NONCE_SIZE, _BOX_KEY_SIZE = 32, 24, 32
MAX_KEY_BYTES = 64 * 1024


@dataclass(frozen=True)
class SigningKey:
    """A decrypted private key and where it came from (``source``: a file path or the name
    of an environment variable, for messages). ``pem`` (the encrypted key as given) and
    ``passphrase`` are kept for skopeo, which reads both from files; neither is shown in a
    repr."""

    source: str
    pem: bytes = field(repr=False)
    passphrase: bytes = field(repr=False)
    private: Any = field(repr=False, compare=False)  # cryptography's EllipticCurvePrivateKey

    @property
    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return bytes(self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    @property
    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the public key's DER: names the key in output and state."""
        der = _pem_body(self.public_pem, "PUBLIC KEY", self.source)
        return "sha256:" + hashlib.sha256(der).hexdigest()

    def sign(self, data: bytes) -> bytes:
        """The DER ECDSA-P256-SHA256 signature of ``data`` (cosign ``sign-blob``'s)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        return bytes(self.private.sign(data, ec.ECDSA(hashes.SHA256())))

    def sign_digest(self, digest: bytes) -> bytes:
        """The same signature, of data whose SHA-256 ``digest`` is given (a file hashed in
        blocks)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, utils

        return bytes(self.private.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256()))))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _box_key(passphrase: bytes, salt: bytes) -> bytes:
    return hashlib.scrypt(passphrase, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                          maxmem=_SCRYPT_MAXMEM, dklen=_BOX_KEY_SIZE)


def _pem(kind: str, body: bytes) -> bytes:
    text = _b64(body)
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return "\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----", ""]).encode()


def _pem_body(pem: bytes, kind: str, where: str) -> bytes:
    """The DER inside ``pem``'s one block of type ``kind``."""
    text = pem.decode("ascii", errors="replace")
    begin, end = f"-----BEGIN {kind}-----", f"-----END {kind}-----"
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise SigningError(f"{where}: not a PEM {kind} block")
    try:
        return base64.b64decode("".join(text[start + len(begin):stop].split()), validate=True)
    except binascii.Error as exc:
        raise SigningError(f"{where}: the PEM {kind} block is not base64") from exc


def encrypt_private_key(der: bytes, passphrase: bytes) -> bytes:
    """PKCS#8 ``der`` as cosign's encrypted PEM, a fresh salt and nonce each time."""
    from nacl.secret import SecretBox

    salt, nonce = secrets.token_bytes(_SALT_SIZE), secrets.token_bytes(_NONCE_SIZE)
    sealed = SecretBox(_box_key(passphrase, salt)).encrypt(der, nonce).ciphertext
    body = {"kdf": {"name": "scrypt", "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
                    "salt": _b64(salt)},
            "cipher": {"name": "nacl/secretbox", "nonce": _b64(nonce)},
            "ciphertext": _b64(sealed)}
    return _pem(PEM_TYPE, json.dumps(body, separators=(",", ":")).encode())


def _envelope(pem: bytes, where: str) -> dict[str, Any]:
    kind = next((k for k in PEM_TYPES if f"-----BEGIN {k}-----".encode() in pem), None)
    if kind is None:
        raise SigningError(f"{where}: not a cosign private key (expected a PEM block "
                           f"{PEM_TYPES[0]!r} or {PEM_TYPES[1]!r})", hint=GENERATE_HINT)
    try:
        body = json.loads(_pem_body(pem, kind, where))
        kdf, cipher = body["kdf"], body["cipher"]
        params = (kdf["params"]["N"], kdf["params"]["r"], kdf["params"]["p"])
        known = (kdf["name"], cipher["name"], params) == (
            "scrypt", "nacl/secretbox", (SCRYPT_N, SCRYPT_R, SCRYPT_P))
        parts = {name: base64.b64decode(value, validate=True) for name, value in
                 (("salt", kdf["salt"]), ("nonce", cipher["nonce"]),
                  ("ciphertext", body["ciphertext"]))}
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise SigningError(f"{where}: the encrypted private key is damaged ({exc})") from exc
    if not known or len(parts["nonce"]) != _NONCE_SIZE:
        raise SigningError(f"{where}: the private key is encrypted with parameters cosign does "
                           "not write (expected scrypt N=32768 r=8 p=1, nacl/secretbox)")
    return parts


def decrypt_private_key(pem: bytes, passphrase: bytes, where: str) -> bytes:
    """The PKCS#8 DER inside cosign's encrypted ``pem``; ``SigningError`` naming ``where``
    when it is not such a key or the passphrase does not open it."""
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    parts = _envelope(pem, where)
    try:
        return bytes(SecretBox(_box_key(passphrase, parts["salt"])).decrypt(
            parts["ciphertext"], parts["nonce"]))
    except CryptoError as exc:
        raise SigningError(
            f"{where}: wrong passphrase for the signing key (or the key is damaged)",
            hint=f"set the passphrase the key was made with in {PASSPHRASE_FILE_ENV} (a file) "
                 f"or {PASSPHRASE_ENV}") from exc


def load_signing_key(pem: bytes, passphrase: bytes, where: str) -> SigningKey:
    """The ECDSA P-256 key in cosign's encrypted ``pem``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    der = decrypt_private_key(pem, passphrase, where)
    try:
        private = serialization.load_der_private_key(der, password=None)
    except ValueError as exc:
        raise SigningError(f"{where}: the decrypted key is not a PKCS#8 private key") from exc
    if not (isinstance(private, ec.EllipticCurvePrivateKey)
            and isinstance(private.curve, ec.SECP256R1)):
        raise SigningError(f"{where}: expected an ECDSA P-256 key (cosign's), found "
                           f"{type(private).__name__}", hint=GENERATE_HINT)
    return SigningKey(where, pem, passphrase, private)


def new_key_pair(passphrase: bytes) -> tuple[bytes, bytes]:
    """A fresh P-256 pair: (encrypted private PEM, public PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return encrypt_private_key(der, passphrase), public


def generate_key_pair(out_dir: Path, passphrase: bytes) -> tuple[Path, Path]:
    """Write ``out_dir/cosign.key`` (0600) and ``cosign.pub``; refuse to replace either."""
    private_path, public_path = out_dir / PRIVATE_KEY_NAME, out_dir / PUBLIC_KEY_NAME
    existing = [str(p) for p in (private_path, public_path) if p.exists() or p.is_symlink()]
    if existing:
        raise SigningError(f"{' and '.join(existing)} already exist(s): a key pair is never "
                           "overwritten", hint="move it away or choose another --output-dir")
    private, public = new_key_pair(passphrase)
    if not files.create_exclusive(private_path, private, mode=0o600):
        raise SigningError(f"{private_path} appeared meanwhile: not overwritten")
    if not files.create_exclusive(public_path, public, mode=0o644):
        files.remove(private_path)
        raise SigningError(f"{public_path} appeared meanwhile: not overwritten")
    return private_path, public_path


def read_passphrase(env: Mapping[str, str]) -> bytes:
    """The passphrase: the first line of ``TKEDISTRO_SIGNING_PASSPHRASE_FILE``, else
    ``TKEDISTRO_SIGNING_PASSPHRASE``, else empty."""
    path = env.get(PASSPHRASE_FILE_ENV)
    if path:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SigningError(f"{PASSPHRASE_FILE_ENV}={path}: cannot read the passphrase "
                               f"file ({exc.strerror})") from exc
        return data.split(b"\n", 1)[0].removesuffix(b"\r")
    passphrase = env.get(PASSPHRASE_ENV, "")
    if "\n" in passphrase:
        raise SigningError(f"{PASSPHRASE_ENV}: a passphrase holds no line break (skopeo "
                           "reads only the first line)")
    return passphrase.encode()


def _read_key_file(path: Path, where: str) -> bytes:
    try:
        if not path.is_file():
            raise SigningError(f"{where}: no such key file {path}", hint=GENERATE_HINT)
        if path.stat().st_size > MAX_KEY_BYTES:
            raise SigningError(f"{where}: {path} is too big for a key file")
        return path.read_bytes()
    except OSError as exc:
        raise SigningError(f"{where}: cannot read {path} ({exc.strerror})") from exc


def resolve_signing_key(flag: Path | None,
                        env: Mapping[str, str] | None = None) -> SigningKey | None:
    """The signing key: ``--sign-key`` > ``TKEDISTRO_SIGNING_KEY`` (a path) >
    ``TKEDISTRO_SIGNING_KEY_PEM`` (its text); None when none is given (unsigned)."""
    env = os.environ if env is None else env
    if flag is not None:
        where, pem = f"{SIGN_KEY_FLAG} {flag}", _read_key_file(flag, f"{SIGN_KEY_FLAG} {flag}")
    elif env.get(KEY_ENV):
        path = Path(env[KEY_ENV])
        where, pem = f"{KEY_ENV}={path}", _read_key_file(path, f"{KEY_ENV}={path}")
    elif env.get(KEY_PEM_ENV):
        where, pem = KEY_PEM_ENV, env[KEY_PEM_ENV].encode()
    else:
        return None
    return load_signing_key(pem, read_passphrase(env), where)


@dataclass(frozen=True)
class PublicKey:
    """A verification key (ECDSA P-256), the file it was read from and what named that
    file (a flag or variable, for messages)."""

    key: EllipticCurvePublicKey
    source: str
    path: Path


def load_public_key(path: Path, source: str) -> PublicKey:
    """The ECDSA P-256 public key in the PEM file ``path`` (``source``: the flag or variable
    that named it); ``SigningError`` naming the file when it cannot be read or is not one."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningError(f"{source} {path}: cannot read the public key: "
                           f"{exc.strerror or exc}") from None
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"{source} {path}: not a PEM public key: {exc}",
                           hint="give the release's cosign.pub (BEGIN PUBLIC KEY)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise SigningError(f"{source} {path}: expected an ECDSA P-256 public key, got "
                           f"{type(key).__name__}", hint="give the release's cosign.pub")
    return PublicKey(key, f"{source} {path}", path)
