"""The air-gapped kubeadm bundle: the names kubeadm v1.20 asks for (checked against what the
real kubeadm printed, ``tests/unit/data/kubeadm-images-*.txt``), the docker archives joined
into one reproducibly, skopeo's command line, and the finishing step with skopeo and the
support images faked (the real ones are the docker and real_k8s tiers')."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any, cast

import pytest

from tkedistro.artifacts import kubeadmbundle
from tkedistro.artifacts.context import FinishRequest, ReleaseContext
from tkedistro.core.errors import ImageError
from tkedistro.core.workspace import Workspace
from tkedistro.engine import skopeo
from tkedistro.engine.engines import Engines
from tkedistro.images import kubeadm
from tkedistro.images.dockerbundle import archive_names, join_archives

DATA = Path(__file__).parent / "data"
EPOCH = 1611000000


def printed(name: str) -> list[str]:
    lines = (DATA / name).read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize("version", ["v1.20.2-tke.1", "v1.20.2+tke.1"])
def test_the_names_are_the_ones_the_real_kubeadm_printed(version: str) -> None:
    refs = [image.ref for image in kubeadm.kubeadm_images(version)]
    assert refs == printed(f"kubeadm-images-{version}.txt")


def test_a_build_metadata_version_gets_kubeadms_tag_and_a_repository_is_kept() -> None:
    assert kubeadm.image_tag("v1.20.2+tke.1") == "v1.20.2_tke.1"
    images = kubeadm.kubeadm_images("v1.20.2-tke.1", "example.org/k")
    assert [i.ref for i in images][-3:] == ["example.org/k/pause:3.2",
                                            "example.org/k/etcd:3.4.13-0",
                                            "example.org/k/coredns:1.7.0"]
    assert kubeadm.arch_ref("kube-proxy", "v1.20.2+x", "arm64") == \
        "k8s.gcr.io/kube-proxy-arm64:v1.20.2_x"


def test_an_unknown_minor_is_named() -> None:
    assert not kubeadm.supports("v1.21.0")
    with pytest.raises(ValueError, match="Kubernetes 1.21 is not known .known: 1.20"):
        kubeadm.kubeadm_images("v1.21.0")


def docker_archive(path: Path, images: dict[str, list[str]]) -> Path:
    """A small ``docker save`` archive: one config and one layer per image (by content)."""
    members: dict[str, bytes] = {}
    manifest, repositories = [], {}
    for content, tags in images.items():
        layer = content.encode() * 10
        layer_name = hashlib.sha256(layer).hexdigest() + ".tar"
        config = json.dumps({"content": content}).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        members.update({layer_name: layer, config_name: config})
        manifest.append({"Config": config_name, "RepoTags": tags, "Layers": [layer_name]})
        for tag in tags:
            repo, _, version = tag.rpartition(":")
            repositories.setdefault(repo, {})[version] = config_name[:64]
    members["manifest.json"] = json.dumps(manifest).encode()
    members["repositories"] = json.dumps(repositories).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_joined_archives_hold_every_image_and_the_same_parts_give_the_same_bytes(
        tmp_path: Path) -> None:
    one = docker_archive(tmp_path / "one.tar", {"a": ["x/a:1", "x/a-amd64:1"], "b": ["x/b:2"]})
    two = docker_archive(tmp_path / "two.tar", {"a": ["x/a:1"], "c": ["x/c:3"]})
    join_archives([one, docker_archive(tmp_path / "c.tar", {"c": ["x/c:3"]})],
                  tmp_path / "first.tar", EPOCH)
    assert archive_names(tmp_path / "first.tar") == ["x/a:1", "x/a-amd64:1", "x/b:2", "x/c:3"]
    join_archives([one, docker_archive(tmp_path / "c.tar", {"c": ["x/c:3"]})],
                  tmp_path / "again.tar", EPOCH)
    assert (tmp_path / "again.tar").read_bytes() == (tmp_path / "first.tar").read_bytes()
    with tarfile.open(tmp_path / "first.tar") as tar:
        assert {(m.uid, m.gid, m.mtime, m.mode) for m in tar.getmembers()} == \
            {(0, 0, EPOCH, 0o444)}
        repositories = json.load(cast(Any, tar.extractfile("repositories")))
    assert sorted(repositories) == ["x/a", "x/a-amd64", "x/b", "x/c"]
    with pytest.raises(ImageError, match="two images are named x/a:1 in both.tar"):
        join_archives([one, two], tmp_path / "both.tar", EPOCH)


def test_only_the_kept_names_stay_and_an_image_without_one_is_refused(tmp_path: Path) -> None:
    one = docker_archive(tmp_path / "one.tar", {"a": ["x/a:1", "x/a-amd64:1"], "b": ["x/b:2"]})
    join_archives([one], tmp_path / "kept.tar", EPOCH, keep={"x/a:1", "x/b:2", "x/z:9"})
    assert archive_names(tmp_path / "kept.tar") == ["x/a:1", "x/b:2"]
    with tarfile.open(tmp_path / "kept.tar") as tar:
        assert sorted(json.load(cast(Any, tar.extractfile("repositories")))) == ["x/a", "x/b"]
    with pytest.raises(ImageError, match="has none of the names x/a:1"):
        join_archives([one], tmp_path / "none.tar", EPOCH, keep={"x/a:1"})
    assert not (tmp_path / "none.tar").exists()


def test_a_file_that_is_not_a_docker_archive_is_named(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "plain.tar", "w"):
        pass
    with pytest.raises(ImageError, match="plain.tar: not a docker archive .no readable "
                                         "manifest.json"):
        join_archives([tmp_path / "plain.tar"], tmp_path / "out.tar", EPOCH)


def test_skopeo_writes_one_platform_under_every_name(tmp_path: Path) -> None:
    argv = skopeo.docker_archive_argv("oci-archive:/o/kube-proxy.oci.tar", "linux/arm64",
                                      tmp_path / "p.tar", ["k/kube-proxy:v1", "k/p-arm64:v1"])
    assert argv == ["skopeo", "--override-os", "linux", "--override-arch", "arm64", "copy",
                    "oci-archive:/o/kube-proxy.oci.tar", "--quiet",
                    "--additional-tag", "k/p-arm64:v1", f"docker-archive:{tmp_path}/p.tar:"
                    "k/kube-proxy:v1"]
    with pytest.raises(ImageError, match="has a ':'"):
        skopeo.docker_archive_argv("docker-daemon:e:1", "linux/amd64", Path("/a:b"), ["x:1"])


SERVER = ("kube-apiserver", "kube-controller-manager", "kube-proxy", "kube-scheduler")


def context(**changes: Any) -> ReleaseContext:
    values: dict[str, Any] = dict(
        release="1.20", distro_version="v1.20.2-tke.1", upstream_url="https://example.invalid",
        tag="v1.20.2", upstream_commit="f" * 40, tree_commit="e" * 40, tree=Path("/nowhere"),
        source_date_epoch=EPOCH, platforms=("linux/amd64", "linux/arm64"),
        components=(*SERVER, "kubeadm", "kubelet", "kubectl"),
        image_components=(*SERVER, "pause"), patches=(), builder_image="b",
        builder_image_id="sha256:00", go_version="1.15.15", tool_version="0")
    return ReleaseContext(**{**values, **changes})


def test_a_bundle_is_made_only_for_a_release_that_ships_what_kubeadm_installs() -> None:
    assert kubeadmbundle.wanted(context())
    assert not kubeadmbundle.wanted(context(image_components=("pause",)))
    assert not kubeadmbundle.wanted(context(components=SERVER))
    assert not kubeadmbundle.wanted(context(distro_version="v1.21.0"))


def fake_copy(source: str, platform: str, dest: Path, names: list[str]) -> None:
    docker_archive(dest, {f"{source} {platform}": list(names)})


def test_each_platform_gets_kubeadms_names_and_the_server_tarball_its_archives(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(skopeo, "copy_to_docker_archive", fake_copy)
    monkeypatch.setattr(kubeadmbundle, "_support_images", lambda request, engines: {
        "etcd": "local/etcd:1", "coredns": "local/dns:1"})
    monkeypatch.setattr(kubeadmbundle, "host_platform", lambda: "linux/amd64")
    out = tmp_path / "out"
    ws = Workspace(tmp_path / "root", tmp_path / "cache")
    request = FinishRequest(ws, out, cast(Any, None), cast(Any, None), "1.15.15", [], None)
    with kubeadmbundle.kubeadm_bundle(request, context(), cast(Engines, None)) as bundle:
        assert bundle.files == ["bundle/bundle.json", "bundle/kubeadm-images-linux-amd64.tar",
                                "bundle/kubeadm-images-linux-arm64.tar"]
        assert sorted(bundle.server_images) == [(c, p) for c in SERVER
                                                for p in ("linux/amd64", "linux/arm64")]
        server = bundle.server_images[("kube-proxy", "linux/arm64")]
        assert archive_names(server) == ["k8s.gcr.io/kube-proxy:v1.20.2-tke.1",
                                         "k8s.gcr.io/kube-proxy-arm64:v1.20.2-tke.1"]
    assert not server.exists()  # the scratch archives go with the block
    listed = printed("kubeadm-images-v1.20.2-tke.1.txt")
    assert sorted(archive_names(out / "bundle/kubeadm-images-linux-amd64.tar")) == sorted(listed)
    arm = sorted(archive_names(out / "bundle/kubeadm-images-linux-arm64.tar"))
    assert arm == sorted(set(listed) - {"k8s.gcr.io/etcd:3.4.13-0", "k8s.gcr.io/coredns:1.7.0"})
    recorded = json.loads((out / "bundle/bundle.json").read_text())["bundles"]
    assert recorded["bundle/kubeadm-images-linux-arm64.tar"]["missing"] == [
        "k8s.gcr.io/coredns:1.7.0", "k8s.gcr.io/etcd:3.4.13-0"]
    assert "not CoreDNS" in recorded["bundle/kubeadm-images-linux-amd64.tar"]["dns"]


def test_no_images_no_bundle(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "root", tmp_path / "cache")
    request = FinishRequest(ws, tmp_path, cast(Any, None), cast(Any, None), "1", [], None)
    with kubeadmbundle.kubeadm_bundle(request, context(), cast(Engines, None),
                                      images=False) as bundle:
        assert bundle == kubeadmbundle.Bundle()
    assert not (tmp_path / "bundle").exists()


def test_what_a_bundle_lacks_is_read_from_the_archive_and_said(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(skopeo, "copy_to_docker_archive", fake_copy)
    monkeypatch.setattr(kubeadmbundle, "_support_images", lambda request, engines: {
        "etcd": "local/etcd:1"})  # no DNS image made
    monkeypatch.setattr(kubeadmbundle, "host_platform", lambda: "linux/amd64")
    ws = Workspace(tmp_path / "root", tmp_path / "cache")
    request = FinishRequest(ws, tmp_path / "out", cast(Any, None), cast(Any, None), "1", [], None)
    with kubeadmbundle.kubeadm_bundle(request, context(platforms=("linux/amd64",)),
                                      cast(Engines, None)):
        pass
    entry = json.loads((tmp_path / "out/bundle/bundle.json").read_text())["bundles"][
        "bundle/kubeadm-images-linux-amd64.tar"]
    assert entry["missing"] == ["k8s.gcr.io/coredns:1.7.0"]
    assert "k8s.gcr.io/etcd:3.4.13-0" in entry["images"]
    assert "bundle/kubeadm-images-linux-amd64.tar: without k8s.gcr.io/coredns:1.7.0" in \
        capsys.readouterr().err
