"""The Debian component base the shipped images sit on (fake engine): its packages, legacy
iptables, reuse, a foreign platform under emulation, and a rootfs never removed through a
symlink. (The Docker-engine component images it once carried are gone: the cluster runs the
shipped OCI images, tests/unit/test_cluster_shipped_images.py.)"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.unit.test_architecture import GRAPH
from tests.unit.test_images import FakeEngine as ImagesFakeEngine
from tests.unit.test_images import no_debootstrap  # noqa: F401  (autouse: no debootstrap here)
from tkedistro.core.errors import BuildError, UnsafePathError
from tkedistro.core.runner import run as real_run
from tkedistro.debian import rootfs as debian
from tkedistro.debian.rootfs import DebianBase
from tkedistro.engine import emulation
from tkedistro.engine.protocols import BuiltImage
from tkedistro.images import base, recipes
from tkedistro.images.upstream import debianbase

BASE = DebianBase("tkedistro.test/component-base:x", "sha256:" + "b" * 64, (), True)
FOUR = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")


class FakeEngine(ImagesFakeEngine):
    """test_images' local image store, also keeping each context's files (time, mode, bytes)
    and the tags made."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, str]] = []
        self.snapshots: dict[str, dict[str, tuple[int, int, bytes]]] = {}

    def build(self, context: Path, tag: str, labels: Mapping[str, str],
              dockerfile: str = "Dockerfile") -> BuiltImage:
        if (context / dockerfile).read_text() == f"FROM {tag}\n" and not labels:
            return self.images[tag]  # adds nothing: Docker answers with the same image
        self.builds.append(tag)
        self.snapshots[tag] = {
            str(f.relative_to(context)): (int(f.stat().st_mtime), f.stat().st_mode & 0o777,
                                          f.read_bytes() if f.is_file() else b"")
            for f in sorted(context.rglob("*"))}
        return self._store(tag, labels, repr(sorted(self.snapshots[tag].items())))

    def tag(self, ref: str, new_ref: str) -> None:
        self.tags.append((ref, new_ref))
        self.images[new_ref] = self.images[ref]


def test_the_platform_picks_the_binaries_folder(tmp_path: Path) -> None:
    output = tmp_path / "_output" / "1.20"
    assert recipes.binary_path(output, "kube-proxy", "linux/arm64") == (
        output / "bin/linux/arm64/kube-proxy")


def test_component_base_has_kube_proxys_packages_and_legacy_iptables() -> None:
    recipe = base.base_recipe("linux/amd64")
    assert recipe.ref == "tkedistro/component-base:trixie-amd64" and recipe.arch == "amd64"
    assert {"iptables", "ipset", "conntrack", "ebtables", "kmod", "iproute2",
            "ca-certificates"} <= set(recipe.packages)
    assert ("update-alternatives", "--set", "iptables", "/usr/sbin/iptables-legacy") \
        in recipe.setup
    assert ("update-alternatives", "--set", "ip6tables", "/usr/sbin/ip6tables-legacy") \
        in recipe.setup
    assert recipe.inputs_digest() != base.base_recipe("linux/arm64").inputs_digest()
    assert recipe.inputs_digest() != debianbase.inputs_digest()


def test_conformance_base_digest_is_unchanged_by_the_move() -> None:
    # the value the conformance base had before debian/rootfs.py existed (deb.debian.org)
    assert debianbase.inputs_digest(mirror_url=debian.DEFAULT_MIRROR) == (
        "sha256:eed490d1d5717c8daa9d424d6300705cfe71d31aefce0b992ceab8febd880247")


def test_component_base_runs_its_setup_in_the_chroot_and_is_then_reused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chroots: list[tuple[str, ...]] = []

    def debootstrap(rootfs: Path, recipe: debian.DebianRecipe,
                    log: Path) -> tuple[tuple[str, ...], str]:
        (rootfs / "usr/share/doc/iptables").mkdir(parents=True)
        (rootfs / "usr/share/doc/iptables/copyright").write_text("GPL\n")
        return ("iptables=1.8.7-1", "kmod=28-1"), debian.mirror()

    def fake_run(argv: Sequence[object], **kwargs: object) -> object:
        if argv[0] == "chroot":
            chroots.append(tuple(str(a) for a in argv[2:]))
            return None
        return real_run(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(debian, "_debootstrap", debootstrap)
    monkeypatch.setattr(debian, "run", fake_run)
    monkeypatch.setattr(debian.os, "geteuid", lambda: 0)
    engine = FakeEngine()
    first = base.ensure_component_base(engine, tmp_path, "linux/amd64")
    again = base.ensure_component_base(engine, tmp_path, "linux/amd64")
    assert chroots == [a for a in base.LEGACY]
    assert (first.reused, again.reused, again.image_id) == (False, True, first.image_id)
    assert first.version("iptables") == "1.8.7-1"
    assert engine.builds == ["tkedistro/component-base:trixie-amd64"]


def test_a_foreign_platform_base_is_made_under_emulation_and_imported_as_that_platform(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    def debootstrap(rootfs: Path, recipe: debian.DebianRecipe,
                    log: Path) -> tuple[tuple[str, ...], str]:
        made.append(recipe.arch)
        rootfs.mkdir(parents=True)
        return ("iptables=1.8.7-1",), debian.mirror()

    monkeypatch.setattr(debian, "_debootstrap", debootstrap)
    monkeypatch.setattr(debian, "_finish_rootfs", lambda rootfs, recipe: None)
    monkeypatch.setattr(debian.os, "geteuid", lambda: 0)
    monkeypatch.setattr(debian, "can_run", lambda platform: (True, "qemu-aarch64 via binfmt"))
    engine = FakeEngine()
    made_base = base.ensure_component_base(engine, tmp_path, "linux/arm64")
    assert made == ["arm64"] and made_base.ref == "tkedistro/component-base:trixie-arm64"
    assert engine.platforms == {"tkedistro/component-base:trixie-arm64": "linux/arm64"}


def test_a_foreign_platform_base_without_emulation_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debian.os, "geteuid", lambda: 0)
    monkeypatch.setattr(debian, "can_run", lambda platform: emulation.can_run(
        platform, binfmt_dir=tmp_path / "binfmt_misc", machine="x86_64"))
    (tmp_path / "binfmt_misc").mkdir()
    (tmp_path / "binfmt_misc/status").write_text("enabled\n")
    with pytest.raises(BuildError) as caught:
        base.ensure_component_base(FakeEngine(), tmp_path, "linux/arm64")
    assert caught.value.message.startswith(
        "making the linux/arm64 Debian base image tkedistro/component-base:trixie-arm64 "
        "needs emulation: linux/arm64 binaries cannot run on this amd64 host (emulation needs "
        f"{tmp_path}/binfmt_misc/qemu-aarch64, enabled, with the F flag): it is not registered; "
        "install qemu-user-static and binfmt-support")
    assert "`update-binfmts --enable qemu-aarch64`" in caught.value.message
    with pytest.raises(BuildError, match="no component base for platform 'windows/amd64'"):
        base.ensure_component_base(FakeEngine(), tmp_path, "windows/amd64")


def test_component_images_never_import_conformance() -> None:
    wrong = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() if m.startswith(
        "tkedistro.images") for t in targets if t.startswith("tkedistro.conformance"))
    assert wrong == []


def test_a_killed_debootstraps_mounts_inside_the_rootfs_are_found_deepest_first(
        tmp_path: Path) -> None:
    from tkedistro.debian.rootfs import mounts_under

    root = tmp_path / "debian rootfs"
    escaped = str(root).replace(" ", "\\040")
    mountinfo = "\n".join([
        "22 1 0:21 / /proc rw,nosuid - proc proc rw",
        f"90 22 0:50 / {escaped}/proc rw - proc proc rw",
        f"91 90 0:51 / {escaped}/proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw",
        f"92 1 0:52 / {escaped}-other/proc rw - proc proc rw",
        f"93 1 0:53 / {escaped} rw - tmpfs tmpfs rw",
    ])
    assert mounts_under(mountinfo, root) == [root / "proc/sys/fs/binfmt_misc", root / "proc"]


def test_a_symlinked_rootfs_is_refused_before_anything_is_unmounted_or_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "outside"
    (outside / "proc").mkdir(parents=True)
    (outside / "precious").write_text("keep\n")
    rootfs = tmp_path / "work" / "debian-rootfs"
    rootfs.parent.mkdir()
    rootfs.symlink_to(outside)
    ran: list[object] = []
    monkeypatch.setattr(debian, "run", lambda argv, **kwargs: ran.append(argv))
    with pytest.raises(UnsafePathError, match=f"^{re.escape(str(rootfs))} is a symlink"):
        debian.clear_rootfs(rootfs)
    assert ran == [] and sorted(p.name for p in outside.iterdir()) == ["precious", "proc"]


def test_pruning_never_deletes_through_a_symlink_in_the_rootfs(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "doc").mkdir(parents=True)
    (outside / "doc" / "precious").write_text("keep\n")
    rootfs = tmp_path / "debian-rootfs"
    (rootfs / "usr").mkdir(parents=True)
    (rootfs / "usr" / "share").symlink_to(outside)
    (rootfs / "var" / "man").mkdir(parents=True)
    (rootfs / "var" / "man" / "page").write_text("gone\n")
    recipe = debian.DebianRecipe("r:1", ("kmod",), prune=("var/man",))
    debian._finish_rootfs(rootfs, recipe)
    assert list((rootfs / "var" / "man").iterdir()) == []  # emptied, still there
    shared = rootfs / "usr" / "share"
    with pytest.raises(UnsafePathError, match=f"^{re.escape(str(shared))} is a symlink"):
        debian._finish_rootfs(rootfs, dataclasses.replace(recipe, prune=("usr/share/doc",)))
    assert (outside / "doc" / "precious").read_text() == "keep\n"


def test_pruning_keeps_the_files_a_recipe_keeps(tmp_path: Path) -> None:
    """The component base keeps each package's copyright file (its SBOM reads the licenses
    there) and nothing else of the docs; never a file reached through a symlink."""
    rootfs = tmp_path / "debian-rootfs"
    doc = rootfs / "usr/share/doc"
    (doc / "iptables").mkdir(parents=True)
    (doc / "iptables" / "copyright").write_text("Format: ...\n")
    (doc / "iptables" / "changelog.gz").write_text("long\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "copyright").write_text("not the package's\n")
    (doc / "linked").symlink_to(tmp_path / "elsewhere")
    recipe = debian.DebianRecipe("r:1", ("iptables",), prune=("usr/share/doc",),
                                 keep=("usr/share/doc/*/copyright",))
    debian._finish_rootfs(rootfs, recipe)
    assert sorted(p.relative_to(doc).as_posix() for p in doc.rglob("*")) == [
        "iptables", "iptables/copyright"]
    assert (doc / "iptables" / "copyright").read_text() == "Format: ...\n"
    assert recipe.inputs_digest("http://m") != dataclasses.replace(
        recipe, keep=()).inputs_digest("http://m")
