"""The release's OCI images without buildah: what each image is made of, when a published
archive is reused, the archive packing, and how ``engine/buildah.py`` calls buildah.

``FakeBuilder`` writes small but valid OCI layouts, so the index reading and the packing run
on real files; the docker tier (``tests/integration/test_release_images_docker.py``) proves
the same with buildah and skopeo.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pytest

from tkedistro.artifacts.context import ReleaseContext
from tkedistro.core.errors import ImageError, UnsafePathError
from tkedistro.engine.buildah import Buildah
from tkedistro.engine.protocols import ImageConfig
from tkedistro.images.ocilayout import pack_layout, read_index
from tkedistro.images.shipped import make_release_images, read_images_json

PLATFORMS = ("linux/amd64", "linux/arm64")
COMPONENTS = ("pause", "kube-proxy", "kube-apiserver")
EPOCH = 1611000000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs/sha256" / digest).write_bytes(data)
    return "sha256:" + digest, len(data)


def _write_layout(layout: Path, media: str, data: bytes, tag: str) -> None:
    digest, size = _blob(layout, data)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entry = {"mediaType": media, "digest": digest, "size": size,
             "annotations": {"org.opencontainers.image.ref.name": tag}}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))


class FakeBuilder:
    """An ``OciBuilder`` that writes real (tiny) OCI layouts and records every call."""

    def __init__(self, version: str = "1.28.2", ids: dict[str, str] | None = None,
                 labels: dict[str, dict[str, str]] | None = None) -> None:
        self._version = version
        self.ids = ids or {}  # source -> the id pull gives (default ``id-of-<source>``)
        self.labels = labels or {}  # image id -> its labels
        self.calls: list[tuple[object, ...]] = []
        self.containers: dict[str, dict[str, object]] = {}
        self.lists: dict[str, list[Path]] = {}
        self.fail_push = False

    def version(self) -> str:
        return self._version

    def pull(self, source: str) -> str:
        self.calls.append(("pull", source))
        return "scratch" if source == "scratch" else self.ids.get(source, "id-of-" + source)

    def image_labels(self, image: str) -> dict[str, str]:
        self.calls.append(("labels", image))
        return dict(self.labels.get(image, {}))

    def from_image(self, image: str) -> str:
        name = f"c{len(self.containers)}"
        self.containers[name] = {"image": image}
        self.calls.append(("from", image))
        return name

    def copy(self, container: str, source: Path, dest: PurePosixPath) -> None:
        files = sorted(p for p in source.rglob("*") if p.is_file())
        self.containers[container]["files"] = {
            str(p.relative_to(source)): p.read_bytes() for p in files}
        self.calls.append(("copy", container, str(dest)))

    def config(self, container: str, config: ImageConfig) -> None:
        self.containers[container]["config"] = config
        self.calls.append(("config", container))

    def commit(self, container: str, layout: Path, tag: str, timestamp: int) -> None:
        state = self.containers[container]
        config: ImageConfig = state["config"]  # type: ignore[assignment]
        layout.mkdir(parents=True)
        cfg = json.dumps({"os": config.os, "architecture": config.arch, "created": timestamp,
                          "labels": {**self.labels.get(str(state["image"]), {}),
                                     **config.labels}, "base": state["image"],
                          "entrypoint": list(config.entrypoint), "user": config.user},
                         sort_keys=True).encode()
        layer = json.dumps({k: v.hex() for k, v in state["files"].items()}).encode()  # type: ignore[attr-defined]
        cdigest, csize = _blob(layout, cfg)
        ldigest, lsize = _blob(layout, layer)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "annotations": dict(config.annotations),
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": cdigest, "size": csize},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                           "digest": ldigest, "size": lsize}]}).encode()
        _write_layout(layout, OCI_MANIFEST, manifest, tag)
        self.calls.append(("commit", container, tag, timestamp))

    def remove(self, container: str) -> None:
        self.calls.append(("rm", container))

    def manifest_create(self, name: str) -> None:
        self.lists[name] = []

    def manifest_add(self, name: str, layout: Path, tag: str) -> None:
        self.lists[name].append(layout)

    def manifest_push_all(self, name: str, layout: Path, tag: str) -> None:
        if self.fail_push:
            raise ImageError("buildah manifest failed (exit 125)")
        entries = []
        for source in self.lists[name]:
            shutil.copytree(source / "blobs", layout / "blobs", dirs_exist_ok=True)
            entry = json.loads((source / "index.json").read_text())["manifests"][0]
            manifest = json.loads((source / "blobs/sha256" / entry["digest"][7:]).read_text())
            config = json.loads((source / "blobs/sha256" /
                                 manifest["config"]["digest"][7:]).read_text())
            entries.append({"mediaType": OCI_MANIFEST, "digest": entry["digest"],
                            "size": entry["size"], "platform": {
                                "os": config["os"], "architecture": config["architecture"]}})
        (layout / "blobs").mkdir(parents=True, exist_ok=True)
        _write_layout(layout, OCI_INDEX, json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode(), tag)

    def manifest_remove(self, name: str) -> None:
        del self.lists[name]


def _ctx(tmp: Path, **changes: object) -> ReleaseContext:
    ctx = ReleaseContext(
        release="1.20", distro_version="v1.20.2-tke.1", upstream_url="https://x.invalid/k8s",
        tag="v1.20.2", upstream_commit="a" * 40, tree_commit="b" * 40, tree=tmp,
        source_date_epoch=EPOCH, platforms=PLATFORMS, components=(),
        image_components=COMPONENTS, patches=(), builder_image="builder",
        builder_image_id="sha256:" + "0" * 64, go_version="1.15.15", tool_version="0")
    return replace(ctx, **changes)  # type: ignore[arg-type]


def _out(tmp: Path, name: str = "out") -> Path:
    out = tmp / name
    for platform in PLATFORMS:
        (out / "bin" / platform).mkdir(parents=True)
        for component in COMPONENTS:
            (out / "bin" / platform / component).write_bytes(f"{component} {platform}".encode())
    return out


BASES = {p: f"docker-daemon:base:{p[6:]}" for p in PLATFORMS}


def _make(tmp: Path, out: Path, builder: FakeBuilder | None = None,
          previous: Path | None = None, **ctx: object) -> tuple[list, FakeBuilder]:  # type: ignore[type-arg]
    builder = builder or FakeBuilder()
    made = make_release_images(out, _ctx(tmp, **ctx), tmp / "work", builder, BASES, previous)
    return made, builder


def test_each_component_gets_one_archive_with_both_platforms(tmp_path: Path) -> None:
    made, builder = _make(tmp_path, _out(tmp_path))
    assert [i.component for i in made] == ["kube-apiserver", "kube-proxy", "pause"]
    for image in made:
        assert image.ref == f"tkedistro.local/k8s/{image.component}:v1.20.2-tke.1"
        assert sorted(image.manifests) == list(PLATFORMS) and not image.reused
        archive = tmp_path / "out" / image.archive
        assert image.size == archive.stat().st_size
        assert image.sha256 == "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    assert read_images_json(tmp_path / "out") == made
    assert builder.lists == {} and not (tmp_path / "work" / "pause").exists()


def test_pause_is_on_scratch_and_servers_on_their_platforms_base(tmp_path: Path) -> None:
    _, builder = _make(tmp_path, _out(tmp_path))
    froms = [c[1] for c in builder.calls if c[0] == "from"]
    assert froms == ["id-of-docker-daemon:base:amd64", "id-of-docker-daemon:base:arm64"] * 2 + [
        "scratch", "scratch"]
    configs = [s["config"] for s in builder.containers.values()]
    pause, proxy = configs[-1], configs[2]
    assert isinstance(pause, ImageConfig) and isinstance(proxy, ImageConfig)
    assert (pause.entrypoint, pause.user, pause.arch) == (("/pause",), "65535:65535", "arm64")
    assert (proxy.entrypoint, proxy.user, proxy.arch) == ((), "", "amd64")
    assert list(builder.containers["c4"]["files"]) == ["pause"]  # type: ignore[call-overload]
    assert list(builder.containers["c2"]["files"]) == ["usr/local/bin/kube-proxy"]  # type: ignore[call-overload]
    assert proxy.labels["org.opencontainers.image.created"] == "2021-01-18T20:00:00Z"
    assert proxy.labels["org.opencontainers.image.revision"] == "a" * 40
    assert proxy.labels["org.tkedistro.base"] == "id-of-docker-daemon:base:amd64"
    assert {c[3] for c in builder.calls if c[0] == "commit"} == {EPOCH}
    assert sorted(c[1] for c in builder.calls if c[0] == "rm") == sorted(builder.containers)


def test_same_inputs_in_other_folders_give_the_same_archive_bytes(tmp_path: Path) -> None:
    first, _ = _make(tmp_path, _out(tmp_path, "a"))
    shutil.rmtree(tmp_path / "work")
    second, _ = _make(tmp_path, _out(tmp_path, "b"))
    assert first == second
    assert (tmp_path / "a/images/images.json").read_bytes() == (
        tmp_path / "b/images/images.json").read_bytes()


def test_published_archives_with_the_same_inputs_are_linked_not_rebuilt(tmp_path: Path) -> None:
    first, _ = _make(tmp_path, _out(tmp_path, "published"))
    again, builder = _make(tmp_path, _out(tmp_path, "next"), previous=tmp_path / "published")
    assert [i.reused for i in again] == [True] * 3
    assert [(i.index_digest, i.sha256) for i in again] == [(i.index_digest, i.sha256)
                                                           for i in first]
    assert not [c for c in builder.calls if c[0] == "from"]
    assert (tmp_path / "next/images/pause.oci.tar").samefile(
        tmp_path / "published/images/pause.oci.tar")


def test_a_changed_binary_or_a_damaged_archive_rebuilds_only_that_component(
        tmp_path: Path) -> None:
    _make(tmp_path, _out(tmp_path, "published"))
    with (tmp_path / "published/images/pause.oci.tar").open("r+b") as handle:
        handle.write(b"X")
    out = _out(tmp_path, "next")
    (out / "bin/linux/arm64/kube-proxy").write_bytes(b"patched")
    again, _ = _make(tmp_path, out, previous=tmp_path / "published")
    assert {i.component: i.reused for i in again} == {
        "kube-apiserver": True, "kube-proxy": False, "pause": False}


@pytest.mark.parametrize("change", [{"source_date_epoch": EPOCH + 1},
                                    {"distro_version": "v1.20.2-tke.2"},
                                    {"upstream_commit": "c" * 40}])
def test_other_inputs_rebuild_everything(tmp_path: Path, change: dict[str, object]) -> None:
    _make(tmp_path, _out(tmp_path, "published"))
    again, _ = _make(tmp_path, _out(tmp_path, "next"), previous=tmp_path / "published",
                     **change)
    assert [i.reused for i in again] == [False] * 3


def test_another_builder_version_rebuilds(tmp_path: Path) -> None:
    _make(tmp_path, _out(tmp_path, "published"))
    again, _ = _make(tmp_path, _out(tmp_path, "next"), FakeBuilder("1.29.0"),
                     previous=tmp_path / "published")
    assert [i.reused for i in again] == [False] * 3


def test_missing_binaries_are_all_named_before_anything_is_built(tmp_path: Path) -> None:
    out = _out(tmp_path)
    (out / "bin/linux/arm64/pause").unlink()
    (out / "bin/linux/amd64/kube-proxy").unlink()
    with pytest.raises(ImageError) as caught:
        _make(tmp_path, out)
    assert caught.value.exit_code == 23
    assert "bin/linux/amd64/kube-proxy" in caught.value.message
    assert "bin/linux/arm64/pause" in caught.value.message


def test_a_platform_without_a_base_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no component base given for linux/arm64"):
        make_release_images(_out(tmp_path), _ctx(tmp_path), tmp_path / "work", FakeBuilder(),
                            {"linux/amd64": "scratch"})


def test_a_failed_push_still_removes_the_manifest_list(tmp_path: Path) -> None:
    builder = FakeBuilder()
    builder.fail_push = True
    with pytest.raises(ImageError):
        _make(tmp_path, _out(tmp_path), builder)
    assert builder.lists == {}
    assert sorted(c[1] for c in builder.calls if c[0] == "rm") == sorted(builder.containers)


def _layout(folder: Path, mode: int, mtime: int) -> Path:
    _write_layout(folder, OCI_INDEX, json.dumps({"manifests": [
        {"mediaType": OCI_MANIFEST, "digest": _blob(folder, json.dumps(
            {"layers": [{"mediaType": "x", "digest": _blob(folder, b"layer")[0]}]}).encode())[0],
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode(), "v1")
    _blob(folder, b"left over, unreachable")
    for path in folder.rglob("*"):
        os.chmod(path, mode if path.is_file() else 0o700)
        os.utime(path, (mtime, mtime))
    return folder


def test_packing_is_byte_stable_sorted_owned_by_root_and_leaves_out_unreachable_blobs(
        tmp_path: Path) -> None:
    pack_layout(_layout(tmp_path / "a", 0o600, 1), tmp_path / "a.tar", EPOCH)
    pack_layout(_layout(tmp_path / "b", 0o644, 2_000_000_000), tmp_path / "b.tar", EPOCH)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) and names[:2] == ["blobs", "blobs/sha256"]
    assert names[-2:] == ["index.json", "oci-layout"] and len(names) == 7  # 3 blobs + 2 dirs
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime, m.pax_headers == {}) for m in members} == {
        (0, 0, "", "", EPOCH, True)}
    assert {m.mode for m in members if m.isfile()} == {0o644}
    assert read_index(tmp_path / "a").manifests["linux/amd64"].startswith("sha256:")


def _fake_buildah(tmp: Path, script: str) -> Path:
    path = tmp / "buildah"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


def test_buildah_keeps_its_storage_in_the_given_folder(tmp_path: Path) -> None:
    log = tmp_path / "argv"
    fake = _fake_buildah(tmp_path, f'echo "$@" >> {log}\necho \'{{"version": "1.28.2"}}\'\n')
    builder = Buildah(tmp_path / "cache/oci", str(fake))
    assert builder.version() == "1.28.2"
    builder.commit("c1", tmp_path / "layout", "linux-amd64", EPOCH)
    root = tmp_path / "cache/oci"
    prefix = f"--root {root}/root --runroot {root}/run --storage-driver vfs"
    assert log.read_text().splitlines() == [
        f"{prefix} version --json",
        f"{prefix} commit --quiet --timestamp {EPOCH} --format oci c1 "
        f"oci:{tmp_path}/layout:linux-amd64"]


def test_a_missing_buildah_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as caught:
        Buildah(tmp_path, str(tmp_path / "nowhere/buildah")).version()
    assert caught.value.exit_code == 23
    assert caught.value.message.startswith(f"{tmp_path}/nowhere/buildah not found")
    assert caught.value.hint == "install buildah (Debian/Ubuntu: apt-get install buildah)"


def test_a_failing_buildah_command_is_named_with_its_output(tmp_path: Path) -> None:
    fake = _fake_buildah(tmp_path, 'echo "no such image" >&2\nexit 125\n')
    with pytest.raises(ImageError) as caught:
        Buildah(tmp_path, str(fake)).from_image("sha256:abc")
    assert caught.value.message.startswith("buildah from failed (exit 125): ")
    assert caught.value.details == "no such image"


def test_only_build_buildah_names_the_buildah_command() -> None:
    import ast

    package = Path(__file__).resolve().parents[2] / "tkedistro"
    naming = sorted(str(path.relative_to(package)) for path in package.rglob("*.py")
                    if any(isinstance(node, ast.Constant) and node.value == "buildah"
                           for node in ast.walk(ast.parse(path.read_text()))))
    # besides the module that runs it: the one list of host packages names the Debian package
    assert naming == ["engine/buildah.py", "setup/packages.py"]


def _victim(tmp: Path) -> Path:
    victim = tmp / "victim"
    victim.write_text("keep\n")
    return victim


@pytest.mark.parametrize("reuse", [False, True], ids=["made", "reused"])
def test_a_symlink_at_the_archive_path_is_refused_and_not_written_through(
        tmp_path: Path, reuse: bool) -> None:
    """The OCI archive is streamed into a temporary file and renamed (or hard-linked from
    the published output) into place: a symlink planted at
    ``<out>/images/<component>.oci.tar`` is refused (exit 3, naming it), the file it points
    at is left as it was, and no temporary file is left."""
    victim = _victim(tmp_path)
    previous = None
    if reuse:
        previous = tmp_path / "published"
        _make(tmp_path, _out(tmp_path, "published"))
    out = _out(tmp_path)
    (out / "images").mkdir()
    link = out / "images/kube-apiserver.oci.tar"
    link.symlink_to(victim)
    with pytest.raises(UnsafePathError) as err:
        _make(tmp_path, out, previous=previous)
    assert err.value.exit_code == 3
    assert str(err.value).startswith(f"{link} is a symlink; tkedistro does not follow")
    assert victim.read_text() == "keep\n"
    assert os.listdir(out / "images") == ["kube-apiserver.oci.tar"]


def test_a_symlinked_blob_in_the_layout_is_refused(tmp_path: Path) -> None:
    layout = _layout(tmp_path / "layout", 0o644, 1)
    secret = _victim(tmp_path)
    blob = next(p for p in (layout / "blobs/sha256").iterdir()
                if p.read_bytes() == b"layer")
    blob.unlink()
    blob.symlink_to(secret)
    with pytest.raises(UnsafePathError) as err:
        pack_layout(layout, tmp_path / "a.tar", EPOCH)
    assert err.value.exit_code == 3
    assert str(err.value).startswith(f"{blob} is a symlink; tkedistro does not follow")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layout", "victim"]  # no temp left


def test_a_symlinked_work_folder_is_refused_and_what_it_points_at_is_kept(
        tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep\n")
    (tmp_path / "work").mkdir()
    (tmp_path / "work/kube-apiserver").symlink_to(outside)
    with pytest.raises(UnsafePathError) as err:
        _make(tmp_path, _out(tmp_path))
    assert err.value.exit_code == 3
    assert str(err.value).startswith(f"{tmp_path / 'work/kube-apiserver'} is a symlink")
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]


def test_the_published_image_list_is_not_read_through_a_symlink(tmp_path: Path) -> None:
    _make(tmp_path, _out(tmp_path, "published"))
    listing = tmp_path / "published/images/images.json"
    elsewhere = tmp_path / "elsewhere.json"
    listing.rename(elsewhere)
    listing.symlink_to(elsewhere)
    with pytest.raises(UnsafePathError) as err:
        read_images_json(tmp_path / "published")
    assert err.value.exit_code == 3 and str(err.value).startswith(f"{listing} is a symlink")
