"""``tkedistro verify`` through the CLI on a small release folder made by the build's own
writers and signed with openssl (``tests/helpers/releasefolder.py``): a good release passes,
each kind of tampering exits 26 naming what was tampered with."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.manifests import manifest_text
from tests.helpers.releasefolder import (
    PATCH,
    PATCH_BYTES,
    UPSTREAM,
    first_layer,
    flip_blob_byte,
    flip_byte,
    make_key,
    make_release,
    sign_file,
    sign_release,
)
from tkedistro.artifacts.checksums import write_checksums
from tkedistro.cli.app import app
from tkedistro.engine import skopeo

TARBALL = "release/kubernetes-node-linux-amd64.tar.gz"
ARCHIVE = "images/kube-proxy.oci.tar"
BINARY = "bin/linux/amd64/kube-proxy"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(a signed release folder, its public key, the private key); tests copy the folder."""
    root = tmp_path_factory.mktemp("release")
    out = make_release(root)
    private, public = make_key(root / "keys")
    sign_release(out, private)
    return out, public, private


@pytest.fixture
def release(signed: tuple[Path, Path, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "copied" / "1.20"
    shutil.copytree(signed[0], copy)
    return copy


@pytest.fixture
def key(signed: tuple[Path, Path, Path]) -> Path:
    return signed[1]


def verify(*args: str) -> tuple[int, str]:
    """(exit code, stdout): the problems, notes and summary; the error goes to stderr."""
    result = CliRunner().invoke(app, ["verify", *args])
    return result.exit_code, result.stdout


def refused(*args: str) -> tuple[int, str]:
    """(exit code, stdout and stderr) of a run refused before verifying anything."""
    result = CliRunner().invoke(app, ["verify", *args])
    return result.exit_code, result.output


def lines(output: str) -> list[str]:
    return output.splitlines()


def test_a_signed_release_copied_anywhere_verifies(release: Path, key: Path) -> None:
    code, out = verify(str(release), "--key", str(key))
    assert code == 0, out
    assert lines(out) == ["verify: 0 problems in 5 files, 1 image"]


def test_without_a_key_signatures_are_said_to_be_unchecked(release: Path) -> None:
    code, out = verify(str(release))
    assert code == 0, out
    assert "signatures not checked: no --key (or TKEDISTRO_VERIFY_KEY) given" in lines(out)


def test_the_key_comes_from_the_environment_too(release: Path, key: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TKEDISTRO_VERIFY_KEY", str(key))
    flip_byte(release / BINARY)
    (release / f"{BINARY}.sig").unlink()
    code, out = verify(str(release))
    assert code == 26
    assert (f"signature: {BINARY}: no signature (kube-proxy.sig is missing)") in lines(out)


def test_require_signatures_without_a_key_is_refused(release: Path) -> None:
    code, out = refused(str(release), "--require-signatures")
    assert code == 27
    assert "--require-signatures: no key to check them with" in out


def test_a_flipped_byte_in_a_tarball_is_named(release: Path, key: Path) -> None:
    flip_byte(release / TARBALL)
    code, out = verify(str(release), "--key", str(key))
    assert code == 26
    assert (f"sums: {TARBALL}: does not match SHA256SUMS or SHA512SUMS (the file changed "
            "after the build)") in lines(out)
    assert any(line.startswith(f"signature: {TARBALL}: kubernetes-node-linux-amd64.tar.gz.sig "
                               f"does not verify with --key {key}") for line in lines(out))
    assert lines(out)[-1] == "verify: 2 problems"


def test_a_flipped_byte_in_an_image_layer_is_named(release: Path) -> None:
    layer = first_layer(release / ARCHIVE)
    flip_blob_byte(release / ARCHIVE, layer)
    code, out = verify(str(release))
    assert code == 26
    named = [line for line in lines(out) if line.startswith(f"image: {ARCHIVE}: ")]
    assert named == [f"image: {ARCHIVE}: blob {layer} (layer of linux/amd64 manifest) does not "
                     f"match its digest (its bytes hash to {named[0].split()[-1]}"]


def test_a_layer_whose_sums_were_rewritten_is_still_named(release: Path) -> None:
    """Whoever re-sums a tampered archive still leaves its blobs and the SBOM behind."""
    layer = first_layer(release / ARCHIVE, "linux/arm64")
    flip_blob_byte(release / ARCHIVE, layer)
    listed = [line.split("  ", 1)[1] for line in (release / "SHA256SUMS").read_text().splitlines()]
    write_checksums(release, listed)
    code, out = verify(str(release))
    assert code == 26
    assert any(f"blob {layer} (layer of linux/arm64 manifest) does not match its digest" in line
               for line in lines(out))
    assert any(line.startswith(f"sbom: {ARCHIVE}: sbom.spdx.json gives it another sha256")
               for line in lines(out))
    assert any(line.startswith(f"provenance: {ARCHIVE}: the provenance gives sha256")
               for line in lines(out))


def _edit_json(path: Path, edit: object) -> None:
    data = json.loads(path.read_text())
    edit(data)  # type: ignore[operator]
    path.write_text(json.dumps(data, indent=2))


def _resum(release: Path) -> None:
    listed = [line.split("  ", 1)[1] for line in (release / "SHA256SUMS").read_text().splitlines()]
    write_checksums(release, listed)


def test_an_sbom_that_leaves_out_a_file_is_named(release: Path, key: Path) -> None:
    _edit_json(release / "sbom.spdx.json", lambda d: d.__setitem__("packages", [
        p for p in d["packages"] if p.get("packageFileName") != TARBALL]))
    _resum(release)
    code, out = verify(str(release), "--key", str(key))
    assert code == 26
    assert f"sbom: {TARBALL}: not named in sbom.spdx.json" in lines(out)
    assert any(line.startswith("signature: SHA256SUMS: SHA256SUMS.sig does not verify")
               for line in lines(out))


def test_an_sbom_that_is_not_spdx_is_named(release: Path) -> None:
    _edit_json(release / "sbom.spdx.json", lambda d: d.pop("spdxVersion"))
    code, out = verify(str(release))
    assert code == 26
    assert "sums: sbom.spdx.json: does not match SHA256SUMS or SHA512SUMS (the file changed " \
           "after the build)" in lines(out)
    assert any(line.startswith("sbom: sbom.spdx.json: not ") for line in lines(out))


def test_a_dropped_provenance_subject_is_named(release: Path, key: Path) -> None:
    _edit_json(release / "provenance.intoto.json", lambda d: d.__setitem__("subject", [
        s for s in d["subject"] if s["name"] != TARBALL]))
    code, out = verify(str(release), "--key", str(key))
    assert code == 26
    assert f"provenance: {TARBALL}: not a subject of the provenance" in lines(out)
    assert any(line.startswith("signature: provenance.intoto.json: provenance.intoto.json.sig "
                               "does not verify") for line in lines(out))
    assert ("signature: provenance.intoto.jsonl: its payload is not provenance.intoto.json "
            "byte for byte") in lines(out)


def test_a_provenance_without_the_patch_digest_is_named(release: Path) -> None:
    def drop(data: dict[str, object]) -> None:
        for entry in data["predicate"]["buildDefinition"]["resolvedDependencies"]:  # type: ignore[index]
            if entry["name"] == PATCH:
                entry["digest"] = {"sha1": "0" * 40}

    _edit_json(release / "provenance.intoto.json", drop)
    code, out = verify(str(release))
    assert code == 26
    assert f"provenance: {PATCH}: the provenance gives the patch no sha256" in lines(out)


def test_another_key_verifies_nothing(release: Path, tmp_path: Path) -> None:
    _private, other = make_key(tmp_path / "other")
    code, out = verify(str(release), "--key", str(other))
    assert code == 26
    failed = [line for line in lines(out) if line.startswith("signature: ")]
    # listed files, the sums and the statement beside them, the envelope (its own signature)
    assert len(failed) == 5 + 3 + 1
    assert f"signature: provenance.intoto.jsonl: no DSSE signature verifies with --key " \
           f"{other}" in failed
    assert lines(out)[-1] == "verify: 9 problems"


def test_a_missing_signature_is_named(release: Path, key: Path) -> None:
    (release / f"{TARBALL}.sig").unlink()
    code, out = verify(str(release), "--key", str(key))
    assert code == 26
    assert lines(out) == [f"signature: {TARBALL}: no signature "
                          "(kubernetes-node-linux-amd64.tar.gz.sig is missing)",
                          "verify: 1 problem"]


def test_a_file_nobody_listed_is_named(release: Path) -> None:
    (release / "bin" / "linux" / "amd64" / "kubectl").write_bytes(b"who put this here")
    code, out = verify(str(release), "--json")
    assert code == 26
    document = json.loads(out)
    assert document["ok"] is False
    assert document["problems"] == [{"check": "sums", "subject": "bin/linux/amd64/kubectl",
                                     "problem": "shipped but not listed in SHA256SUMS"}]


def test_json_says_what_was_checked(release: Path, key: Path) -> None:
    code, out = verify(str(release), "--key", str(key), "--json")
    assert code == 0
    document = json.loads(out)
    assert (document["ok"], document["files"], document["images"], document["problems"],
            document["notes"]) == (True, 5, 1, [], [])


def test_a_folder_that_is_not_a_release_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, out = refused(str(tmp_path / "empty"))
    assert code == 3
    assert f"{tmp_path / 'empty'}: not a release folder: it has no SHA256SUMS" in out
    code, out = refused(str(tmp_path / "gone"))
    assert code == 3
    assert "no such folder, and not a release name or an image reference" in out
    code, out = refused("outptu")
    assert code == 3
    assert "'outptu': no such folder, and not a release name or an image reference" in out


def test_an_unreadable_key_is_named(release: Path, tmp_path: Path) -> None:
    code, out = refused(str(release), "--key", str(tmp_path / "none.pub"))
    assert code == 27
    assert f"--key {tmp_path / 'none.pub'}: cannot read the public key" in out
    (tmp_path / "bad.pub").write_text("not a key\n")
    code, out = refused(str(release), "--key", str(tmp_path / "bad.pub"))
    assert code == 27
    assert f"--key {tmp_path / 'bad.pub'}: not a PEM public key" in out


def _repo(tmp_path: Path, release: Path, patch: bytes = PATCH_BYTES) -> Path:
    repo = tmp_path / "repo"
    (repo / "releases").mkdir(parents=True)
    (repo / "releases" / "1.20.yaml").write_text(manifest_text(commit=UPSTREAM,
                                                               patches=[PATCH]))
    (repo / PATCH).parent.mkdir(parents=True)
    (repo / PATCH).write_bytes(patch)
    shutil.copytree(release, repo / "_output" / "1.20")
    return repo


def test_a_release_name_verifies_the_workspace_output(release: Path, key: Path,
                                                      tmp_path: Path) -> None:
    repo = _repo(tmp_path, release)
    result = CliRunner().invoke(app, ["--root", str(repo), "verify", "1.20", "--key", str(key)])
    assert result.exit_code == 0, result.output
    assert lines(result.stdout) == ["verify: 0 problems in 5 files, 1 image"]


def test_a_release_built_from_other_patches_is_named(release: Path, tmp_path: Path) -> None:
    repo = _repo(tmp_path, release, PATCH_BYTES.replace(b"+fixed", b"+fixed again"))
    result = CliRunner().invoke(app, ["--root", str(repo), "verify", "1.20"])
    assert result.exit_code == 26
    assert any(line.startswith(f"provenance: {PATCH}: the provenance gives the patch sha256 ")
               and "the file in the distro repo has" in line for line in lines(result.stdout))


def test_a_release_not_built_is_named(tmp_path: Path, release: Path) -> None:
    repo = _repo(tmp_path, release)
    shutil.rmtree(repo / "_output")
    result = CliRunner().invoke(app, ["--root", str(repo), "verify", "1.20"])
    assert result.exit_code == 3
    assert "_output/1.20: release 1.20 is not built" in result.output


def _serve(release: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``skopeo copy docker://REF oci:DIR`` answered from the release's archive."""
    asked: list[str] = []

    def copy(ref: str, layout: Path) -> None:
        asked.append(ref)
        with tarfile.open(release / ARCHIVE) as tar:
            tar.extractall(layout, filter="data")

    monkeypatch.setattr(skopeo, "copy_to_layout", copy)
    return asked


def _index(release: Path) -> str:
    images = json.loads((release / "images" / "images.json").read_text())["images"]
    return str(images[0]["index_digest"])


def test_an_image_by_digest_verifies(release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _serve(release, monkeypatch)
    ref = f"127.0.0.1:5000/k8s/kube-proxy@{_index(release)}"
    code, out = verify(ref)
    assert code == 0, out
    assert asked == [ref]
    assert lines(out)[-1] == "verify: 0 problems in 0 files, 1 image"


def test_an_image_with_another_digest_or_a_flipped_layer_is_named(
        release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(release, monkeypatch)
    other = "sha256:" + "e" * 64
    code, out = verify(f"127.0.0.1:5000/k8s/kube-proxy@{other}")
    assert code == 26
    assert (f"image: 127.0.0.1:5000/k8s/kube-proxy@{other}: the registry serves "
            f"{_index(release)}, not {other}") in lines(out)
    layer = first_layer(release / ARCHIVE)
    flip_blob_byte(release / ARCHIVE, layer)
    code, out = verify("127.0.0.1:5000/k8s/kube-proxy:v1.20.2-tke.1")
    assert code == 26
    assert any(line.startswith(f"image: 127.0.0.1:5000/k8s/kube-proxy:v1.20.2-tke.1: blob "
                               f"{layer} (layer of linux/amd64 manifest) does not match")
               for line in lines(out))


def test_skopeo_reads_an_image_into_a_layout_over_tls_except_on_loopback(tmp_path: Path) -> None:
    assert skopeo.layout_argv("127.0.0.1:5000/k/x:v1", tmp_path) == [
        "skopeo", "copy", "--all", "--preserve-digests", "--retry-times", "2",
        "--src-tls-verify=false", "docker://127.0.0.1:5000/k/x:v1", f"oci:{tmp_path}"]
    assert "--src-tls-verify=false" not in skopeo.layout_argv("registry.example.com/k/x:v1",
                                                              tmp_path)


def test_an_envelope_securesystemslib_signed_under_its_own_key_id_verifies(
        release: Path, key: Path, signed: tuple[Path, Path, Path]) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

    private = load_pem_private_key(signed[2].read_bytes(), password=None)
    envelope = Envelope((release / "provenance.intoto.json").read_bytes(),
                        "application/vnd.in-toto+json", {})
    envelope.sign(CryptoSigner(private))  # type: ignore[arg-type]
    assert list(envelope.signatures) != [""]  # the key id securesystemslib computes
    (release / "provenance.intoto.jsonl").write_text(json.dumps(envelope.to_dict()) + "\n")
    sign_file(release, signed[2], "provenance.intoto.jsonl")
    code, out = verify(str(release), "--key", str(key))
    assert code == 0, out


def test_a_file_given_as_the_folder_is_named(release: Path) -> None:
    code, out = refused(str(release / "SHA256SUMS"))
    assert code == 3
    assert f"{release / 'SHA256SUMS'}: not a folder" in out


def test_a_missing_envelope_is_named_once(release: Path, key: Path) -> None:
    (release / "provenance.intoto.jsonl").unlink()
    code, out = verify(str(release), "--key", str(key))
    assert code == 26
    assert lines(out) == ["signature: provenance.intoto.jsonl: missing: the provenance has no "
                          "signed envelope", "verify: 1 problem"]


def test_base_images_and_debian_releases_among_the_materials_are_not_patches() -> None:
    """The provenance names each component image's Debian base (``digestOf``) and the
    ``InRelease`` it came from (``uri``): verify takes neither for a patch."""
    from tkedistro.verify.provenance import materials

    statement = {"predicate": {"buildDefinition": {
        "internalParameters": {"builderImage": "tkedistro/builder:go1.15-bullseye"},
        "resolvedDependencies": [
            {"name": "kubernetes", "uri": "git+https://example.invalid/k.git",
             "digest": {"gitCommit": "a" * 40}},
            {"name": "patches/1.20/0001-x.patch", "digest": {"sha256": "1" * 64},
             "annotations": {"Patch-Kind": "carry"}},
            {"name": "tkedistro/builder:go1.15-bullseye", "digest": {"sha256": "2" * 64},
             "annotations": {"digestOf": "image id"}},
            {"name": "tkedistro/component-base:trixie-amd64", "digest": {"sha256": "3" * 64},
             "annotations": {"digestOf": "image id", "debianSuite": "trixie"}},
            {"uri": "http://deb.debian.org/debian/dists/trixie/InRelease",
             "digest": {"sha256": "4" * 64}, "annotations": {"date": "x"}}]}}}
    assert materials(statement) == ("a" * 40, {"patches/1.20/0001-x.patch": "1" * 64})
