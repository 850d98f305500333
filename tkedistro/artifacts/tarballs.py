"""Release tarballs laid out as upstream's ``build/lib/release.sh`` lays them out.

For each built platform ``<os>-<arch>`` (``linux-amd64``, ``linux-arm64``), in
``<output>/release/``:

- ``kubernetes-client-<os>-<arch>.tar.gz``: ``kubernetes/client/bin/kubectl``
  (``package_client_tarballs``: ``KUBE_CLIENT_BINARIES``).
- ``kubernetes-node-<os>-<arch>.tar.gz``: ``kubernetes/node/bin/`` with kube-proxy, kubeadm,
  kubelet (``KUBE_NODE_BINARIES``) and kubectl, ``kubernetes/LICENSES/`` and
  ``kubernetes/kubernetes-src.tar.gz`` (``package_node_tarballs``).
- ``kubernetes-server-<os>-<arch>.tar.gz``: ``kubernetes/server/bin/`` with kube-proxy,
  kube-apiserver, kube-controller-manager, kubelet, kubeadm, kube-scheduler
  (``KUBE_SERVER_BINARIES``) and kubectl; for each component image handed in, its docker
  archive ``<component>.tar`` and ``<component>.docker_tag`` (the version, ``+`` made ``_``:
  ``create_docker_images_for_server``); an empty ``kubernetes/addons/``,
  ``kubernetes/LICENSES/`` and ``kubernetes/kubernetes-src.tar.gz``
  (``package_server_tarballs``).
- ``kubernetes-src.tar.gz`` once beside them (``package_src_tarball``): ``git archive`` of
  the patched tree's commit, as upstream archives a clean tree (no ``kubernetes/`` prefix).

Only what was built is shipped. Upstream has, and this does not: kube-aggregator,
apiextensions-apiserver and mounter in ``server/bin``; client tarballs for darwin, windows and
the other Linux architectures; the test tarballs, the manifests tarball and the final
``kubernetes.tar.gz``; the conformance image. Upstream's docker archives are ``docker save``
of ``k8s.gcr.io/<component>-<arch>:<tag>``; here they are whatever the image export made.

Unlike upstream's ``tar czf`` (directory order, build-time mtimes, the builder's modes), the
bytes depend only on the inputs: members sorted, every mtime ``source_date_epoch``, owner
0/0 ``root``, folders and executables 0755, other files 0644 (``LICENSES`` files keep git's
executable bit), gzip with mtime 0 and no file name. ``LICENSES`` comes from the archive of
the commit, not from the work tree. Files are streamed, never read whole.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

from tkedistro.artifacts.context import ReleaseContext
from tkedistro.core import console, files
from tkedistro.core.errors import BuildError, ImageError
from tkedistro.core.workspace import output_bin
from tkedistro.git.repo import Repo

STEP = "release_tarballs"
RELEASE_DIR = "release"
SRC_TARBALL = "kubernetes-src.tar.gz"
# hack/lib/golang.sh's lists (upstream's order), less what tkedistro does not build
SERVER_BINARIES = ("kube-proxy", "kube-apiserver", "kube-controller-manager", "kubelet",
                   "kubeadm", "kube-scheduler")
NODE_BINARIES = ("kube-proxy", "kubeadm", "kubelet")
CLIENT_BINARIES = ("kubectl",)
COMPRESS_LEVEL = 6  # gzip's default: what upstream's `tar czf` gets
ROOT = "kubernetes"


@dataclass(frozen=True)
class Entry:
    """One tarball member: a folder (no ``open``, no ``link``), a file or a symlink."""

    name: str  # "kubernetes/server/bin/kubectl", no trailing slash
    size: int = 0
    executable: bool = False
    open: Callable[[], IO[bytes]] | None = None
    link: str | None = None


ImageTars = Mapping[tuple[str, str], Path]  # (component, platform) -> docker archive


def write_tarballs(out_dir: Path, ctx: ReleaseContext,
                   image_tars: ImageTars | None = None) -> list[str]:
    """Write the release tarballs of every platform of ``ctx`` from ``out_dir/bin`` into
    ``out_dir/release``; returns the files written (``kubernetes-src.tar.gz`` included),
    relative to ``out_dir``, sorted. Each one is named on the console with its size."""
    started = time.monotonic()
    images = dict(image_tars or {})
    _check_built(out_dir, ctx)
    _check_images(images, ctx)
    release = files.ensure_dir(out_dir / RELEASE_DIR)
    written = [release / SRC_TARBALL]
    with _temp_dir(release, ".tarballs-") as tmp:
        src_tar = tmp / "src.tar"
        Repo(ctx.tree).archive(ctx.tree_commit, src_tar)
        with _gzip_writer(release / SRC_TARBALL) as gz, src_tar.open("rb") as raw:
            shutil.copyfileobj(raw, gz, 1 << 20)
        _written(release / SRC_TARBALL, out_dir, started)
        with tarfile.open(src_tar, "r:") as source:
            shared = [*_licenses(source), _file(f"{ROOT}/{SRC_TARBALL}", release / SRC_TARBALL)]
        jobs = [(release / f"kubernetes-{kind}-{platform.replace('/', '-')}.tar.gz", entries)
                for platform in ctx.platforms
                for kind, entries in platform_layout(out_dir, ctx, platform, shared, images)]

        def one(job: tuple[Path, list[Entry]]) -> Path:
            write_tarball(job[0], job[1], ctx.source_date_epoch)
            return job[0]

        # gzip is the cost and zlib lets go of the GIL: one thread per core
        with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
            for dest in pool.map(one, jobs):
                written.append(dest)
                _written(dest, out_dir, started)
    return sorted(str(path.relative_to(out_dir)) for path in written)


def _written(path: Path, out_dir: Path, started: float) -> None:
    console.info(f"[{STEP}] {console.duration(time.monotonic() - started)} "
                 f"{path.relative_to(out_dir)} {console.size(path.stat().st_size)}")


def platform_layout(out_dir: Path, ctx: ReleaseContext, platform: str, shared: Sequence[Entry],
                    images: ImageTars) -> list[tuple[str, list[Entry]]]:
    """(kind, entries) of the server, node and client tarballs of ``platform``; a tarball
    none of whose binaries was built is left out."""
    bins = out_dir / output_bin(platform)
    built = _shipped(ctx)

    def binaries(kind: str, names: Sequence[str]) -> list[Entry]:
        return [_file(f"{ROOT}/{kind}/bin/{c}", bins / c, executable=True)
                for c in names if c in built]

    server = binaries("server", (*SERVER_BINARIES, *CLIENT_BINARIES))
    node = binaries("node", (*NODE_BINARIES, *CLIENT_BINARIES))
    client = binaries("client", CLIENT_BINARIES)
    tag = (ctx.distro_version.replace("+", "_") + "\n").encode()
    for (component, image_platform), archive in sorted(images.items()):
        if image_platform == platform:
            server += [_file(f"{ROOT}/server/bin/{component}.tar", archive),
                       _data(f"{ROOT}/server/bin/{component}.docker_tag", tag)]
    layouts = [("server", server, [Entry(f"{ROOT}/addons"), *shared]),
               ("node", node, list(shared)), ("client", client, [])]
    return [(kind, [*files, *extra]) for kind, files, extra in layouts if files]


def write_tarball(dest: Path, entries: Sequence[Entry], epoch: int) -> None:
    """A gzipped tar of ``entries`` (and their parent folders) at ``dest``, atomically; the
    same entries and ``epoch`` give the same bytes."""
    with _gzip_writer(dest) as gz, \
            tarfile.TarFile(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for entry in with_folders(entries):
            _add(tar, entry, epoch)


def with_folders(entries: Sequence[Entry]) -> list[Entry]:
    """``entries`` with an entry for every parent folder, sorted by path (a folder before
    what it holds)."""
    by_name = {entry.name: entry for entry in entries}
    for name in list(by_name):
        parts = name.split("/")
        for depth in range(1, len(parts)):
            by_name.setdefault("/".join(parts[:depth]), Entry("/".join(parts[:depth])))
    return [by_name[name] for name in sorted(by_name, key=lambda n: n.split("/"))]


def _add(tar: tarfile.TarFile, entry: Entry, epoch: int) -> None:
    info = tarfile.TarInfo(entry.name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "root", "root"
    if entry.link is not None:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
        tar.addfile(info)
    elif entry.open is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    else:
        info.size, info.mode = entry.size, 0o755 if entry.executable else 0o644
        with entry.open() as handle:
            tar.addfile(info, handle)


@contextmanager
def _temp_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A new folder in ``parent`` made by the file layer, removed with what it holds."""
    folder = files.make_temp_dir(parent, prefix)
    try:
        yield folder
    finally:
        files.remove(folder)


@contextmanager
def _gzip_writer(dest: Path) -> Iterator[gzip.GzipFile]:
    """A gzip stream (mtime 0, no file name) whose bytes replace ``dest`` when it closes
    cleanly; nothing is left behind otherwise. The bytes go to a file in a new folder beside
    ``dest`` (the file layer's), renamed over ``dest``: a symlink at ``dest`` or in its
    folders is refused (``UnsafePathError``), never followed."""
    with _temp_dir(dest.parent, f".{dest.name}.tmp-") as tmp:
        with files.open_for_writing(tmp / dest.name) as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                               compresslevel=COMPRESS_LEVEL) as gz:
                yield gz
            raw.flush()
            os.fsync(raw.fileno())
        files.rename(tmp / dest.name, dest)


def _file(name: str, path: Path, *, executable: bool = False) -> Entry:
    def opened() -> IO[bytes]:
        return path.open("rb")

    return Entry(name, path.stat().st_size, executable, opened)


def _data(name: str, data: bytes) -> Entry:
    return Entry(name, len(data), False, partial(io.BytesIO, data))


def _licenses(source: tarfile.TarFile) -> list[Entry]:
    """``kubernetes/LICENSES/...`` from the archive of the tree (none if it has none)."""
    entries = []
    for member in source.getmembers():
        if member.name != "LICENSES" and not member.name.startswith("LICENSES/"):
            continue
        name = f"{ROOT}/{member.name}"
        if member.isdir():
            entries.append(Entry(name))
        elif member.issym():
            entries.append(Entry(name, link=member.linkname))
        elif member.isfile():
            handle = source.extractfile(member)
            assert handle is not None  # a regular file
            data = handle.read()  # small text files, kept so tarballs can be written at once
            entries.append(Entry(name, len(data), bool(member.mode & 0o100),
                                 partial(io.BytesIO, data)))
    return entries


def _shipped(ctx: ReleaseContext) -> list[str]:
    return [c for c in ctx.components if c in (*SERVER_BINARIES, *NODE_BINARIES,
                                               *CLIENT_BINARIES)]


def _check_built(out_dir: Path, ctx: ReleaseContext) -> None:
    for platform in ctx.platforms:
        for component in _shipped(ctx):
            path = out_dir / output_bin(platform) / component
            if not path.is_file():
                raise BuildError(
                    f"{path}: no such file; the build output lacks {component} for {platform}",
                    hint="build the release again (tkedistro build)")


def _check_images(images: ImageTars, ctx: ReleaseContext) -> None:
    for (component, platform), archive in images.items():
        if platform not in ctx.platforms:
            raise ValueError(f"image archive for {platform}, not a platform of the release")
        if not archive.is_file():
            raise ImageError(f"{archive}: no such file; the image archive of {component} "
                             f"for {platform} is missing")
