"""What the guest is made of, and the digest of it that keys the cache.

Everything here is an input: a changed package list, kernel package, initrd module list,
disk size or in-guest file makes another digest, so the next ``ensure_guest`` builds anew.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core.files import json_digest

CACHE_ENV = "TKEDISTRO_GUEST_CACHE"
DEFAULT_CACHE = Path("/var/tmp/tkedistro-guest")
SUITE = "bookworm"
FORMAT = 1  # bumped when the layout of a built guest changes

# the guest's own needs (systemd, Docker on cgroup v2, the initrd), then what the tool and a
# local cluster need in it (cf. setup/packages.py: debootstrap is host-only, buildah unused)
BOOT_PACKAGES = ("systemd-sysv", "udev", "dbus", "iproute2", "kmod", "procps",
                 "initramfs-tools", "zstd")
DOCKER_PACKAGES = ("docker.io", "apparmor", "iptables", "ca-certificates")
# (skopeo needs a container-network-stack, a virtual package debootstrap does not resolve)
TOOL_PACKAGES = ("python3", "git", "docker-registry", "skopeo", "containernetworking-plugins",
                 "curl", "openssl", "util-linux")
PACKAGES = BOOT_PACKAGES + DOCKER_PACKAGES + TOOL_PACKAGES
# the initrd's modules: the root disk (virtio), its file system, the 9p shares
INITRD_MODULES = ("virtio_pci", "virtio_blk", "ext4", "crc32c_generic", "9p", "9pnet",
                  "9pnet_virtio")
KERNEL_META = "linux-image-amd64"  # its dependency names the current ABI's image package
DISK_SIZE = "24G"  # sparse: node and conformance images are large, the file is not
# services a one-shot guest does not need (timers, the distribution registry on :5000)
DISABLED_UNITS = ("docker-registry.service", "apt-daily.timer", "apt-daily-upgrade.timer",
                  "dpkg-db-backup.timer", "e2scrub_all.timer", "fstrim.timer",
                  "logrotate.timer")


@dataclass(frozen=True)
class GuestRecipe:
    """One guest's inputs; ``kernel_package`` is resolved through apt (``kernel.py``)."""

    kernel_package: str
    mirror: str
    guest_files: tuple[tuple[str, str], ...]  # (path in the guest, text)
    packages: tuple[str, ...] = PACKAGES
    suite: str = SUITE
    modules: tuple[str, ...] = INITRD_MODULES
    disk_size: str = DISK_SIZE
    disabled_units: tuple[str, ...] = DISABLED_UNITS

    def digest(self) -> str:
        return json_digest({"format": FORMAT, "kernel": self.kernel_package,
                            "mirror": self.mirror, "suite": self.suite,
                            "packages": sorted(self.packages), "modules": list(self.modules),
                            "disk": self.disk_size, "disabled": sorted(self.disabled_units),
                            "files": [list(f) for f in self.guest_files]})


def cache_dir() -> Path:
    """``TKEDISTRO_GUEST_CACHE``, else ``/var/tmp/tkedistro-guest`` (kept across runs)."""
    value = os.environ.get(CACHE_ENV)
    return Path(value) if value else DEFAULT_CACHE
