"""Component images (fake engine): refs kubeadm derives, binaries where kubeadm calls them,
labels that say what an image holds, and a second call that builds nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.helpers.manifests import V1_20_2, manifest_text
from tests.unit.test_architecture import GRAPH
from tests.unit.test_images import FakeEngine as ImagesFakeEngine
from tests.unit.test_images import no_debootstrap  # noqa: F401  (autouse: no debootstrap here)
from tkedistro.core.errors import BuildError, LockedError, UnsafePathError
from tkedistro.core.locks import exclusive_lock
from tkedistro.core.runner import run as real_run
from tkedistro.core.workspace import Workspace
from tkedistro.debian import rootfs as debian
from tkedistro.debian.rootfs import DebianBase
from tkedistro.engine import emulation
from tkedistro.engine.protocols import BuiltImage
from tkedistro.images import base, components, recipes
from tkedistro.images.upstream import debianbase
from tkedistro.model.manifest import Manifest, parse_manifest

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


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    text = manifest_text(components=("kube-apiserver", "kube-proxy"))
    return parse_manifest(text, tmp_path / "releases/1.20.yaml", "releases/1.20.yaml")


@pytest.fixture
def output(tmp_path: Path) -> Path:
    out = tmp_path / "_output" / "1.20"
    (out / "bin/linux/amd64").mkdir(parents=True)
    for name in FOUR:
        (out / "bin/linux/amd64" / name).write_bytes(b"\x7fELF " + name.encode())
    return out


def build(output: Path, manifest: Manifest, engine: FakeEngine, work: Path,
          repository: str = recipes.DEFAULT_REPOSITORY) -> list[components.ComponentImage]:
    return components.build_component_images(output, manifest, engine, BASE, work,
                                             "linux/amd64", repository)


def test_refs_are_what_kubeadm_derives_from_its_image_repository(
        output: Path, manifest: Manifest, tmp_path: Path) -> None:
    made = build(output, manifest, FakeEngine(), tmp_path / "work", "registry.example/k8s/")
    assert [i.ref for i in made] == [f"registry.example/k8s/{c}:v1.20.2-tke.1" for c in FOUR]
    assert [i.component for i in made] == list(FOUR)
    assert {i.platform for i in made} == {"linux/amd64"}


def test_the_binary_lands_in_usr_local_bin_on_the_base(output: Path, manifest: Manifest,
                                                       tmp_path: Path) -> None:
    engine = FakeEngine()
    build(output, manifest, engine, tmp_path / "work")
    proxy = engine.snapshots["tkedistro.local/k8s/kube-proxy:v1.20.2-tke.1"]
    assert proxy["Dockerfile"][2].decode() == f"FROM {BASE.ref}\nCOPY rootfs/ /\n"
    assert proxy["rootfs/usr/local/bin/kube-proxy"][2] == b"\x7fELF kube-proxy"


def test_context_files_get_fixed_times_and_modes_and_the_output_is_untouched(
        output: Path, manifest: Manifest, tmp_path: Path) -> None:
    binary = output / "bin/linux/amd64/kube-scheduler"
    os.chmod(binary, 0o700)
    before = binary.stat()
    engine = FakeEngine()
    build(output, manifest, engine, tmp_path / "work")
    files = engine.snapshots["tkedistro.local/k8s/kube-scheduler:v1.20.2-tke.1"]
    assert {n: f[:2] for n, f in files.items()} == {
        "Dockerfile": (recipes.FIXED_MTIME, 0o644),
        **{folder: (recipes.FIXED_MTIME, 0o755) for folder in (
            "rootfs", "rootfs/usr", "rootfs/usr/local", "rootfs/usr/local/bin")},
        "rootfs/usr/local/bin/kube-scheduler": (recipes.FIXED_MTIME, 0o755)}
    after = binary.stat()
    assert (after.st_mtime_ns, after.st_mode, after.st_nlink) == (
        before.st_mtime_ns, before.st_mode, 1)
    assert not (tmp_path / "work/context/linux-amd64/kube-scheduler").exists()


def test_labels_name_version_upstream_revision_source_and_binary(
        output: Path, manifest: Manifest, tmp_path: Path) -> None:
    made = build(output, manifest, FakeEngine(), tmp_path / "work")
    labels = made[0].labels
    sha = hashlib.sha256(b"\x7fELF kube-apiserver").hexdigest()
    assert {k: v for k, v in labels.items() if k != debian.INPUTS_LABEL} == {
        "org.opencontainers.image.title": "kube-apiserver",
        "org.opencontainers.image.version": "v1.20.2-tke.1",
        "org.opencontainers.image.revision": V1_20_2,
        "org.opencontainers.image.source": "https://github.com/kubernetes/kubernetes.git",
        "org.opencontainers.image.base.name": BASE.ref,
        "org.opencontainers.image.base.digest": BASE.image_id,
        "org.tkedistro.base": BASE.image_id,
        "org.tkedistro.platform": "linux/amd64",
        "org.tkedistro.binary.sha256": "sha256:" + sha}
    assert labels[debian.INPUTS_LABEL].startswith("sha256:")


def test_a_second_call_builds_nothing_and_returns_the_same_ids(
        output: Path, manifest: Manifest, tmp_path: Path) -> None:
    engine = FakeEngine()
    first = build(output, manifest, engine, tmp_path / "work")
    second = build(output, manifest, engine, tmp_path / "work")
    assert len(engine.builds) == 4
    assert [(i.reused, i.image_id) for i in second] == [(True, i.image_id) for i in first]
    assert not any(i.reused for i in first)


def test_a_lost_record_still_reuses_by_label(output: Path, manifest: Manifest,
                                            tmp_path: Path) -> None:
    engine = FakeEngine()
    first = build(output, manifest, engine, tmp_path / "work")
    (tmp_path / "work/images.json").unlink()
    again = build(output, manifest, engine, tmp_path / "work")
    assert len(engine.builds) == 4 and [i.image_id for i in again] == [i.image_id for i in first]


def test_a_changed_binary_rebuilds_only_its_image(output: Path, manifest: Manifest,
                                                  tmp_path: Path) -> None:
    engine = FakeEngine()
    first = build(output, manifest, engine, tmp_path / "work")
    (output / "bin/linux/amd64/kube-proxy").write_bytes(b"\x7fELF kube-proxy, patched")
    again = build(output, manifest, engine, tmp_path / "work")
    assert engine.builds[4:] == ["tkedistro.local/k8s/kube-proxy:v1.20.2-tke.1"]
    assert [i.reused for i in again] == [True, True, True, False]
    assert again[3].image_id != first[3].image_id


def test_inputs_change_with_base_version_and_binary(output: Path, manifest: Manifest) -> None:
    plan = recipes.plan_components(output, manifest, BASE, "linux/amd64")[0]
    other_base = DebianBase(BASE.ref, "sha256:" + "c" * 64, (), True)
    moved = recipes.plan_components(output, manifest, other_base, "linux/amd64")[0]
    assert moved.inputs_digest() != plan.inputs_digest()
    assert dataclasses.replace(plan, version="v1.20.2-tke.2").inputs_digest() != \
        plan.inputs_digest()
    assert dataclasses.replace(plan, binary_sha256="0" * 64).inputs_digest() != \
        plan.inputs_digest()
    assert recipes.plan_components(output, manifest, BASE, "linux/amd64")[0] == plan


def test_missing_binaries_are_all_named_with_the_build_to_run(
        output: Path, manifest: Manifest, tmp_path: Path) -> None:
    for name in ("kube-proxy", "kube-scheduler"):
        (output / "bin/linux/amd64" / name).unlink()
    engine = FakeEngine()
    with pytest.raises(BuildError) as caught:
        build(output, manifest, engine, tmp_path / "work")
    assert str(caught.value) == (
        "component images for 1.20 linux/amd64 need binaries that are not built: "
        f"{output}/bin/linux/amd64/kube-scheduler, {output}/bin/linux/amd64/kube-proxy")
    assert caught.value.hint == ("tkedistro build 1.20 -p linux/amd64 -c kube-apiserver "
                                 "-c kube-controller-manager -c kube-scheduler -c kube-proxy")
    assert engine.builds == []


def test_the_platform_picks_the_binaries_folder(output: Path) -> None:
    assert recipes.binary_path(output, "kube-proxy", "linux/arm64") == (
        output / "bin/linux/arm64/kube-proxy")


def test_kubeadm_etcd_and_pause_are_tagged_from_the_conformance_images() -> None:
    engine = FakeEngine()
    for name in ("etcd:3.4.13-0", "pause:3.2"):
        engine._store(f"tkedistro.local/conformance/k8s.gcr.io/{name}", {}, name)
    tagged = components.tag_kubeadm_images(engine, "registry.example/k8s")
    assert engine.tags == [
        ("tkedistro.local/conformance/k8s.gcr.io/etcd:3.4.13-0",
         "registry.example/k8s/etcd:3.4.13-0"),
        ("tkedistro.local/conformance/k8s.gcr.io/pause:3.2", "registry.example/k8s/pause:3.2")]
    assert [t.ref for t in tagged] == [new for _, new in engine.tags]


def test_kubeadm_extras_missing_are_named_and_nothing_is_tagged() -> None:
    engine = FakeEngine()
    engine._store("tkedistro.local/conformance/k8s.gcr.io/pause:3.2", {}, "")
    with pytest.raises(BuildError, match=r"need tkedistro.local/conformance/k8s.gcr.io/etcd:"
                                         r"3.4.13-0 in the local engine") as caught:
        components.tag_kubeadm_images(engine)
    assert caught.value.hint == ("make the conformance images first: "
                                 "tkedistro conformance images RELEASE")
    assert engine.tags == []


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


def test_ensure_component_images_reads_the_release_output(
        tmp_path: Path, output: Path, manifest: Manifest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Path] = []
    monkeypatch.setattr(components, "ensure_component_base",
                        lambda engine, work, platform: seen.append(work) or BASE)
    ws = Workspace(root=tmp_path, cache=tmp_path / "cache")
    made = components.ensure_component_images(ws, "1.20", manifest, FakeEngine())
    assert seen == [tmp_path / "cache/component-images"]
    assert [i.ref.split("/")[-1] for i in made] == [f"{c}:v1.20.2-tke.1" for c in FOUR]


def test_component_images_never_import_conformance() -> None:
    wrong = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() if m.startswith(
        "tkedistro.images") for t in targets if t.startswith("tkedistro.conformance"))
    assert wrong == []


def test_a_second_run_waits_for_the_first_and_then_fails_clearly(
        tmp_path: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(components, "LOCK_WAIT", 0.1)
    ws = Workspace(root=tmp_path, cache=tmp_path / "cache")
    lock = components.work_dir(ws) / ".lock"
    with exclusive_lock(lock, "held by the test"), pytest.raises(LockedError) as caught:
        components.ensure_component_images(ws, "1.20", manifest, FakeEngine())
    assert str(caught.value) == f"another tkedistro run is making component images (lock {lock})"


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


def test_a_stale_context_is_removed_without_following_its_symlinks(
        output: Path, manifest: Manifest, tmp_path: Path) -> None:
    """The context folder is emptied through the safe file layer: a symlink left in an old
    context (to a folder outside) is removed, not followed; a symlinked context is refused."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep\n")
    stale = tmp_path / "work/context/linux-amd64/kube-proxy"
    stale.mkdir(parents=True)
    (stale / "rootfs").symlink_to(outside)
    engine = FakeEngine()
    build(output, manifest, engine, tmp_path / "work")
    proxy = engine.snapshots["tkedistro.local/k8s/kube-proxy:v1.20.2-tke.1"]
    assert proxy["rootfs/usr/local/bin/kube-proxy"][2] == b"\x7fELF kube-proxy"
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]

    platform = tmp_path / "work/context/linux-amd64"
    shutil.rmtree(platform)
    platform.symlink_to(outside)
    changed = output / "bin/linux/amd64/kube-proxy"
    changed.write_bytes(b"\x7fELF kube-proxy 2")
    with pytest.raises(UnsafePathError) as err:
        build(output, manifest, engine, tmp_path / "work")
    assert err.value.exit_code == 3
    assert str(err.value).startswith(f"{platform} is a symlink; tkedistro does not follow")
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]


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
