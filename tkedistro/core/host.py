"""This machine's platform as Go and OCI name it (``linux/amd64``, ``linux/arm64``).

In ``core`` because the workspace's ``bin/<os>/<arch>`` default and the engine's emulation
checks both need it; read from ``platform.machine()``, never assumed.
"""

from __future__ import annotations

import platform as host

# uname -m -> Go's GOARCH (the platform's architecture)
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
             "s390x": "s390x", "riscv64": "riscv64"}


def host_arch(machine: str | None = None) -> str:
    """This host's architecture as a platform names it (``amd64``, ``arm64``, ...)."""
    found = machine or host.machine()
    return HOST_ARCH.get(found, found)


def host_platform() -> str:
    """This host's platform (``linux/amd64``)."""
    return f"linux/{host_arch()}"
