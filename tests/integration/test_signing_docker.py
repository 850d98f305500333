"""Docker tier, issue 27 item 1: signing with a cosign key.

- Images pushed to a real registry (Debian's docker-registry on loopback) with a key carry
  sigstore signatures: ``verify_pushed_image`` passes with the key's ``cosign.pub``, names the
  failure with another key, and names an unsigned image.
- ``tkedistro build --sign-key`` of the synthetic upstream writes a ``.sig`` (openssl-verified)
  for every file of SHA256SUMS, the sums files and the provenance, and the provenance's DSSE
  envelope; without a key the build says it is unsigned.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.ociarchive import write_oci_archive
from tests.helpers.registrylogin import log_in
from tests.integration.test_build_arm64_docker import go_cache, root
from tkedistro.cli.app import app
from tkedistro.engine.registry import LocalRegistry
from tkedistro.images.push import push_images
from tkedistro.signing import keys
from tkedistro.signing.images import verify_pushed_image

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]
__all__ = ["go_cache", "root"]  # fixtures: a distro of the synthetic upstream, images: [pause]
PASSPHRASE = "s3cret passphrase"
TAG = "v1.20.2-tke.1"


@pytest.fixture(autouse=True)
def _tools() -> None:
    for tool in ("skopeo", "docker-registry", "openssl"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (apt-get install {tool})")


@pytest.fixture
def key_pairs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The release key (passphrase from a file) and another one."""
    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    monkeypatch.setenv(keys.PASSPHRASE_FILE_ENV, str(passphrase))
    keys.generate_key_pair(tmp_path / "release-key", PASSPHRASE.encode())
    keys.generate_key_pair(tmp_path / "other-key", b"")
    return tmp_path / "release-key", tmp_path / "other-key"


def _images_json(out: Path, component: str, digests: tuple[str, str]) -> None:
    entry = {"component": component, "ref": f"tkedistro.local/k8s/{component}:{TAG}",
             "index_digest": digests[0], "archive": f"images/{component}.oci.tar",
             "manifests": {"linux/amd64": digests[1]}}
    (out / "images" / "images.json").write_text(json.dumps({"images": [entry]}))


def test_pushed_images_are_signed_and_verify_only_with_their_key(
        tmp_path: Path, key_pairs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    release_key, other_key = key_pairs
    signing = keys.resolve_signing_key(release_key / "cosign.key")
    assert signing is not None
    signed_out, unsigned_out = tmp_path / "signed", tmp_path / "unsigned"
    signed = write_oci_archive(signed_out / "images/hello.oci.tar", "signed", TAG)
    _images_json(signed_out, "hello", signed)
    plain = write_oci_archive(unsigned_out / "images/plain.oci.tar", "plain", TAG)
    _images_json(unsigned_out, "plain", plain)
    signed_digest, plain_digest = signed[0], plain[0]
    with LocalRegistry(tmp_path / "registry") as registry:
        log_in(registry, tmp_path / "login", monkeypatch)
        [pushed] = push_images(signed_out, registry.address, signing=signing)
        [unsigned_image] = push_images(unsigned_out, registry.address)
        assert pushed.digest == signed_digest and len(pushed.signatures) == 2  # index + amd64
        assert verify_pushed_image(pushed.ref, release_key / "cosign.pub") is None
        assert verify_pushed_image(pushed.by_digest, release_key / "cosign.pub") is None

        wrong = verify_pushed_image(pushed.ref, other_key / "cosign.pub")
        assert wrong == (f"{pushed.ref}: {signed_digest}: the signature does not verify with "
                         f"the public key {other_key / 'cosign.pub'}")
        unsigned = verify_pushed_image(unsigned_image.ref, release_key / "cosign.pub")
        assert unsigned is not None
        assert unsigned.startswith(f"{unsigned_image.ref}: {plain_digest}: ")
        assert "no sigstore signature" in unsigned
        # a signature is for its own repository and tag: copied under another name, refused
        copied = f"{registry.address}/elsewhere/hello:{TAG}"
        subprocess.run(["skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false",
                        "--dest-tls-verify=false", f"docker://{pushed.ref}",
                        f"docker://{copied}"], check=True, capture_output=True)
        assert "no sigstore signature" in (verify_pushed_image(
            copied, release_key / "cosign.pub") or "")
        # the same through `tkedistro verify IMAGE --key`: blobs and signatures, exit 0 or 26
        ok = CliRunner().invoke(app, ["verify", pushed.ref, "--key",
                                      str(release_key / "cosign.pub")])
        assert ok.exit_code == 0, ok.output
        assert ok.stdout.splitlines()[-1] == "verify: 0 problems in 0 files, 1 image"
        for image, key, said in ((pushed.ref, other_key, "does not verify with the public key"),
                                 (unsigned_image.ref, release_key, "no sigstore signature")):
            bad = CliRunner().invoke(app, ["verify", image, "--key", str(key / "cosign.pub")])
            assert bad.exit_code == 26, bad.output
            pinned = image.rsplit(":", 1)[0] + "@sha256:"
            assert f"signature: {image}: {pinned}" in bad.output and said in bad.output


def _openssl_verifies(public: Path, target: Path, tmp: Path) -> bool:
    der = tmp / "signature.der"
    der.write_bytes(base64.b64decode(Path(f"{target}.sig").read_bytes()))
    done = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(public), "-signature",
                           str(der), str(target)], capture_output=True, text=True)
    return done.returncode == 0


def test_a_signed_build_signs_every_shipped_file_and_an_unsigned_one_says_so(
        root: Path, tmp_path: Path, key_pairs: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    release_key, _ = key_pairs
    result = CliRunner().invoke(app, ["--root", str(root), "build", "1.20", "-p", "linux/amd64",
                                      "--sign-key", str(release_key / "cosign.key")])
    assert result.exit_code == 0, result.output
    assert "unsigned" not in result.output and PASSPHRASE not in result.output
    output = root / "_output" / "1.20"
    summed = [line.split("  ", 1)[1] for line in (output / "SHA256SUMS").read_text().splitlines()]
    assert "images/pause.oci.tar" in summed and "sbom.spdx.json" in summed
    for name in [*summed, "SHA256SUMS", "SHA512SUMS", "provenance.intoto.json"]:
        assert _openssl_verifies(release_key / "cosign.pub", output / name, tmp_path), name
    envelope = json.loads((output / "provenance.intoto.jsonl").read_text())
    assert base64.b64decode(envelope["payload"]) == \
        (output / "provenance.intoto.json").read_bytes()
    public = serialization.load_pem_public_key((release_key / "cosign.pub").read_bytes())
    keyid = envelope["signatures"][0]["keyid"]
    Envelope.from_dict(envelope).verify([SSlibKey.from_crypto(public, keyid=keyid)], 1)
    info = json.loads((output / "build-info.json").read_text())
    assert info["artifacts"]["signatures"]["files"] == len(summed) + 3
    # what the receiving side runs: every signature and the envelope check out with the key
    checked = CliRunner().invoke(app, ["--root", str(root), "verify", "1.20", "--key",
                                       str(release_key / "cosign.pub"), "--require-signatures"])
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.splitlines()[-1].startswith("verify: 0 problems in ")

    # images --push with the key (from the environment this time): the output is current,
    # the pushed image is signed
    monkeypatch.setenv(keys.KEY_ENV, str(release_key / "cosign.key"))
    with LocalRegistry(tmp_path / "registry") as registry:
        log_in(registry, tmp_path / "login", monkeypatch)
        result = CliRunner().invoke(app, ["--root", str(root), "images", "1.20", "-p",
                                          "linux/amd64", "--push", registry.address, "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["build"] == "up_to_date"
        [pushed] = report["pushed"]
        assert len(pushed["signatures"]) == 2  # the index and its one platform
        assert verify_pushed_image(pushed["ref"], release_key / "cosign.pub") is None
    monkeypatch.delenv(keys.KEY_ENV)

    # no key: the artifacts are remade unsigned, and the build says so
    result = CliRunner().invoke(app, ["--root", str(root), "build", "1.20", "-p", "linux/amd64"])
    assert result.exit_code == 0, result.output
    assert "unsigned: no signing key (see `tkedistro keys generate`" in result.output
    assert not list(output.rglob("*.sig")) and not (output / "provenance.intoto.jsonl").exists()
