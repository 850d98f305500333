"""The minimal Debian base every component image starts from, one per platform.

What upstream's ``debian-iptables``/``debian-base`` carry for kube-proxy (iptables, ipset,
conntrack, ebtables, kmod, iproute2, netbase) plus ca-certificates; the control-plane binaries
are static Go and need nothing more. iptables, ip6tables and ebtables are switched to the
**legacy** backend, as the nodes' kubelet uses it: kube-proxy must write its rules where the
kubelet writes its own. Docs, man pages and locales are left out. Made by ``build/debian.py``
(debootstrap, root) and reused while its inputs label matches.
"""

from __future__ import annotations

import platform as host
from pathlib import Path

from tkedistro.build.backend import ImageEngine
from tkedistro.build.debian import DebianBase, DebianRecipe, ensure_debian_base
from tkedistro.core.errors import BuildError

STEP = "component_images"
BASE_REPOSITORY = "tkedistro/component-base"
PACKAGES = ("iptables", "ipset", "conntrack", "ebtables", "kmod", "iproute2", "netbase",
            "ca-certificates")
LEGACY = tuple(("update-alternatives", "--set", name, f"/usr/sbin/{name}-legacy")
               for name in ("iptables", "ip6tables", "ebtables"))
PRUNE = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale")
# Go's GOARCH -> Debian's architecture name (they differ for arm and ppc64le)
DEBIAN_ARCH = {"amd64": "amd64", "arm64": "arm64", "arm": "armhf", "ppc64le": "ppc64el",
               "s390x": "s390x"}
_HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
              "s390x": "s390x"}


def split_platform(platform: str) -> tuple[str, str]:
    """``linux/amd64`` -> ``("linux", "amd64")``; ``BuildError`` for anything else."""
    os_name, _, arch = platform.partition("/")
    if os_name != "linux" or arch not in DEBIAN_ARCH:
        raise BuildError(f"no component base for platform {platform!r}",
                         hint="platforms: " + ", ".join(f"linux/{a}" for a in DEBIAN_ARCH))
    return os_name, arch


def host_arch() -> str:
    return _HOST_ARCH.get(host.machine(), host.machine())


def base_ref(platform: str) -> str:
    return f"{BASE_REPOSITORY}:bullseye-{split_platform(platform)[1]}"


def base_recipe(platform: str) -> DebianRecipe:
    arch = split_platform(platform)[1]
    return DebianRecipe(base_ref(platform), PACKAGES, arch=DEBIAN_ARCH[arch], setup=LEGACY,
                        prune=PRUNE, step=STEP,
                        hint="run as root once (debootstrap); later runs reuse the image")


def ensure_component_base(engine: ImageEngine, work: Path,
                          platform: str = "linux/amd64") -> DebianBase:
    """The base for ``platform``, reused while its inputs match, else debootstrapped (root).

    Only the host's architecture today: a foreign one needs debootstrap's second stage under
    emulation (qemu-user-static), which is not wired yet."""
    arch = split_platform(platform)[1]
    if arch != host_arch():
        raise BuildError(f"a component base for {platform} cannot be made on this "
                         f"{host_arch()} host yet",
                         hint="build the images on a machine of that architecture; foreign "
                              "bases (debootstrap under qemu-user-static) are not wired yet")
    return ensure_debian_base(engine, work, base_recipe(platform))
