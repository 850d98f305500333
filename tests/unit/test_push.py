"""Pushing release images (fake skopeo): where each image goes, the skopeo command lines, a
registry of the wrong shape refused before anything runs, a push that changed the image
caught, and the emulation check that foreign bases and smoke checks rely on."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from tkedistro.core.errors import ImageError
from tkedistro.core.runner import Result
from tkedistro.engine import emulation, skopeo
from tkedistro.images import push

INDEX = b'{"schemaVersion":2,"manifests":[]}'
INDEX_DIGEST = "sha256:" + hashlib.sha256(INDEX).hexdigest()
AMD, ARM = "sha256:" + "a" * 64, "sha256:" + "b" * 64
VERSION = "v1.20.2-tke.1"


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """_output/1.20 with one component's archive and images.json, as the build leaves them."""
    folder = tmp_path / "_output/1.20"
    (folder / "images").mkdir(parents=True)
    index_json = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": INDEX_DIGEST,
        "size": len(INDEX), "annotations": {"org.opencontainers.image.ref.name": VERSION}}]}
    with tarfile.open(folder / "images/kube-proxy.oci.tar", "w") as tar:
        _tar_add(tar, "./index.json", json.dumps(index_json).encode())
        _tar_add(tar, f"./blobs/sha256/{INDEX_DIGEST[7:]}", INDEX)
    entry = {"component": "kube-proxy", "ref": f"tkedistro.local/k8s/kube-proxy:{VERSION}",
             "index_digest": INDEX_DIGEST, "archive": "images/kube-proxy.oci.tar",
             "manifests": {"linux/amd64": AMD, "linux/arm64": ARM}}
    (folder / "images/images.json").write_text(json.dumps({"images": [entry]}))
    return folder


class FakeSkopeo:
    """Records every argv; ``inspect --raw`` answers ``served``, ``copy`` exits ``copy_rc``."""

    def __init__(self, served: bytes = INDEX, copy_rc: int = 0, stderr: str = "") -> None:
        self.calls: list[list[str]] = []
        self.served, self.copy_rc, self.stderr = served, copy_rc, stderr

    def __call__(self, argv: Sequence[str], **kwargs: object) -> Result:
        self.calls.append([str(a) for a in argv])
        if "inspect" in argv:
            return Result(tuple(argv), 0, self.served.decode(), "")
        return Result(tuple(argv), self.copy_rc, "", self.stderr if self.copy_rc else "")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSkopeo:
    runner = FakeSkopeo()
    monkeypatch.setattr(skopeo, "run", runner)
    monkeypatch.setattr(skopeo.shutil, "which", lambda name: f"/usr/bin/{name}")
    return runner


def test_push_copies_all_platforms_keeping_digests_and_reads_the_index_back(
        out: Path, fake: FakeSkopeo) -> None:
    [pushed] = push.push_images(out, "127.0.0.1:5000")
    dest = f"127.0.0.1:5000/tkedistro/kube-proxy:{VERSION}"
    assert fake.calls == [
        ["skopeo", "copy", "--all", "--preserve-digests", "--retry-times", "2",
         "--dest-tls-verify=false", f"oci-archive:{out}/images/kube-proxy.oci.tar",
         f"docker://{dest}"],
        ["skopeo", "inspect", "--raw", "--retry-times", "2", "--tls-verify=false",
         f"docker://{dest}"]]
    assert pushed.to_json() == {
        "component": "kube-proxy", "ref": dest, "digest": INDEX_DIGEST,
        "by_digest": f"127.0.0.1:5000/tkedistro/kube-proxy@{INDEX_DIGEST}",
        "manifests": {"linux/amd64": AMD, "linux/arm64": ARM}}


@pytest.mark.parametrize(("registry", "dest", "tls"), [
    ("registry.example.com/team/k8s", "registry.example.com/team/k8s/kube-proxy", []),
    ("registry.example.com:443", "registry.example.com:443/tkedistro/kube-proxy", []),
    ("localhost:5000", "localhost:5000/tkedistro/kube-proxy", ["--dest-tls-verify=false"]),
    ("[::1]:5000/k8s", "[::1]:5000/k8s/kube-proxy", ["--dest-tls-verify=false"]),
    ("127.0.0.2:5000", "127.0.0.2:5000/tkedistro/kube-proxy", ["--dest-tls-verify=false"]),
    ("127.example.com", "127.example.com/tkedistro/kube-proxy", []),
])
def test_where_an_image_goes_and_tls_only_off_on_loopback(
        out: Path, fake: FakeSkopeo, registry: str, dest: str, tls: list[str]) -> None:
    [pushed] = push.push_images(out, registry)
    assert pushed.ref == f"{dest}:{VERSION}"
    assert fake.calls[0][6:-2] == tls


@pytest.mark.parametrize("registry", [
    "http://127.0.0.1:5000", "127.0.0.1:5000/", "reg istry:5000", "Registry.io/K8s",
    "127.0.0.1:5000/k8s:v1", "", "-registry", "[zz]:5000", "host:port"])
def test_a_registry_of_the_wrong_shape_is_refused_before_anything_runs(
        out: Path, fake: FakeSkopeo, registry: str) -> None:
    with pytest.raises(ImageError) as caught:
        push.push_images(out, registry)
    assert caught.value.message.startswith("--push: expected a")
    assert repr(registry) in caught.value.message
    assert fake.calls == []


def test_a_push_the_registry_changed_is_an_error(out: Path, fake: FakeSkopeo) -> None:
    fake.served = INDEX + b"\n"
    with pytest.raises(ImageError, match="the push changed the image"):
        push.push_images(out, "127.0.0.1:5000")


def test_a_refused_push_names_registry_image_and_skopeos_words(
        out: Path, fake: FakeSkopeo) -> None:
    fake.copy_rc, fake.stderr = 1, "Error: writing blob: unauthorized: authentication required"
    with pytest.raises(ImageError) as caught:
        push.push_images(out, "registry.example.com/k8s")
    assert caught.value.exit_code == 23
    assert caught.value.render().splitlines()[:2] == [
        f"pushing {out}/images/kube-proxy.oci.tar failed (registry registry.example.com, "
        f"image registry.example.com/k8s/kube-proxy:{VERSION})",
        "Error: writing blob: unauthorized: authentication required"]
    assert "`skopeo login registry.example.com`" in caught.value.render()


def test_missing_skopeo_says_how_to_install_it(out: Path, fake: FakeSkopeo,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(skopeo.shutil, "which", lambda name: None)
    with pytest.raises(ImageError) as caught:
        push.push_images(out, "127.0.0.1:5000")
    assert caught.value.hint == "apt-get install skopeo" and fake.calls == []


def test_an_archive_that_changed_since_the_build_is_not_pushed(out: Path,
                                                                fake: FakeSkopeo) -> None:
    entries = push.load_images(out)
    entries[0]["index_digest"] = AMD
    with pytest.raises(ImageError, match=f"holds the image index {INDEX_DIGEST}, not {AMD}"):
        push.push_images(out, "127.0.0.1:5000", entries)
    entries[0] = {k: v for k, v in entries[0].items() if k != "manifests"}
    with pytest.raises(ImageError, match=r"images\[0\]: missing manifests"):
        push.push_images(out, "127.0.0.1:5000", entries)
    assert fake.calls == []


def test_an_archive_named_relative_to_the_images_folder_is_found(
        out: Path, fake: FakeSkopeo) -> None:
    entries = push.load_images(out)
    entries[0]["archive"] = "kube-proxy.oci.tar"
    push.push_images(out, "127.0.0.1:5000", entries)
    assert fake.calls[0][-2] == f"oci-archive:{out}/images/kube-proxy.oci.tar"
    entries[0]["archive"] = "images/none.oci.tar"
    with pytest.raises(ImageError, match=r"none.oci.tar is not a readable OCI archive"):
        push.push_images(out, "127.0.0.1:5000", entries)


def test_no_images_json_says_to_build_first(tmp_path: Path, fake: FakeSkopeo) -> None:
    with pytest.raises(ImageError, match="no images to push: .*images.json does not exist"):
        push.push_images(tmp_path, "127.0.0.1:5000")


def test_one_platform_into_the_engine(fake: FakeSkopeo) -> None:
    skopeo.copy_platform("docker://127.0.0.1:5000/tkedistro/x@" + AMD, "linux/arm/v7", "x:arm")
    skopeo.copy_platform("oci-archive:/o/x.oci.tar", "linux/arm64", "x:arm64")
    assert fake.calls == [
        ["skopeo", "--override-os", "linux", "--override-arch", "arm", "--override-variant",
         "v7", "copy", "--src-tls-verify=false", f"docker://127.0.0.1:5000/tkedistro/x@{AMD}",
         "docker-daemon:x:arm"],
        ["skopeo", "--override-os", "linux", "--override-arch", "arm64", "copy",
         "oci-archive:/o/x.oci.tar", "docker-daemon:x:arm64"]]


def _binfmt(tmp_path: Path, entry: str | None, status: str = "enabled") -> Path:
    folder = tmp_path / "binfmt_misc"
    folder.mkdir()
    (folder / "status").write_text(status + "\n")
    if entry is not None:
        (folder / "qemu-aarch64").write_text(entry)
    return folder


@pytest.mark.parametrize(("entry", "status", "expected"), [
    ("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n", "enabled",
     (True, "qemu-aarch64 via binfmt_misc (F)")),
    ("enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: \n", "enabled",
     (False, "it is registered without F (flags: none)")),
    ("disabled\nflags: F\n", "enabled", (False, "it is registered but disabled")),
    (None, "enabled", (False, "it is not registered")),
    ("enabled\nflags: F\n", "disabled", (False, "binfmt_misc is disabled")),
])
def test_can_run_arm64_on_amd64_only_with_an_enabled_F_entry(
        tmp_path: Path, entry: str | None, status: str, expected: tuple[bool, str]) -> None:
    able, why = emulation.can_run("linux/arm64", binfmt_dir=_binfmt(tmp_path, entry, status),
                                  machine="x86_64")
    assert able is expected[0] and expected[1] in why
    if not able:
        assert str(tmp_path / "binfmt_misc/qemu-aarch64") in why
        assert "apt-get install qemu-user-static binfmt-support" in why
        assert "`update-binfmts --enable qemu-aarch64`" in why


def test_can_run_the_hosts_own_platform_and_says_when_binfmt_is_not_mounted(
        tmp_path: Path) -> None:
    assert emulation.can_run("linux/amd64", machine="x86_64") == (True, "native")
    assert emulation.can_run("linux/arm64", machine="aarch64") == (True, "native")
    able, why = emulation.can_run("linux/arm64", binfmt_dir=tmp_path / "none", machine="x86_64")
    assert not able and f"mount -t binfmt_misc binfmt_misc {tmp_path / 'none'}" in why
    with pytest.raises(ValueError, match="expected a platform like linux/amd64"):
        emulation.can_run("arm64")
