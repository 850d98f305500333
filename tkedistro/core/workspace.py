"""Every path tkedistro uses: the distro repo, ``_src/<release>``, ``_output/<release>``,
``_cluster/<release>``, caches."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core.errors import ManifestError


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` that holds ``releases/``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "releases").is_dir():
            return folder
    raise ManifestError(
        [f"no releases/ folder in {here} or any folder above it"],
        hint="run tkedistro inside a distro repo, or name one with --root DIR",
    )


def default_cache_dir() -> Path:
    """``$TKEDISTRO_CACHE``, else ``$XDG_CACHE_HOME/tkedistro``, else ``~/.cache/tkedistro``."""
    if env := os.environ.get("TKEDISTRO_CACHE"):
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "tkedistro").resolve()


@dataclass(frozen=True)
class Workspace:
    """Paths of one distro repo (``root``) and the user cache (``cache``)."""

    root: Path
    cache: Path

    @classmethod
    def discover(cls, root: Path | None = None, cache: Path | None = None) -> Workspace:
        found = root.resolve() if root else find_root()
        if root and not (found / "releases").is_dir():
            raise ManifestError(
                [f"{found}: no releases/ folder here"],
                hint="--root must name a distro repo (a folder that holds releases/)",
            )
        return cls(root=found, cache=(cache.resolve() if cache else default_cache_dir()))

    @property
    def releases_dir(self) -> Path:
        return self.root / "releases"

    def manifest_path(self, release: str) -> Path:
        return self.releases_dir / f"{release}.yaml"

    def patches_dir(self, release: str) -> Path:
        return self.root / "patches" / release

    def src_dir(self, release: str) -> Path:
        return self.root / "_src" / release

    def output_dir(self, release: str) -> Path:
        return self.root / "_output" / release

    def cluster_dir(self, release: str) -> Path:
        """Runtime files of a local conformance cluster (kept out of ``_output``: the kubelet
        mounts under it, and a build must be able to replace ``_output/<release>``)."""
        return self.root / "_cluster" / release

    def state_dir(self, release: str) -> Path:
        """Tool state for a release that must survive crashes (rebase, build stamps)."""
        return self.root / "_src" / f".{release}.tkedistro"

    @property
    def mirrors_dir(self) -> Path:
        return self.cache / "mirrors"

    @property
    def gocache_dir(self) -> Path:
        return self.cache / "go"

    def rel(self, path: Path) -> str:
        """``path`` relative to the repo root when inside it (for messages)."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)
