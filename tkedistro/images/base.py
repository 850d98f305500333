"""The minimal Debian base every component image starts from, one per platform.

Debian 13 **trixie** (``SUITE``), the current stable release: released 2025-08-09, security
support until about 2028-08-09, Debian LTS until 2030-06-30. (bullseye, which the bases were
before, ended on 2026-08-31; the builder image stays on bullseye for its Go 1.15.)

What upstream's ``debian-iptables``/``debian-base`` carry for kube-proxy (iptables, ipset,
conntrack, ebtables, kmod, iproute2, netbase) plus ca-certificates; the control-plane binaries
are static Go and need nothing more. iptables, ip6tables and ebtables are switched to the
**legacy** backend, as the nodes' kubelet uses it: kube-proxy must write its rules where the
kubelet writes its own. Docs, man pages and locales are left out, each package's copyright
file kept. Made by ``debian/rootfs.py``
(debootstrap, root) and reused while its inputs label matches. A base for another
architecture (``linux/arm64`` on an amd64 host) is debootstrapped here too, its second stage
under qemu-user (binfmt_misc with the F flag; ``engine/emulation.py`` says what to install
when it is missing), and imported as that platform.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tkedistro.core.errors import BuildError
from tkedistro.core.workspace import Workspace
from tkedistro.debian.rootfs import DebianBase, DebianRecipe, ensure_debian_base
from tkedistro.engine import emulation
from tkedistro.engine.protocols import ImageEngine

STEP = "component_images"
SUITE = "trixie"
BASE_REPOSITORY = "tkedistro/component-base"
PACKAGES = ("iptables", "ipset", "conntrack", "ebtables", "kmod", "iproute2", "netbase",
            "ca-certificates")
LEGACY = tuple(("update-alternatives", "--set", name, f"/usr/sbin/{name}-legacy")
               for name in ("iptables", "ip6tables", "ebtables"))
PRUNE = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale")
# each package's copyright file stays, as in upstream's debian-base: the licenses the image
# ships, and what its SBOM reads them from (``images/contents.py``)
KEEP = ("usr/share/doc/*/copyright",)
LOCK_WAIT = 900.0  # seconds: a cold base (debootstrap) takes about 2 minutes here
# Go's GOARCH -> Debian's architecture name (they differ for arm and ppc64le)
DEBIAN_ARCH = {"amd64": "amd64", "arm64": "arm64", "arm": "armhf", "ppc64le": "ppc64el",
               "s390x": "s390x"}


def work_dir(ws: Workspace) -> Path:
    """The bases' scratch space and record (which id for which inputs), one run at a time
    (its ``.lock``)."""
    return ws.cache / "component-images"


def split_platform(platform: str) -> tuple[str, str]:
    """``linux/amd64`` -> ``("linux", "amd64")``; ``BuildError`` for anything else."""
    os_name, _, arch = platform.partition("/")
    if os_name != "linux" or arch not in DEBIAN_ARCH:
        raise BuildError(f"no component base for platform {platform!r}",
                         hint="platforms: " + ", ".join(f"linux/{a}" for a in DEBIAN_ARCH))
    return os_name, arch


def host_arch() -> str:
    return emulation.host_arch()


def base_ref(platform: str) -> str:
    return f"{BASE_REPOSITORY}:{SUITE}-{split_platform(platform)[1]}"


def base_recipe(platform: str) -> DebianRecipe:
    arch = split_platform(platform)[1]
    return DebianRecipe(base_ref(platform), PACKAGES, suite=SUITE, arch=DEBIAN_ARCH[arch],
                        setup=LEGACY, prune=PRUNE, keep=KEEP, step=STEP,
                        hint="run as root once (debootstrap); later runs reuse the image")


def bases_identity(platforms: Sequence[str]) -> dict[str, str]:
    """Platform -> its base's ref and recipe digest (suite, mirror, packages, setup), known
    without an engine: what a release's images depend on besides the binaries, so a build
    whose bases moved (another suite, mirror or package list) makes its images again."""
    return {p: f"{base_ref(p)}@{base_recipe(p).inputs_digest()}" for p in platforms}


def ensure_component_base(engine: ImageEngine, work: Path,
                          platform: str = "linux/amd64") -> DebianBase:
    """The base for ``platform``, reused while its inputs match, else debootstrapped (root).

    A foreign architecture is debootstrapped under emulation; without it (no qemu-user
    binfmt_misc entry with the F flag) a ``BuildError`` says what to install."""
    split_platform(platform)
    return ensure_debian_base(engine, work, base_recipe(platform))
