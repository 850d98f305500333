"""One Debian root filesystem, made offline, that every Debian-based upstream image starts
from (etcd, the test images' tools, the docker-library stand-ins, the cluster DNS responder).

``debian/rootfs.py`` does the work (debootstrap ``--variant=minbase`` of bullseye, import, reuse
while the inputs label matches); this module names the packages those images need and the ref
``tkedistro/conformance-base:bullseye``. debootstrap needs root.
"""

from __future__ import annotations

from pathlib import Path

from tkedistro.debian.rootfs import (
    DEFAULT_MIRROR,
    INPUTS_LABEL,
    PACKAGES_LABEL,
    PATH_ENV,
    SOURCE_LABEL,
    SUITE,
    DebianBase,
    DebianRecipe,
    ensure_debian_base,
    mirror,
    reusable,
)
from tkedistro.engine.protocols import ImageEngine

__all__ = ["BASE_REF", "DEFAULT_MIRROR", "INPUTS_LABEL", "PACKAGES", "PACKAGES_LABEL",
           "PATH_ENV", "SOURCE_LABEL", "SUITE", "DebianBase", "ensure_base", "inputs_digest",
           "mirror", "recipe", "reusable"]

BASE_REF = "tkedistro/conformance-base:bullseye"

# What the images built on it need (recipes.py says which image uses which).
PACKAGES = (
    "apache2", "nginx-light", "redis-server", "perl", "etcd-server", "etcd-client",
    "dnsutils", "curl", "wget", "netcat-openbsd", "iproute2", "iperf", "bash", "stress",
    "util-linux", "procps", "ca-certificates", "busybox-static",
)


def recipe(packages: tuple[str, ...] = PACKAGES) -> DebianRecipe:
    return DebianRecipe(BASE_REF, packages, step="conformance_images",
                        hint="run as root, or import an existing base once: "
                             "sudo tkedistro conformance images RELEASE")


def inputs_digest(packages: tuple[str, ...] = PACKAGES, mirror_url: str | None = None) -> str:
    return recipe(packages).inputs_digest(mirror_url)


def ensure_base(engine: ImageEngine, work: Path,
                packages: tuple[str, ...] = PACKAGES) -> DebianBase:
    """The base image, reused when its inputs label matches, else debootstrapped and imported."""
    return ensure_debian_base(engine, work, recipe(packages))
