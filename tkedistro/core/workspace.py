"""Every path tkedistro uses: the distro repo and the user cache (``Workspace``), and per
release (``ReleasePaths``) its manifest, patch folder, ``_src/<release>``, ``_output/<release>``
(``bin/<os>/<arch>``), ``_cluster/<release>``, ``_results/<release>`` and the state files.

The one place these names are spelled: ``tests/unit/test_paths.py`` fails on a copy elsewhere.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tkedistro.core.errors import ManifestError

RELEASES = "releases"  # the distro repo's folder of manifests, <release>.yaml each
MANIFEST_SUFFIX = ".yaml"
MAX_MANIFEST_BYTES = 1024 * 1024  # real manifests are about 1 KiB
CLUSTER_STATE = "cluster.json"  # in a cluster's folder (``_cluster/<release>``)
# ASCII digits only (``\d`` takes any script's), and short: the name is part of folder,
# file, container and image names
RELEASE_NAME = re.compile(r"[0-9]+\.[0-9]+(?:[.-][A-Za-z0-9]+)*")
MAX_RELEASE_CHARS = 64
MAX_PATCH_BYTES = 32 * 1024 * 1024  # the largest real backports are a few MiB


def check_release_name(release: str) -> str:
    """``release`` when it is a release name (1.20, 1.20-tke), else ``ManifestError``."""
    if len(release) <= MAX_RELEASE_CHARS and RELEASE_NAME.fullmatch(release):
        return release
    if len(release) > MAX_RELEASE_CHARS:
        problem = (f"{shorten(release)} is not a release name: it has {len(release)} "
                   f"characters, more than the {MAX_RELEASE_CHARS} a release name may have")
    else:
        problem = (f"{release!r} is not a release name; release names look like 1.20 or "
                   "1.20-tke (digits and dots, then optional .suffix or -suffix parts; "
                   "no slashes)")
    raise ManifestError([problem], hint="run `tkedistro list` to see the releases of this repo")


def shorten(value: object, limit: int = 60) -> str:
    """``repr(value)`` for a message, cut to about ``limit`` characters (a 5000-character
    name is named, not printed)."""
    text = repr(value if isinstance(value, str) else str(value))
    return text if len(text) <= limit else f"{text[:limit - 8]}...' ({len(text) - 2} characters)"


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


def _exists(path: Path, option: str) -> bool:
    return _stat(path, option) is not None


def _is_folder(path: Path, option: str) -> bool:
    info = _stat(path, option)
    return info is not None and stat.S_ISDIR(info.st_mode)


def _stat(path: Path, option: str) -> os.stat_result | None:
    """``path``'s status (None when there is nothing), or ``ManifestError`` naming
    ``option`` for a path the system refuses (too long, a symlink loop)."""
    try:
        return path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as exc:
        raise ManifestError([f"{option} {shorten(str(path))}: cannot use it: {_reason(exc)}"],
                            hint=f"give {option} an existing folder with a shorter path"
                            ) from None


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` that holds ``releases/``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / RELEASES).is_dir():
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


def list_release_names(releases_dir: Path) -> list[str]:
    """Release names from ``releases/*.yaml``, in version order."""
    names = [p.stem for p in releases_dir.glob("*.yaml")]

    def key(name: str) -> tuple[int, ...] | tuple[float]:
        try:
            return tuple(int(x) for x in name.split("."))
        except ValueError:
            return (float("inf"),)

    return sorted(names, key=key)


@dataclass(frozen=True)
class Workspace:
    """Paths of one distro repo (``root``) and the user cache (``cache``)."""

    root: Path
    cache: Path

    @classmethod
    def discover(cls, root: Path | None = None, cache: Path | None = None) -> Workspace:
        found = root.resolve() if root else find_root()
        if root and not (_is_folder(found, "--root") and _is_folder(found / RELEASES, "--root")):
            raise ManifestError(
                [f"{found}: no releases/ folder here"],
                hint="--root must name a distro repo (a folder that holds releases/)",
            )
        if cache is not None and _exists(cache, "--cache-dir") \
                and not _is_folder(cache, "--cache-dir"):
            raise ManifestError([f"--cache-dir {cache}: not a folder"],
                                hint="name a folder for the cache, or leave --cache-dir out")
        return cls(root=found, cache=(cache.resolve() if cache else default_cache_dir()))

    @property
    def releases_dir(self) -> Path:
        return self.root / RELEASES

    def release(self, name: str) -> ReleasePaths:
        """Every path of release ``name`` (``ManifestError`` for a name that is not one)."""
        return ReleasePaths(self, name)

    # shorthands for the handle's paths, for code that holds a (workspace, release) pair
    def manifest_path(self, release: str) -> Path:
        return self.release(release).manifest_file

    def patches_dir(self, release: str) -> Path:
        return self.release(release).patches_dir

    def src_dir(self, release: str) -> Path:
        return self.release(release).src

    def output_dir(self, release: str) -> Path:
        return self.release(release).output

    def cluster_dir(self, release: str) -> Path:
        return self.release(release).cluster

    def results_dir(self, release: str) -> Path:
        return self.release(release).results

    def conformance_results_dir(self, release: str) -> Path:
        return self.release(release).conformance_results

    def state_dir(self, release: str) -> Path:
        return self.release(release).state_dir

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



def manifest_name(release: str) -> str:
    """How messages name a release's manifest: ``releases/<release>.yaml`` (repo-relative;
    also for a name that is not a release name, so the message can say so)."""
    return f"{RELEASES}/{release}{MANIFEST_SUFFIX}"


def output_bin(platform: str | None = None) -> PurePosixPath:
    """Where an output folder keeps one platform's binaries: ``bin/<os>/<arch>`` (the host's
    platform when None); relative, as ``SHA256SUMS`` and the SBOM name them."""
    from tkedistro.core.host import host_platform  # loads ``platform``: only when needed

    return PurePosixPath("bin", platform or host_platform())


@dataclass(frozen=True)
class ReleaseLayout:
    """Where a release's folders are, relative to the distro repo: what messages show
    (``_src/1.20``) and what ``ReleasePaths`` puts under the repo root."""

    name: str

    @property
    def manifest(self) -> PurePosixPath:
        return PurePosixPath(manifest_name(self.name))

    @property
    def patches(self) -> PurePosixPath:
        return PurePosixPath("patches", self.name)

    @property
    def src(self) -> PurePosixPath:
        return PurePosixPath("_src", self.name)

    @property
    def state(self) -> PurePosixPath:
        return self.src.with_name(f".{self.name}.tkedistro")

    @property
    def dropped(self) -> PurePosixPath:
        """Where ``tkedistro drop`` keeps the edits of a dropped line (outlives ``state``)."""
        return self.src.with_name(f".{self.name}.dropped")

    @property
    def output(self) -> PurePosixPath:
        return PurePosixPath("_output", self.name)

    @property
    def results(self) -> PurePosixPath:
        return PurePosixPath("_results", self.name)

    @property
    def conformance_results(self) -> PurePosixPath:
        return self.results / "conformance"

    @property
    def cluster(self) -> PurePosixPath:
        return PurePosixPath("_cluster", self.name)


@dataclass(frozen=True)
class ReleasePaths:
    """One release of one distro repo: its name and every path the tool reads or writes for
    it. Paths only (nothing is read or made here); ``Workspace.release(name)`` makes one."""

    workspace: Workspace
    name: str

    def __post_init__(self) -> None:
        check_release_name(self.name)

    @property
    def layout(self) -> ReleaseLayout:
        """The same places relative to the repo root, for messages."""
        return ReleaseLayout(self.name)

    @property
    def root(self) -> Path:
        return self.workspace.root

    @property
    def manifest_file(self) -> Path:
        """``releases/<release>.yaml``."""
        return self.root / self.layout.manifest

    @property
    def manifest_name(self) -> str:
        """``releases/<release>.yaml`` as messages name it."""
        return manifest_name(self.name)

    @property
    def patches_dir(self) -> Path:
        """``patches/<release>``: the release's patch files."""
        return self.root / self.layout.patches

    @property
    def src(self) -> Path:
        """``_src/<release>``: the prepared tree (upstream plus the series)."""
        return self.root / self.layout.src

    @property
    def output(self) -> Path:
        """``_output/<release>``: the published build (replaced whole by the next one)."""
        return self.root / self.layout.output

    def bin_dir(self, platform: str | None = None) -> Path:
        """``_output/<release>/bin/<os>/<arch>`` (the host's platform when None)."""
        return self.output / output_bin(platform)

    @property
    def output_lock(self) -> Path:
        """``_output/.<release>.lock``: held by a build publishing ``output`` and by whatever
        runs from it (beside it: the lock must outlive the folder's replacement)."""
        return self.output.with_name(f".{self.name}.lock")

    @property
    def results(self) -> Path:
        """``_results/<release>``: what runs against a build found (kept out of ``output``:
        a build replaces it whole, and the results of the build before must outlive it)."""
        return self.root / self.layout.results

    @property
    def conformance_results(self) -> Path:
        """One folder per conformance run, and ``latest`` pointing at the last report."""
        return self.root / self.layout.conformance_results

    @property
    def bisect_results(self) -> Path:
        """One folder per ``tkedistro bisect`` run: the log of every check it ran."""
        return self.results / "bisect"

    @property
    def cluster(self) -> Path:
        """``_cluster/<release>``: runtime files of a local cluster (kept out of ``output``:
        the kubelet mounts under it, and a build must be able to replace ``output``)."""
        return self.root / self.layout.cluster

    @property
    def cluster_state(self) -> Path:
        """What ``cluster up`` made (nodes, addresses, the build it runs)."""
        return self.cluster / CLUSTER_STATE

    @property
    def cluster_lock(self) -> Path:
        return self.cluster.with_name(f".{self.name}.cluster.lock")

    @property
    def state_dir(self) -> Path:
        """``_src/.<release>.tkedistro``: tool state that must survive crashes."""
        return self.root / self.layout.state

    @property
    def source_state(self) -> Path:
        """What ``tkedistro source`` made: which series entry gave which commit."""
        return self.state_dir / "source.json"

    @property
    def source_applying(self) -> Path:
        """Present while ``tkedistro source`` applies the series (a died run leaves it)."""
        return self.state_dir / "source.applying"

    @property
    def source_lock(self) -> Path:
        """The release lock: held by source, rebase, import and export."""
        return self.state_dir / "source.lock"

    @property
    def build_run(self) -> Path:
        """What a running build may write into ``src`` (removed after it, even a killed one)."""
        return self.state_dir / "build-run.json"

    @property
    def new_line_record(self) -> Path:
        """What ``tkedistro new`` wrote (file hashes): proof the line is the tool's, and the
        base ``tkedistro drop`` compares the manifest and patch files with."""
        return self.state_dir / "new-line.json"

    @property
    def dropped(self) -> Path:
        """``_src/.<release>.dropped``: one folder per ``tkedistro drop`` that saved edits."""
        return self.root / self.layout.dropped

    @property
    def rebase_state(self) -> Path:
        """Present exactly while the release is mid-rebase."""
        return self.state_dir / "rebase.json"

    @property
    def rebase_backup(self) -> Path:
        """The manifest and patch files as they were before the rebase (for ``--abort``)."""
        return self.state_dir / "rebase-backup"

    @property
    def rebase_patch(self) -> Path:
        """The patch a stopped rebase is replaying."""
        return self.state_dir / "current.patch"

    @property
    def source_patch(self) -> Path:
        """A plain diff ``source`` is turning into a commit (as a mail for ``git am``)."""
        return self.state_dir / "source.patch"

    @property
    def import_patch(self) -> Path:
        """The patch ``patches import`` is applying."""
        return self.state_dir / "import.patch"

    @property
    def series_stage(self) -> Path:
        """The patch files and manifest a series transaction (export, reorder, import) stages
        before it swaps them in."""
        return self.state_dir / "series-tx"

    @property
    def series_journal(self) -> Path:
        """Present from the moment a series transaction is committed until it is applied."""
        return self.state_dir / "series-tx.json"
