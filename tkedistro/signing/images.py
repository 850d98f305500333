"""The images' signatures: sigstore signatures a registry keeps beside each image.

An image pushed to ``REPO:TAG`` with the index digest ``sha256:H`` is signed by a second
manifest pushed to ``REPO:sha256-H.sig`` (the "sigstore attachment" cosign writes and reads,
and containers/image with ``use-sigstore-attachments``): an OCI image manifest whose layers
are ``application/vnd.dev.cosign.simplesigning.v1+json`` payloads, each naming the image
(``critical.identity.docker-reference`` = ``REPO:TAG``, ``critical.image.
docker-manifest-digest`` = ``sha256:H``), its ECDSA P-256 signature in the layer annotation
``dev.cosignproject.cosign/signature`` (base64 DER). ``sign_pushed_image`` writes that
manifest as an OCI layout and pushes it with skopeo (Debian's skopeo 1.9 is built without
sigstore *signing*, so ``--sign-by-sigstore-private-key`` is not used; the result is the
same format). The index and each platform's manifest are signed, as skopeo ``--all`` signs.
An attachment already there is replaced (one signature: the release key's).

``verify_pushed_image`` checks what a ``policy.json`` ``sigstoreSigned`` requirement with
``keyPath`` and ``signedIdentity: matchRepoDigestOrExact`` checks (Debian's skopeo 1.9 cannot:
"sigstore disabled"): the index and each platform manifest the registry serves for the ref
has an attachment holding a payload signed by the public key, naming that digest and the
ref's repository (and its tag, when the ref gives a tag). skopeo fetches the manifests and
attachments (each into a scratch OCI layout, removed afterwards); the signatures are checked
here with ``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tkedistro.core import files
from tkedistro.core.errors import SigningError
from tkedistro.engine import skopeo
from tkedistro.model.refs import ImageRef, parse_image_ref
from tkedistro.signing.keys import SigningKey, load_public_key

SIGNATURE_TYPE = "cosign container image signature"
SIGNATURE_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@contextmanager
def _private_folder(parent: Path | None, prefix: str) -> Iterator[Path]:
    folder = files.make_temp_dir(parent or Path(tempfile.gettempdir()), prefix)
    try:
        yield folder
    finally:
        files.remove(folder)


def signature_payload(ref: str, digest: str, creator: str = "tkedistro") -> bytes:
    """The simple-signing payload naming the image ``ref`` (``REPO:TAG``) by ``digest``."""
    payload = {"critical": {"identity": {"docker-reference": ref},
                            "image": {"docker-manifest-digest": digest},
                            "type": SIGNATURE_TYPE},
               "optional": {"creator": creator}}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def attachment_tag(digest: str) -> str:
    """``sha256-<hex>.sig``: where the signatures of the manifest ``digest`` are kept."""
    if not _DIGEST.fullmatch(digest):
        raise SigningError(f"not a sha256 image digest: {digest!r}")
    return f"sha256-{digest[7:]}.sig"


def _descriptor(layout: Path, data: bytes, media_type: str) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    files.write_atomic(layout / "blobs" / "sha256" / digest[7:], data)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def write_attachment(layout: Path, ref: str, digest: str, key: SigningKey) -> str:
    """The signature attachment of image ``ref`` at ``digest`` as an OCI layout folder
    ``layout`` (its one manifest tagged ``attachment_tag(digest)``); returns that tag."""
    tag = attachment_tag(digest)
    payload = signature_payload(ref, digest)
    layer = {**_descriptor(layout, payload, SIGNATURE_MEDIA_TYPE),
             "annotations": {SIGNATURE_ANNOTATION: base64.b64encode(key.sign(payload)).decode()}}
    config = {"architecture": "", "os": "", "config": {},
              "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                "config": _descriptor(layout, _json(config), CONFIG_TYPE), "layers": [layer]}
    entry = {**_descriptor(layout, _json(manifest), MANIFEST_TYPE),
             "annotations": {"org.opencontainers.image.ref.name": tag}}
    files.write_json(layout / "index.json", {"schemaVersion": 2, "manifests": [entry]})
    files.write_text(layout / "oci-layout", '{"imageLayoutVersion": "1.0.0"}\n')
    return tag


def _json(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def sign_pushed_image(ref: str, digests: Sequence[str], key: SigningKey,
                      parent: Path | None = None) -> list[str]:
    """Sign the image a registry holds as ``ref`` (``REPO:TAG``): push the signature
    attachment of each of ``digests`` (its index's first, then each platform's manifest, as
    ``skopeo copy --all --sign-by-sigstore-private-key`` signs: a policy is checked on the
    index and on each platform copied). Returns where they went (``REPO:sha256-<hex>.sig``)."""
    repository = parse_image_ref(ref).repository
    pushed = []
    with _private_folder(parent, "tkedistro-sign-") as folder:
        for n, digest in enumerate(dict.fromkeys(digests)):
            layout = folder / f"layout-{n}"
            tag = write_attachment(layout, ref, digest, key)
            skopeo.push_layout(layout, tag, f"{repository}:{tag}")
            pushed.append(f"{repository}:{tag}")
    return pushed


def _attachment_payloads(layout: Path, tag: str) -> list[tuple[bytes, str]]:
    """(payload, base64 signature) of each simple-signing layer of the fetched attachment."""
    index = json.loads(files.read_bytes(layout / "index.json"))
    entry = next(m for m in index["manifests"]
                 if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    manifest = json.loads(files.read_bytes(_blob_path(layout, entry["digest"])))
    return [(files.read_bytes(_blob_path(layout, layer["digest"])),
             str(layer.get("annotations", {}).get(SIGNATURE_ANNOTATION, "")))
            for layer in manifest.get("layers", [])
            if layer.get("mediaType") == SIGNATURE_MEDIA_TYPE]


def _blob_path(layout: Path, digest: str) -> Path:
    if not _DIGEST.fullmatch(str(digest)):
        raise SigningError(f"{layout}: a signature attachment names the blob {digest!r}, not "
                           "a sha256 digest")
    return layout / "blobs" / "sha256" / str(digest)[7:]


def _payload_problem(payload: bytes, digest: str, ref: ImageRef) -> str | None:
    """What is wrong with a verified payload for the image ``ref`` at ``digest``."""
    try:
        critical = json.loads(payload)["critical"]
        kind, named = critical["type"], critical["image"]["docker-manifest-digest"]
        identity = parse_image_ref(critical["identity"]["docker-reference"])
    except (ValueError, KeyError, TypeError):
        return "its payload is not a simple-signing document"
    if kind != SIGNATURE_TYPE or named != digest:
        return f"it signs {named}, not {digest}"
    if identity.repository != ref.repository or (ref.tag and not ref.digest
                                                  and identity.tag != ref.tag):
        return f"it names {identity.repository}:{identity.tag}, not {ref.repository}:{ref.tag}"
    return None


def _digest_problem(ref: ImageRef, digest: str, public_key: tuple[Path, Any],
                    folder: Path) -> str | None:
    """None when an attachment of ``digest`` holds a valid signature by ``public_key``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key_path, key = public_key
    tag = attachment_tag(digest)
    layout = folder / tag
    said = skopeo.fetch_to_layout(f"{ref.repository}:{tag}", layout, tag)
    if said is not None:
        return (f"no sigstore signature ({ref.repository}:{tag} does not exist)"
                if "manifest unknown" in said
                else f"its signature could not be fetched: {said.splitlines()[-1]}")
    problems = []
    for payload, signature in _attachment_payloads(layout, tag):
        try:
            key.verify(base64.b64decode(signature), payload, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            problems.append(f"the signature does not verify with the public key {key_path}")
            continue
        problem = _payload_problem(payload, digest, ref)
        if problem is None:
            return None
        problems.append(problem)
    return problems[0] if problems else f"no sigstore signature in {ref.repository}:{tag}"


def _signed_digests(ref: str) -> list[str]:
    """The index digest the registry serves for ``ref``, then each platform manifest's."""
    raw = skopeo.remote_manifest(ref)
    digest = "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    wanted = parse_image_ref(ref).digest
    if wanted and wanted != digest:
        raise SigningError(f"{ref}: the registry serves {digest}, not the digest asked for")
    try:
        manifests = json.loads(raw).get("manifests") or []
    except (ValueError, AttributeError):
        manifests = []
    return [digest, *(str(m["digest"]) for m in manifests if isinstance(m, dict)
                      and "digest" in m)]


def verify_pushed_image(ref: str, public_key: Path, *,
                        parent: Path | None = None) -> str | None:
    """None when the image ``ref`` (a registry's, by tag or digest) and each of its
    platforms carry a sigstore signature made by the key of ``public_key`` (``cosign.pub``),
    else the problem in words, naming the ref and the digest. ``parent``: where the scratch
    folder goes (the system's temporary folder by default). A public key that cannot be read
    is a ``SigningError``; a registry that does not answer an ``ImageError``."""
    key = (public_key, load_public_key(public_key, "--key").key)
    parsed = parse_image_ref(ref)
    with _private_folder(parent, "tkedistro-verify-") as folder:
        for digest in _signed_digests(ref):
            problem = _digest_problem(parsed, digest, key, folder)
            if problem is not None:
                return f"{ref}: {digest}: {problem}"
    return None
