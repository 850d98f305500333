"""A small release folder made by the build's own writers (binaries, a tarball, a
two-platform OCI archive, images.json, SHA256SUMS/SHA512SUMS, SPDX SBOM, provenance), signed
the way the signing side signs (``openssl dgst -sha256 -sign``, base64; a DSSE envelope over
the provenance whose PAE is written here from the DSSE spec, signed by openssl), and the
tampering ``tkedistro verify`` must name: a flipped byte in a file or in a blob of an
OCI archive (the tar member rewritten)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from tkedistro.artifacts.checksums import write_checksums
from tkedistro.artifacts.context import PatchInfo, ReleaseContext
from tkedistro.artifacts.finish import per_file
from tkedistro.artifacts.provenance import release_subjects, write_provenance
from tkedistro.artifacts.sbom import SBOM_NAME, write_sbom
from tkedistro.images.ocilayout import pack_layout
from tkedistro.images.shipped import ShippedImage, write_images_json

UPSTREAM = "ab" * 20
TREE = "2" * 40
PATCH = "patches/1.20/0001-kubelet-fix.patch"
PATCH_BYTES = b"""\
From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: A U Thor <author@example.invalid>
Date: Wed, 13 Jan 2021 13:20:00 +0000
Subject: [PATCH] kubelet: fix

Patch-Kind: backport
Upstream-Ref: https://github.com/kubernetes/kubernetes/pull/1
Upstream-Status: Backport
---
 a.txt | 1 +
 1 file changed, 1 insertion(+)

diff --git a/a.txt b/a.txt
index 0000000..1111111 100644
--- a/a.txt
+++ b/a.txt
@@ -0,0 +1 @@
+fixed
"""
REF = "tkedistro.local/k8s/kube-proxy:v1.20.2-tke.1"
PLATFORMS = ("linux/amd64", "linux/arm64")
EPOCH = 1610544000
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
SIGNED_BESIDE = ("SHA256SUMS", "SHA512SUMS", "provenance.intoto.json",
                 "provenance.intoto.jsonl")


def context(tree: Path) -> ReleaseContext:
    (tree / "vendor").mkdir(parents=True)
    (tree / "go.mod").write_text("module k8s.io/kubernetes\n\ngo 1.15\n")
    (tree / "vendor" / "modules.txt").write_text(
        "# github.com/spf13/pflag v1.0.5\n## explicit\ngithub.com/spf13/pflag\n")
    patch = PatchInfo(PATCH, hashlib.sha256(PATCH_BYTES).hexdigest(), "kubelet: fix",
                      {"Upstream-Status": "Backport"})
    return ReleaseContext(
        release="1.20", distro_version="v1.20.2-tke.1",
        upstream_url="https://github.com/kubernetes/kubernetes.git", tag="v1.20.2",
        upstream_commit=UPSTREAM, tree_commit=TREE, tree=tree, source_date_epoch=EPOCH,
        platforms=PLATFORMS, components=("kube-proxy",), image_components=("kube-proxy",),
        patches=(patch,), builder_image="tkedistro/builder:go1.15-bullseye",
        builder_image_id="sha256:" + "c" * 64, go_version="1.15.15", tool_version="0.1.0")


def _blob(layout: Path, data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data), **extra}


def _layer(content: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("usr/local/bin/kube-proxy")
        info.size, info.mode, info.mtime = len(content), 0o755, EPOCH
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def make_archive(out: Path, binaries: dict[str, bytes]) -> ShippedImage:
    """``out/images/kube-proxy.oci.tar``: an index of one manifest per platform, each with
    a config and one layer holding that platform's binary."""
    layout = out.parent / "layout"
    entries = []
    for platform in PLATFORMS:
        layer = _blob(layout, _layer(binaries[platform]), LAYER_TYPE)
        os_name, arch = platform.split("/")
        config = _blob(layout, json.dumps({"architecture": arch, "os": os_name, "rootfs": {
            "type": "layers", "diff_ids": []}}).encode(), CONFIG_TYPE)
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": config,
                    "layers": [layer]}
        entries.append(_blob(layout, json.dumps(manifest).encode(), MANIFEST_TYPE,
                             platform={"os": os_name, "architecture": arch}))
    index = _blob(layout, json.dumps({"schemaVersion": 2, "mediaType": INDEX_TYPE,
                                      "manifests": entries}).encode(), INDEX_TYPE)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {**index, "annotations": {"org.opencontainers.image.ref.name": "v1.20.2-tke.1"}}]}))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    archive = out / "images" / "kube-proxy.oci.tar"
    archive.parent.mkdir(parents=True, exist_ok=True)
    pack_layout(layout, archive, EPOCH)
    data = archive.read_bytes()
    return ShippedImage("kube-proxy", REF, index["digest"],
                        {p: e["digest"] for p, e in zip(PLATFORMS, entries, strict=True)},
                        "images/kube-proxy.oci.tar", len(data),
                        "sha256:" + hashlib.sha256(data).hexdigest(), "sha256:" + "d" * 64)


def make_release(root: Path) -> Path:
    """``root/out``: a release folder as the build leaves it (unsigned)."""
    out = root / "out"
    ctx = context(root / "tree")
    binaries = {p: f"kube-proxy for {p}\n".encode() * 100 for p in PLATFORMS}
    files = []
    for platform, data in binaries.items():
        path = out / "bin" / platform / "kube-proxy"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files.append(f"bin/{platform}/kube-proxy")
    tarball = out / "release" / "kubernetes-node-linux-amd64.tar.gz"
    tarball.parent.mkdir(parents=True)
    tarball.write_bytes(gzip.compress(b"a node tarball " * 1000, mtime=0))
    files.append("release/kubernetes-node-linux-amd64.tar.gz")
    image = make_archive(out, binaries)
    write_images_json(out, [image])
    files.append(image.archive)
    images = [image.to_json()]
    digests = write_checksums(out, files)
    write_sbom(out, ctx, per_file(digests), images)
    digests = write_checksums(out, [*files, SBOM_NAME], known=digests)
    write_provenance(out, ctx, release_subjects(per_file(digests), images))
    (out / "build.log").write_text("built\n")
    return out


def make_key(folder: Path, name: str = "cosign") -> tuple[Path, Path]:
    """(private key, public key) of a new ECDSA P-256 key made by openssl."""
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / f"{name}.key", folder / f"{name}.pub"
    subprocess.run(["openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out",
                    str(private)], check=True, capture_output=True)
    subprocess.run(["openssl", "ec", "-in", str(private), "-pubout", "-out", str(public)],
                   check=True, capture_output=True)
    return private, public


def openssl_sign(private: Path, data: bytes) -> bytes:
    """base64 of the DER ECDSA-P256-SHA256 signature over ``data`` (cosign sign-blob)."""
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(private)], input=data,
                         check=True, capture_output=True).stdout
    return base64.b64encode(der)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding, from the spec (envelope.md)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign_release(out: Path, private: Path) -> None:
    """The envelope, then a ``.sig`` beside every listed file and every file of
    ``SIGNED_BESIDE``."""
    statement = (out / "provenance.intoto.json").read_bytes()
    envelope = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(statement).decode(),
                "signatures": [{"keyid": "", "sig": openssl_sign(
                    private, pae(PAYLOAD_TYPE, statement)).decode()}]}
    (out / "provenance.intoto.jsonl").write_text(json.dumps(envelope) + "\n")
    listed = [line.split("  ", 1)[1] for line in (out / "SHA256SUMS").read_text().splitlines()]
    for rel in [*listed, *SIGNED_BESIDE]:
        sign_file(out, private, rel)


def sign_file(out: Path, private: Path, rel: str) -> None:
    (out / f"{rel}.sig").write_bytes(openssl_sign(private, (out / rel).read_bytes()))


def flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def _member_bytes(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(name)
    assert handle is not None
    return handle.read()


def first_layer(archive: Path, platform: str = "linux/amd64") -> str:
    """The digest of the first layer of ``platform``'s manifest in the OCI archive."""
    with tarfile.open(archive) as tar:
        def doc(digest: str) -> dict[str, Any]:
            data: dict[str, Any] = json.loads(_member_bytes(
                tar, "blobs/sha256/" + digest.removeprefix("sha256:")))
            return data

        top = json.loads(_member_bytes(tar, "index.json"))["manifests"][0]["digest"]
        for entry in doc(top)["manifests"]:
            if f"{entry['platform']['os']}/{entry['platform']['architecture']}" == platform:
                return str(doc(entry["digest"])["layers"][0]["digest"])
    raise AssertionError(f"{archive}: no {platform} manifest")


def flip_blob_byte(archive: Path, digest: str, offset: int = 100) -> None:
    """Rewrite the OCI archive with one byte of the blob ``digest`` flipped (its name and
    size unchanged)."""
    member = "blobs/sha256/" + digest.removeprefix("sha256:")
    rewritten = archive.with_name(archive.name + ".tampered")
    with tarfile.open(archive) as source, tarfile.open(rewritten, "w",
                                                       format=tarfile.USTAR_FORMAT) as target:
        for info in source:
            handle = source.extractfile(info) if info.isfile() else None
            if info.name == member and handle is not None:
                data = bytearray(handle.read())
                data[offset % len(data)] ^= 0x01
                target.addfile(info, io.BytesIO(bytes(data)))
            else:
                target.addfile(info, handle)
    rewritten.replace(archive)
