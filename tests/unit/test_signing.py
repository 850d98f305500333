"""Signing: the cosign key pair (made, read, refused), detached file signatures checked by
openssl, the provenance's DSSE envelope checked by securesystemslib, and the finish signing
every shipped file."""

from __future__ import annotations

import base64
import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tkedistro.artifacts.finish import sign_output
from tkedistro.cli.app import app
from tkedistro.core.errors import SigningError
from tkedistro.signing import blobs, dsse, images, keys

runner = CliRunner()
PASSPHRASE = "correct horse battery"


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    keys.generate_key_pair(folder, PASSPHRASE.encode())
    return folder


@pytest.fixture
def signing_key(key_pair: Path) -> keys.SigningKey:
    return keys.load_signing_key((key_pair / keys.PRIVATE_KEY_NAME).read_bytes(),
                                 PASSPHRASE.encode(), "test key")


def _openssl_verifies(public: Path, target: Path, signature: Path, tmp: Path) -> bool:
    der = tmp / (signature.name + ".der")
    der.write_bytes(base64.b64decode(signature.read_bytes()))
    done = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(public), "-signature",
                           str(der), str(target)], capture_output=True, text=True)
    return done.returncode == 0 and "Verified OK" in done.stdout


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None,
                                   reason="needs openssl (apt-get install openssl)")


# -- keys ---------------------------------------------------------------------------------

def test_a_private_key_decrypts_to_the_key_it_was_made_from() -> None:
    pem, public = keys.new_key_pair(b"pw")
    loaded = keys.load_signing_key(pem, b"pw", "k")
    assert loaded.public_pem == public
    assert pem.startswith(b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n")
    # a fresh salt and nonce each time: the same key encrypts differently
    der = keys.decrypt_private_key(pem, b"pw", "k")
    assert keys.encrypt_private_key(der, b"pw") != keys.encrypt_private_key(der, b"pw")
    assert keys.decrypt_private_key(keys.encrypt_private_key(der, b"pw"), b"pw", "k") == der


def test_the_private_key_is_cosigns_encrypted_format() -> None:
    pem, _ = keys.new_key_pair(b"")
    body = json.loads(base64.b64decode(b"".join(pem.splitlines()[1:-1])))
    assert body["kdf"]["name"] == "scrypt"
    assert body["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert len(base64.b64decode(body["kdf"]["salt"])) == 32
    assert body["cipher"]["name"] == "nacl/secretbox"
    assert len(base64.b64decode(body["cipher"]["nonce"])) == 24
    # PKCS#8 DER inside, 16 bytes of Poly1305 tag before it
    assert len(base64.b64decode(body["ciphertext"])) > 16 + 100
    # the SIGSTORE spelling of the PEM type is read too (newer cosign writes it)
    other = pem.replace(b"ENCRYPTED COSIGN PRIVATE KEY", b"ENCRYPTED SIGSTORE PRIVATE KEY")
    assert keys.load_signing_key(other, b"", "k").fingerprint.startswith("sha256:")


def test_keys_generate_writes_a_0600_private_key_and_refuses_to_overwrite(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keys.PASSPHRASE_ENV, PASSPHRASE)
    result = runner.invoke(app, ["keys", "generate", "--output-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    private, public = tmp_path / "cosign.key", tmp_path / "cosign.pub"
    assert data["private_key"] == str(private) and data["public_key"] == str(public)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert PASSPHRASE not in result.output and "ENCRYPTED" not in result.output
    key = keys.load_signing_key(private.read_bytes(), PASSPHRASE.encode(), str(private))
    assert data["fingerprint"] == key.fingerprint
    before = private.read_bytes()
    again = runner.invoke(app, ["keys", "generate", "--output-dir", str(tmp_path)])
    assert again.exit_code == 27
    assert f"{private}" in again.output and "never overwritten" in again.output
    assert private.read_bytes() == before


def test_a_wrong_passphrase_exits_27_naming_the_key_file_and_never_shows_the_secret(
        key_pair: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "not the passphrase")
    key = key_pair / "cosign.key"
    result = runner.invoke(app, ["--root", str(tmp_path), "build", "1.20", "--sign-key",
                                 str(key)])
    assert result.exit_code == 27, result.output
    assert f"--sign-key {key}: wrong passphrase for the signing key" in result.output
    assert keys.PASSPHRASE_FILE_ENV in result.output  # says where the passphrase goes
    assert "not the passphrase" not in result.output
    # the same through the environment, naming the variable
    monkeypatch.setenv(keys.KEY_PEM_ENV, key.read_text())
    result = runner.invoke(app, ["--root", str(tmp_path), "images", "1.20"])
    assert result.exit_code == 27
    assert f"{keys.KEY_PEM_ENV}: wrong passphrase" in result.output
    assert "ENCRYPTED" not in result.output and "not the passphrase" not in result.output


def test_a_bad_key_file_exits_27_naming_it(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    monkeypatch.setenv(keys.KEY_ENV, str(bad))
    result = runner.invoke(app, ["--root", str(tmp_path), "build", "1.20"])
    assert result.exit_code == 27
    assert f"{keys.KEY_ENV}={bad}: not a cosign private key" in result.output
    assert "tkedistro keys generate" in result.output
    missing = tmp_path / "missing.key"
    result = runner.invoke(app, ["--root", str(tmp_path), "build", "1.20", "--sign-key",
                                 str(missing)])
    assert result.exit_code == 27
    assert f"--sign-key {missing}: no such key file" in result.output


def test_the_flag_wins_over_the_path_variable_which_wins_over_the_key_text(
        key_pair: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    keys.generate_key_pair(other, b"")
    env = {keys.KEY_ENV: str(other / "cosign.key"), keys.KEY_PEM_ENV: "garbage"}
    flagged = keys.resolve_signing_key(key_pair / "cosign.key",
                                       {**env, keys.PASSPHRASE_ENV: PASSPHRASE})
    assert flagged is not None and flagged.source == f"--sign-key {key_pair / 'cosign.key'}"
    from_path = keys.resolve_signing_key(None, env)
    assert from_path is not None and from_path.source.startswith(keys.KEY_ENV + "=")
    text = (key_pair / "cosign.key").read_text()
    from_text = keys.resolve_signing_key(None, {keys.KEY_PEM_ENV: text,
                                                keys.PASSPHRASE_ENV: PASSPHRASE})
    assert from_text is not None and from_text.source == keys.KEY_PEM_ENV
    assert from_text.fingerprint == flagged.fingerprint
    assert keys.resolve_signing_key(None, {}) is None
    assert text not in repr(from_text) and PASSPHRASE not in repr(from_text)


def test_the_passphrase_file_gives_its_first_line(key_pair: Path, tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    env = {keys.PASSPHRASE_FILE_ENV: str(secret), keys.PASSPHRASE_ENV: "ignored"}
    assert keys.read_passphrase(env) == PASSPHRASE.encode()
    assert keys.resolve_signing_key(key_pair / "cosign.key", env) is not None
    with pytest.raises(SigningError, match=f"{keys.PASSPHRASE_FILE_ENV}="):
        keys.read_passphrase({keys.PASSPHRASE_FILE_ENV: str(tmp_path / "none")})


# -- file signatures ----------------------------------------------------------------------

@needs_openssl
def test_a_detached_signature_verifies_with_openssl(signing_key: keys.SigningKey,
                                                    key_pair: Path, tmp_path: Path) -> None:
    target = tmp_path / "kube-apiserver"
    target.write_bytes(b"\x7fELF" + bytes(range(256)) * 5000)  # more than one block
    [name] = blobs.sign_files(tmp_path, ["kube-apiserver"], signing_key)
    assert name == "kube-apiserver.sig"
    assert _openssl_verifies(key_pair / "cosign.pub", target, tmp_path / name, tmp_path)
    # one bit flipped: openssl says no
    target.write_bytes(b"\x7fELG" + bytes(range(256)) * 5000)
    assert not _openssl_verifies(key_pair / "cosign.pub", target, tmp_path / name, tmp_path)
    # the in-memory form is the same format
    signed = blobs.sign_blob(b"abc", signing_key)
    (tmp_path / "abc").write_bytes(b"abc")
    (tmp_path / "abc.sig").write_bytes(signed)
    assert _openssl_verifies(key_pair / "cosign.pub", tmp_path / "abc", tmp_path / "abc.sig",
                             tmp_path)


# -- the provenance's DSSE envelope -------------------------------------------------------

def test_the_dsse_envelope_verifies_with_securesystemslib(signing_key: keys.SigningKey,
                                                          tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    statement = b'{"_type": "https://in-toto.io/Statement/v1", "subject": []}\n'
    (tmp_path / "provenance.intoto.json").write_bytes(statement)
    name = dsse.write_envelope(tmp_path, "provenance.intoto.json", signing_key)
    [line] = (tmp_path / name).read_text().splitlines()
    data = json.loads(line)
    assert data["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(data["payload"]) == statement
    [signature] = data["signatures"]
    assert signature["keyid"] == dsse.keyid_of(signing_key)
    public = serialization.load_pem_public_key(signing_key.public_pem)
    sslib_key = SSlibKey.from_crypto(public, keyid=signature["keyid"])
    envelope = Envelope.from_dict(json.loads(line))
    verified = envelope.verify([sslib_key], 1)
    assert list(verified) == [signature["keyid"]]
    # another key does not verify it
    _, other_pem = keys.new_key_pair(b"")
    other = SSlibKey.from_crypto(serialization.load_pem_public_key(other_pem),
                                 keyid=signature["keyid"])
    from securesystemslib.exceptions import VerificationError
    with pytest.raises(VerificationError):
        Envelope.from_dict(json.loads(line)).verify([other], 1)


# -- the finish signs every shipped file --------------------------------------------------

@needs_openssl
def test_the_finish_signs_every_file_in_the_sums_the_sums_and_the_provenance(
        signing_key: keys.SigningKey, key_pair: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shipped = ["bin/linux/amd64/kubectl", "release/kubernetes-server-linux-amd64.tar.gz",
               "images/pause.oci.tar", "sbom.spdx.json"]
    for name in [*shipped, "SHA256SUMS", "SHA512SUMS", "provenance.intoto.json"]:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(name.encode() * 10)
    info = sign_output(out, shipped, signing_key)
    assert info["files"] == len(shipped) + 3 and info["envelope"] == "provenance.intoto.jsonl"
    assert info["key"] == signing_key.fingerprint
    for name in [*shipped, "SHA256SUMS", "SHA512SUMS", "provenance.intoto.json"]:
        assert _openssl_verifies(key_pair / "cosign.pub", out / name, out / f"{name}.sig",
                                 tmp_path), name
    assert (out / "provenance.intoto.jsonl").is_file()


# -- image signatures (the format; the registry round trip is the docker tier's) ----------

def test_an_image_signature_attachment_is_an_oci_layout_cosign_reads(
        signing_key: keys.SigningKey, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    digest = "sha256:" + "ab" * 32
    ref = "registry.example/tke/kube-apiserver:v1.20.2-tke.1"
    tag = images.write_attachment(tmp_path, ref, digest, signing_key)
    assert tag == f"sha256-{'ab' * 32}.sig"
    index = json.loads((tmp_path / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == tag
    manifest = json.loads((tmp_path / "blobs/sha256" / entry["digest"][7:]).read_text())
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    payload = (tmp_path / "blobs/sha256" / layer["digest"][7:]).read_bytes()
    critical = json.loads(payload)["critical"]
    assert critical == {"identity": {"docker-reference": ref},
                        "image": {"docker-manifest-digest": digest},
                        "type": "cosign container image signature"}
    signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    public = serialization.load_pem_public_key(signing_key.public_pem)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, payload, ec.ECDSA(hashes.SHA256()))  # raises when it does not
    with pytest.raises(SigningError, match="not a sha256 image digest"):
        images.attachment_tag("sha256:../../x")
