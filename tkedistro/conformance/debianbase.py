"""One Debian root filesystem, made offline, that every Debian-based conformance image starts from.

``debootstrap --variant=minbase --include=PACKAGES bullseye ROOTFS MIRROR`` (mirror:
``DEBIAN_MIRROR``, else deb.debian.org, as ``scripts/make-builder-image.sh`` does), then the
engine imports it as ``tkedistro/conformance-base:bullseye``. The image is labelled with every
installed ``package=version`` and with the digest of its inputs (suite, mirror, package list);
a later call reuses it while that digest matches. debootstrap needs root.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tkedistro.build.backend import BuiltImage, ImageEngine
from tkedistro.conformance.imagestate import ImageRecord, local_id
from tkedistro.core import console
from tkedistro.core.errors import BuildError
from tkedistro.core.runner import run

BASE_REF = "tkedistro/conformance-base:bullseye"
SUITE = "bullseye"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
INPUTS_LABEL = "org.tkedistro.inputs"
SOURCE_LABEL = "org.opencontainers.image.source"
PACKAGES_LABEL = "org.tkedistro.debian.packages"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# What the images built on it need (recipes.py says which image uses which).
PACKAGES = (
    "apache2", "nginx-light", "redis-server", "perl", "etcd-server", "etcd-client",
    "dnsutils", "curl", "wget", "netcat-openbsd", "iproute2", "iperf", "bash", "stress",
    "util-linux", "procps", "ca-certificates", "busybox-static",
)


@dataclass(frozen=True)
class DebianBase:
    """The imported base: its ref and id, installed ``package=version`` lines, reuse flag."""

    ref: str
    image_id: str
    packages: tuple[str, ...]
    reused: bool

    def version(self, package: str) -> str:
        for line in self.packages:
            name, _, version = line.partition("=")
            if name == package:
                return version
        return "?"


def mirror() -> str:
    return os.environ.get("DEBIAN_MIRROR") or DEFAULT_MIRROR


def inputs_digest(packages: tuple[str, ...] = PACKAGES, mirror_url: str | None = None) -> str:
    text = json.dumps({"suite": SUITE, "variant": "minbase", "mirror": mirror_url or mirror(),
                       "packages": sorted(packages)}, sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def reusable(labels: Mapping[str, str] | None, digest: str) -> bool:
    return labels is not None and labels.get(INPUTS_LABEL) == digest


def ensure_base(engine: ImageEngine, work: Path,
                packages: tuple[str, ...] = PACKAGES) -> DebianBase:
    """The base image, reused when its inputs label matches, else debootstrapped and imported."""
    digest = inputs_digest(packages)
    labels = engine.labels(BASE_REF)
    if labels is not None and reusable(labels, digest):
        image_id = local_id(engine, BASE_REF, digest, work)
        return DebianBase(BASE_REF, image_id, _split(labels.get(PACKAGES_LABEL, "")), True)
    if os.geteuid() != 0:
        raise BuildError(
            f"making the Debian base image {BASE_REF} needs root (debootstrap)",
            hint="run as root, or import an existing base once: "
                 "sudo tkedistro conformance images RELEASE")
    rootfs = work / "debian-rootfs"
    with console.step("conformance_images", f"debootstrap {SUITE} ({len(packages)} packages)"):
        installed = _debootstrap(rootfs, packages, work / "debootstrap.log")
    with console.step("conformance_images", f"import {BASE_REF}"):
        built = _import(engine, rootfs, work / "debian-rootfs.tar", digest, installed)
    shutil.rmtree(rootfs, ignore_errors=True)
    ImageRecord(work / "images.json").remember(BASE_REF, digest, built.id)
    return DebianBase(BASE_REF, built.id, installed, False)


def _split(text: str) -> tuple[str, ...]:
    return tuple(item for item in text.split(",") if item)


def _debootstrap(rootfs: Path, packages: tuple[str, ...], log: Path) -> tuple[str, ...]:
    shutil.rmtree(rootfs, ignore_errors=True)
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    result = run(["debootstrap", "--variant=minbase", "--include=" + ",".join(packages),
                  SUITE, rootfs, mirror()], check=False)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise BuildError(f"debootstrap {SUITE} from {mirror()} failed (log: {log})",
                         details=(result.stdout + result.stderr)[-4000:],
                         hint="check that the mirror answers (DEBIAN_MIRROR) and the "
                              "package names exist in " + SUITE)
    query = run(["chroot", rootfs, "dpkg-query", "-W", "-f", "${Package}=${Version}\n"],
                message="listing the packages of the Debian base failed")
    return tuple(sorted(line for line in query.stdout.splitlines() if line))


def _import(engine: ImageEngine, rootfs: Path, tar: Path, digest: str,
            installed: tuple[str, ...]) -> BuiltImage:
    for cache in (rootfs / "var/cache/apt/archives", rootfs / "var/lib/apt/lists"):
        for item in cache.glob("*"):
            if item.is_file():
                item.unlink()
    run(["tar", "--numeric-owner", "-C", rootfs, "-c", "-f", tar, "."],
        message="packing the Debian base root filesystem failed")
    source = f"debootstrap {SUITE} minbase from {mirror()}"
    changes = (f"ENV {PATH_ENV}",
               f"LABEL {SOURCE_LABEL}={json.dumps(source)}",
               f"LABEL {INPUTS_LABEL}={json.dumps(digest)}",
               f"LABEL {PACKAGES_LABEL}={json.dumps(','.join(installed))}")
    try:
        return engine.import_rootfs(tar, BASE_REF, changes)
    finally:
        tar.unlink(missing_ok=True)
