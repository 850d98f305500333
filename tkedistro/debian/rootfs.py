"""A Debian root filesystem made offline and imported as a local image, reused by its inputs.

``debootstrap --variant=minbase --keyring=... --include=PACKAGES SUITE ROOTFS MIRROR``
(``debian/debootstrap.py``: the Release signature always verified; the mirror from
``debian/source.py``: ``--debian-mirror``, the manifest's ``debian.mirror``,
``DEBIAN_MIRROR``, else deb.debian.org), then
optional commands in a chroot of it (``update-alternatives``) and pruned folders (docs, man
pages; a recipe may keep some files there, such as each package's copyright file), then
the engine imports it under the recipe's ref. The image is labelled with every installed
``package=version``, with the digest of its inputs (suite, mirror, packages and any
setup/prune/keep/arch), and with the archive state it came from (``debian/release.py``:
suite, mirror, the (In)Release's URL, sha256, date and point release); a later call reuses it
while the inputs digest matches. debootstrap needs root.

A recipe for another architecture (``arch="arm64"`` on an amd64 host) is debootstrapped the
same way: both stages run here, the second under qemu-user through binfmt_misc
(``engine/emulation.py`` checks that first and says what to install when it is missing), and
the import records the platform (``linux/arm64``) in the image's config.

The upstream images' base (``images/upstream/debianbase.py``), the component base
(``images/base.py``), the node base (``cluster/nodeimage.py``) and the builder image
(``build/builderimage.py``: extra ``ENV``/``LABEL`` lines, a label with an installed package's
upstream version) are recipes for this module.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core import console, files
from tkedistro.core.errors import BuildError
from tkedistro.core.files import json_digest
from tkedistro.core.runner import run
from tkedistro.debian import source
from tkedistro.debian.debootstrap import Bootstrap, bootstrap
from tkedistro.debian.release import MIRROR_LABEL, SUITE_LABEL, read_release
from tkedistro.engine.emulation import can_run
from tkedistro.engine.imagerecord import ImageRecord, local_id
from tkedistro.engine.protocols import BuiltImage, ImageEngine

SUITE = "bullseye"
DEFAULT_MIRROR = source.DEFAULT_MIRROR
INPUTS_LABEL = "org.tkedistro.inputs"
SOURCE_LABEL = "org.opencontainers.image.source"
PACKAGES_LABEL = "org.tkedistro.debian.packages"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RECORD_NAME = "images.json"
# Debian's architecture name -> the platform an image of it is for
PLATFORMS = {"amd64": "linux/amd64", "arm64": "linux/arm64", "armhf": "linux/arm/v7",
             "ppc64el": "linux/ppc64le", "s390x": "linux/s390x"}


@dataclass(frozen=True)
class DebianRecipe:
    """What one Debian base is made of; everything here is part of its inputs digest."""

    ref: str
    packages: tuple[str, ...]
    suite: str = SUITE
    arch: str = ""  # Debian architecture (``amd64``, ``arm64``); "" means debootstrap's default
    setup: tuple[tuple[str, ...], ...] = ()  # argv run with ``chroot ROOTFS`` after debootstrap
    prune: tuple[str, ...] = ()  # folders (relative to the root) emptied before the import
    keep: tuple[str, ...] = ()  # globs (relative to the root) of files a prune leaves in place
    step: str = "debian_base"  # the pipeline step named in progress lines
    hint: str = "run as root once; later runs reuse the imported image"
    changes: tuple[str, ...] = ()  # more Dockerfile lines for the import (``ENV HOME=/tmp``)
    # (label, package): the label gets the package's installed upstream version (no revision)
    version_labels: tuple[tuple[str, str], ...] = ()

    @property
    def platform(self) -> str:
        """``linux/arm64`` for ``arch="arm64"``; "" when the recipe takes the host's."""
        return PLATFORMS.get(self.arch, f"linux/{self.arch}") if self.arch else ""

    def inputs_digest(self, mirror_url: str | None = None) -> str:
        doc: dict[str, object] = {"suite": self.suite, "variant": "minbase",
                                  "mirror": mirror_url or mirror(),
                                  "packages": sorted(self.packages)}
        # only when set, so a recipe without them keeps the digest it always had
        for key, value in (("arch", self.arch), ("setup", [list(a) for a in self.setup]),
                           ("prune", list(self.prune)), ("keep", list(self.keep)),
                           ("changes", list(self.changes)),
                           ("version_labels", [list(v) for v in self.version_labels])):
            if value:
                doc[key] = value
        return json_digest(doc)


@dataclass(frozen=True)
class DebianBase:
    """The imported base: its ref and id, installed ``package=version`` lines, reuse flag."""

    ref: str
    image_id: str
    packages: tuple[str, ...]
    reused: bool

    def version(self, package: str) -> str:
        for line in self.packages:
            name, _, version = line.partition("=")
            if name == package:
                return version
        return "?"


def mirror() -> str:
    """The mirror this run debootstraps from (``debian/source.py``): part of every inputs
    digest, so a base made from another mirror is made again."""
    return source.current().mirror


def reusable(labels: Mapping[str, str] | None, digest: str) -> bool:
    return labels is not None and labels.get(INPUTS_LABEL) == digest


def upstream_version(version: str) -> str:
    """Debian's ``1:1.15.15-1~deb11u4`` -> ``1.15.15`` (no epoch, no Debian revision)."""
    without_epoch = version.split(":", 1)[-1]
    return without_epoch.rsplit("-", 1)[0] if "-" in without_epoch else without_epoch


def ensure_debian_base(engine: ImageEngine, work: Path, recipe: DebianRecipe,
                       force: bool = False) -> DebianBase:
    """The base image, reused when its inputs label matches, else debootstrapped and imported.

    ``work`` holds the scratch root filesystem while it is made and ``images.json`` (which id
    each ref got for which inputs). ``force`` makes it again even when it matches."""
    digest = recipe.inputs_digest()
    labels = engine.labels(recipe.ref)
    if labels is not None and reusable(labels, digest) and not force:
        image_id = local_id(engine, recipe.ref, digest, work)
        return DebianBase(recipe.ref, image_id, _split(labels.get(PACKAGES_LABEL, "")), True)
    if os.geteuid() != 0:
        raise BuildError(f"making the Debian base image {recipe.ref} needs root (debootstrap)",
                         hint=recipe.hint)
    _check_emulation(recipe)
    rootfs = work / "debian-rootfs"
    with console.step(recipe.step, f"debootstrap {recipe.suite} ({len(recipe.packages)} packages)"):
        installed, used = _debootstrap(rootfs, recipe, work / "debootstrap.log")
        _finish_rootfs(rootfs, recipe)
    archive = _archive_labels(rootfs, recipe, used)
    with console.step(recipe.step, f"import {recipe.ref}"):
        built = _import(engine, rootfs, work / "debian-rootfs.tar", recipe, digest, installed,
                        archive)
    try:
        files.remove(rootfs)
    except OSError:
        pass  # the next debootstrap clears it (clear_rootfs)
    ImageRecord(work / RECORD_NAME).remember(recipe.ref, digest, built.id)
    return DebianBase(recipe.ref, built.id, installed, False)


def _check_emulation(recipe: DebianRecipe) -> None:
    """A foreign architecture's second stage runs its binaries: they must be able to run."""
    if not recipe.platform:
        return
    able, why = can_run(recipe.platform)
    if not able:
        raise BuildError(f"making the {recipe.platform} Debian base image {recipe.ref} needs "
                         f"emulation: {why}")


def _split(text: str) -> tuple[str, ...]:
    return tuple(item for item in text.split(",") if item)


def mounts_under(mountinfo: str, folder: Path) -> list[Path]:
    """The mount points inside ``folder`` (``/proc/self/mountinfo`` text), deepest first."""
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
        if point != folder and point.is_relative_to(folder):
            found.append(point)
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def clear_rootfs(rootfs: Path) -> None:
    """Remove a root filesystem this tool made, first unmounting what a killed debootstrap
    left mounted inside it (``/proc``, ``/sys``): only mounts under ``rootfs``. A symlink at
    ``rootfs`` or in its folders is refused (``UnsafePathError``) before anything is
    unmounted; the removal never crosses a symlink inside it."""
    files.check_path(rootfs)
    if not os.path.lexists(rootfs):
        return
    folder = rootfs.resolve()
    for point in mounts_under(Path("/proc/self/mountinfo").read_text(), folder):
        run(["umount", "--lazy", "--", point],
            message=f"unmounting {point}, left mounted by an earlier debootstrap, failed")
    try:
        files.remove(rootfs)
    except OSError as exc:
        raise BuildError(f"cannot remove the old Debian root filesystem {rootfs}: {exc}",
                         hint=f"remove it by hand (as root) and run again: rm -rf {rootfs}"
                         ) from exc


def make_rootfs(rootfs: Path, recipe: DebianRecipe, log: Path) -> tuple[str, ...]:
    """debootstrap ``recipe`` into ``rootfs`` (cleared first), run its setup commands and empty
    its pruned folders, without importing it; returns the installed ``package=version`` lines.
    ``log`` gets debootstrap's output."""
    installed, _ = _debootstrap(rootfs, recipe, log)
    _finish_rootfs(rootfs, recipe)
    return installed


def _debootstrap(rootfs: Path, recipe: DebianRecipe, log: Path) -> tuple[tuple[str, ...], str]:
    """The installed ``package=version`` lines, and the mirror the root came from (the
    archive mirror when the default one no longer had the suite)."""
    clear_rootfs(rootfs)
    files.ensure_dir(rootfs.parent)
    used = bootstrap(Bootstrap(recipe.suite, rootfs, recipe.packages, recipe.arch),
                     source.current(), log)
    query = run(["chroot", rootfs, "dpkg-query", "-W", "-f", "${Package}=${Version}\n"],
                message="listing the packages of the Debian base failed")
    return tuple(sorted(line for line in query.stdout.splitlines() if line)), used


def _finish_rootfs(rootfs: Path, recipe: DebianRecipe) -> None:
    """The recipe's setup commands in a chroot, then its pruned folders emptied."""
    for argv in recipe.setup:
        run(["chroot", rootfs, *argv],
            message=f"setting up the Debian base {recipe.ref}: {' '.join(argv)} failed")
    kept = {path: path.read_bytes() for pattern in recipe.keep for path in rootfs.glob(pattern)
            if path.is_file() and not _through_symlink(rootfs, path)}
    for folder in recipe.prune:
        target = rootfs / folder
        if target.is_dir() and not target.is_symlink():
            files.remove(target)
            files.ensure_dir(target)
    for path, data in sorted(kept.items()):
        if not path.exists():
            files.ensure_dir(path.parent)
            files.write_atomic(path, data)


def _through_symlink(rootfs: Path, path: Path) -> bool:
    """Whether ``path`` (inside ``rootfs``) or a folder between them is a symlink."""
    parts = path.relative_to(rootfs).parts
    return any((rootfs.joinpath(*parts[:n])).is_symlink() for n in range(1, len(parts) + 1))


def _archive_labels(rootfs: Path, recipe: DebianRecipe, used_mirror: str) -> dict[str, str]:
    """Where the root came from: suite, mirror and, when debootstrap left it, the suite's
    (In)Release (read before ``_import`` empties the package lists)."""
    release = read_release(rootfs, recipe.suite, used_mirror)
    return {SUITE_LABEL: recipe.suite, MIRROR_LABEL: used_mirror,
            **(release.labels() if release else {})}


def _import(engine: ImageEngine, rootfs: Path, tar: Path, recipe: DebianRecipe, digest: str,
            installed: tuple[str, ...], archive: Mapping[str, str]) -> BuiltImage:
    for cache in (rootfs / "var/cache/apt/archives", rootfs / "var/lib/apt/lists"):
        for item in cache.glob("*"):
            if item.is_file():
                files.remove_link(item)  # the file (or a link to one) itself, never its target
    run(["tar", "--numeric-owner", "-C", rootfs, "-c", "-f", tar, "."],
        message="packing the Debian base root filesystem failed")
    origin = f"debootstrap {recipe.suite} minbase from {archive[MIRROR_LABEL]}"
    changes = (f"ENV {PATH_ENV}",
               f"LABEL {SOURCE_LABEL}={json.dumps(origin)}",
               f"LABEL {INPUTS_LABEL}={json.dumps(digest)}",
               f"LABEL {PACKAGES_LABEL}={json.dumps(','.join(installed))}",
               *(f"LABEL {key}={json.dumps(value)}" for key, value in sorted(archive.items())),
               *recipe.changes, *_version_labels(recipe, installed))
    try:
        if recipe.platform:
            return engine.import_rootfs(tar, recipe.ref, changes, platform=recipe.platform)
        return engine.import_rootfs(tar, recipe.ref, changes)
    finally:
        files.remove(tar)


def _version_labels(recipe: DebianRecipe, installed: tuple[str, ...]) -> list[str]:
    versions = dict(line.partition("=")[::2] for line in installed)
    return [f"LABEL {label}={json.dumps(upstream_version(versions.get(package, '?')))}"
            for label, package in recipe.version_labels]
