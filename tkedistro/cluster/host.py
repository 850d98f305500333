"""What the local cluster needs from this host besides its packages (those are
``setup/packages.py``'s one list): root, and the built binaries it runs."""

from __future__ import annotations

import os
from pathlib import Path

from tkedistro.core.errors import ClusterError


def missing_binaries(bin_dir: Path, names: tuple[str, ...]) -> list[str]:
    """The names that are not an executable file in ``bin_dir``, in the order given."""
    return [n for n in names if not os.access(bin_dir / n, os.X_OK)]


def require_root() -> None:
    if os.geteuid() != 0:
        raise ClusterError(
            "the local cluster needs root: its node image is made with debootstrap, and "
            "removing it removes the cgroups its nodes made",
            hint="run as root (sudo tkedistro conformance ...), or pass --kubeconfig PATH to "
            "test an existing cluster",
        )
