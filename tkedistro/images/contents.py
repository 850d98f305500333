"""What is inside a shipped image: files read from its layers, and the Debian packages its
dpkg status names.

The blobs come from an OCI layout folder (while the image is made) or from its packed archive
(``images/<component>.oci.tar``, read in place). A platform's layers are read in order, a later
layer's file replacing an earlier one and its whiteouts (``.wh.<name>``, ``.wh..wh..opq``)
removing them, so the files are the ones the image's root filesystem holds.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from tkedistro.core import files
from tkedistro.core.errors import ImageError
from tkedistro.debian.dpkg import (
    DOC_DIR,
    OS_RELEASE_PATHS,
    STATUS_PATH,
    DebianPackage,
    copyright_license,
    os_release_distro,
    parse_status,
)
from tkedistro.images.ocilayout import blob_path

OpenBlob = Callable[[str], IO[bytes]]


@dataclass(frozen=True)
class DebianContents:
    """The Debian packages of one platform's image and the distribution they are from."""

    platform: str
    distro: str  # "debian-11"; "" when the image has no os-release
    packages: tuple[DebianPackage, ...]


def layout_blobs(layout: Path) -> OpenBlob:
    """Blobs of an OCI layout folder."""
    return lambda digest: files.check_path(blob_path(layout, digest)).open("rb")


@contextmanager
def archive_blobs(archive: Path) -> Iterator[OpenBlob]:
    """Blobs of a packed OCI archive, read in place."""
    try:
        with tarfile.open(files.check_path(archive)) as tar:
            members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}

            def open_blob(digest: str) -> IO[bytes]:
                name = blob_path(Path("."), digest).as_posix()
                handle = tar.extractfile(members[name]) if name in members else None
                if handle is None:
                    raise ImageError(f"{archive}: blob {digest} is missing")
                return handle

            yield open_blob
    except (OSError, tarfile.TarError) as exc:
        raise ImageError(f"{archive} is not a readable OCI archive: {exc}") from exc


def read_json_blob(open_blob: OpenBlob, digest: str) -> dict[str, object]:
    with open_blob(digest) as handle:
        try:
            data = json.loads(handle.read())
        except ValueError as exc:
            raise ImageError(f"blob {digest} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ImageError(f"blob {digest} is not a JSON object")
    return data


def _layers(open_blob: OpenBlob, manifest: str) -> list[str]:
    layers = read_json_blob(open_blob, manifest).get("layers")
    return [str(d.get("digest")) for d in layers if isinstance(d, dict)] \
        if isinstance(layers, list) else []


def _apply_layer(tar: tarfile.TarFile, wanted: Callable[[str], bool],
                 found: dict[str, bytes]) -> None:
    for member in tar:
        path = PurePosixPath(member.name.removeprefix("./"))
        name = path.name
        if name == ".wh..wh..opq":
            folder = path.parent.as_posix() + "/"
            for key in [k for k in found if k.startswith(folder)]:
                del found[key]
        elif name.startswith(".wh."):
            gone = (path.parent / name.removeprefix(".wh.")).as_posix()
            for key in [k for k in found if k == gone or k.startswith(gone + "/")]:
                del found[key]
        elif wanted(path.as_posix()):
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None:
                found[path.as_posix()] = handle.read()
            else:
                found.pop(path.as_posix(), None)


def image_files(open_blob: OpenBlob, manifest: str,
                wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """The regular files of one image (``manifest``: its manifest digest) whose path
    (relative, ``var/lib/dpkg/status``) ``wanted`` accepts."""
    found: dict[str, bytes] = {}
    for layer in _layers(open_blob, manifest):
        with open_blob(layer) as handle, tarfile.open(fileobj=handle, mode="r|*") as tar:
            _apply_layer(tar, wanted, found)
    return found


def _wanted(path: str) -> bool:
    parts = path.split("/")
    return (path == STATUS_PATH or path in OS_RELEASE_PATHS
            or (path.startswith(DOC_DIR + "/") and len(parts) == 5 and parts[4] == "copyright"))


def debian_contents(open_blob: OpenBlob, platform: str, manifest: str) -> DebianContents:
    """The Debian packages of one platform's image, each with the license of its
    machine-readable copyright file; none for an image without a dpkg status (pause)."""
    found = image_files(open_blob, manifest, _wanted)
    release = next((found[p] for p in OS_RELEASE_PATHS if p in found), b"")
    packages = []
    for package in parse_status(found.get(STATUS_PATH, b"").decode("utf-8", "replace")):
        text = found.get(f"{DOC_DIR}/{package.name}/copyright")
        if text is not None:
            package = package.with_license(*copyright_license(
                package.name, text.decode("utf-8", "replace")))
        packages.append(package)
    return DebianContents(platform, os_release_distro(release.decode("utf-8", "replace")),
                          tuple(packages))


def platform_contents(open_blob: OpenBlob, manifests: Mapping[str, str]
                      ) -> list[DebianContents]:
    """``debian_contents`` of each platform (platform -> manifest digest), sorted."""
    return [debian_contents(open_blob, platform, digest)
            for platform, digest in sorted(manifests.items())]
