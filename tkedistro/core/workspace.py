"""Every path tkedistro uses: the distro repo, ``_src/<release>``, ``_output/<release>``,
``_cluster/<release>``, ``_results/<release>``, caches."""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core.errors import ManifestError

RELEASE_NAME = re.compile(r"\d+\.\d+(?:[.-][A-Za-z0-9]+)*")
MAX_PATCH_BYTES = 32 * 1024 * 1024  # the largest real backports are a few MiB


def check_release_name(release: str) -> str:
    """``release`` when it is a release name (1.20, 1.20-tke), else ``ManifestError``."""
    if RELEASE_NAME.fullmatch(release):
        return release
    raise ManifestError(
        [f"{release!r} is not a release name; release names look like 1.20 or 1.20-tke "
         "(digits and dots, then optional .suffix or -suffix parts; no slashes)"],
        hint="run `tkedistro list` to see the releases of this repo",
    )


def path_problem(root: Path, name: str, *, must_exist: bool = True,
                 max_bytes: int = MAX_PATCH_BYTES) -> str | None:
    """Why the repo file ``name`` (as a manifest gives it) may not be used, or None.

    The one path policy for every file a manifest names: relative to the repo root, no
    ``..`` out of it, no symlink out of it, and (``must_exist``) a regular file no larger
    than ``max_bytes``: not a folder, FIFO or device.
    """
    if bad := next((c for c in name if ord(c) < 0x20 or ord(c) == 0x7F), None):
        return (f"{name!r} contains the control character {bad!r}; "
                "file names in a manifest are plain text")
    if Path(name).is_absolute():
        return (f"{name} is an absolute path; give it relative to the repo root, "
                "like patches/1.20/0001-fix.patch")
    normal = os.path.normpath(name)
    if normal == ".." or normal.startswith(".." + os.sep):
        return f"{name} is outside the repo; patch files live under patches/<release>/"
    try:
        real_root = root.resolve()
        real = (root / name).resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # a symlink loop, a name too long
        return f"{name}: cannot resolve: {_reason(exc)}"
    if not real.is_relative_to(real_root):
        return (f"{name} resolves outside the repo through a symlink (to {real}); "
                "copy the patch into patches/<release>/")
    if not must_exist:
        return None
    try:
        info = real.stat()
    except FileNotFoundError:
        return f"no such file {name}"
    except (OSError, ValueError) as exc:
        return f"{name}: cannot read: {_reason(exc)}"
    if not stat.S_ISREG(info.st_mode):
        return f"{name} is not a regular file ({_kind(info.st_mode)})"
    if info.st_size > max_bytes:
        return (f"{name} is {info.st_size} bytes, more than the {max_bytes // 2**20} MiB "
                "a patch file may have")
    return None


def _reason(exc: Exception) -> str:
    """The OS's words for ``exc`` (no Python exception names)."""
    loop = isinstance(exc, RuntimeError) and "loop" in str(exc)
    if loop or (isinstance(exc, OSError) and exc.errno == errno.ELOOP):
        return "a symlink loop"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


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
        return self.releases_dir / f"{check_release_name(release)}.yaml"

    def patches_dir(self, release: str) -> Path:
        return self.root / "patches" / check_release_name(release)

    def src_dir(self, release: str) -> Path:
        return self.root / "_src" / check_release_name(release)

    def output_dir(self, release: str) -> Path:
        return self.root / "_output" / check_release_name(release)

    def cluster_dir(self, release: str) -> Path:
        """Runtime files of a local conformance cluster (kept out of ``_output``: the kubelet
        mounts under it, and a build must be able to replace ``_output/<release>``)."""
        return self.root / "_cluster" / check_release_name(release)

    def results_dir(self, release: str) -> Path:
        """What runs against a release's build found (kept out of ``_output``: a build replaces
        ``_output/<release>`` whole, and the results of the build before must outlive it)."""
        return self.root / "_results" / check_release_name(release)

    def conformance_results_dir(self, release: str) -> Path:
        """One folder per conformance run, and ``latest`` pointing at the last report."""
        return self.results_dir(release) / "conformance"

    def state_dir(self, release: str) -> Path:
        """Tool state for a release that must survive crashes (rebase, build stamps)."""
        return self.root / "_src" / f".{check_release_name(release)}.tkedistro"

    def repo_file(self, name: str, where: str | None = None, *, must_exist: bool = True) -> Path:
        """The real path of the manifest-named file ``name``; ``ManifestError`` (naming
        ``where``, e.g. ``releases/1.20.yaml: patches[2].file``) when the policy refuses it."""
        problem = path_problem(self.root, name, must_exist=must_exist)
        if problem:
            raise ManifestError([f"{where}: {problem}" if where else problem])
        return (self.root / name).resolve()

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
