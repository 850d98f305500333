"""Release tarballs and checksums from made-up binaries and a tiny git tree: upstream's layout
(the exact members ``tar -tzf`` lists), the same bytes for the same inputs, owner/modes/mtimes,
the system ``tar`` and coreutils ``sha256sum -c``/``sha512sum -c`` on what is written."""

from __future__ import annotations

import gzip
import io
import os
import re
import subprocess
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from tests.helpers.gitrepo import K8S_LIKE_FILES, make_upstream
from tkedistro.artifacts.checksums import write_checksums
from tkedistro.artifacts.context import ReleaseContext
from tkedistro.artifacts.tarballs import Entry, write_tarball, write_tarballs
from tkedistro.build import output
from tkedistro.core.errors import BuildError, ImageError, UnsafePathError

EPOCH = 1610539200  # the tiny tree's commit time (2021-01-13T12:00:00Z)
SEVEN = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet",
         "kubectl", "kubeadm")
SERVER_IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
TREE_FILES = {**K8S_LIKE_FILES, "LICENSES/LICENSE": "Apache License 2.0\n",
              "LICENSES/vendor/github.com/foo/bar/LICENSE": "MIT\n"}
LICENSES = ["kubernetes/LICENSES/", "kubernetes/LICENSES/LICENSE", "kubernetes/LICENSES/vendor/",
            "kubernetes/LICENSES/vendor/github.com/", "kubernetes/LICENSES/vendor/github.com/foo/",
            "kubernetes/LICENSES/vendor/github.com/foo/bar/",
            "kubernetes/LICENSES/vendor/github.com/foo/bar/LICENSE"]
SERVER = ["kubernetes/", *LICENSES, "kubernetes/addons/", "kubernetes/kubernetes-src.tar.gz",
          "kubernetes/server/", "kubernetes/server/bin/",
          "kubernetes/server/bin/kube-apiserver", "kubernetes/server/bin/kube-apiserver.docker_tag",
          "kubernetes/server/bin/kube-apiserver.tar",
          "kubernetes/server/bin/kube-controller-manager",
          "kubernetes/server/bin/kube-controller-manager.docker_tag",
          "kubernetes/server/bin/kube-controller-manager.tar",
          "kubernetes/server/bin/kube-proxy", "kubernetes/server/bin/kube-proxy.docker_tag",
          "kubernetes/server/bin/kube-proxy.tar",
          "kubernetes/server/bin/kube-scheduler", "kubernetes/server/bin/kube-scheduler.docker_tag",
          "kubernetes/server/bin/kube-scheduler.tar",
          "kubernetes/server/bin/kubeadm", "kubernetes/server/bin/kubectl",
          "kubernetes/server/bin/kubelet"]
NODE = ["kubernetes/", *LICENSES, "kubernetes/kubernetes-src.tar.gz", "kubernetes/node/",
        "kubernetes/node/bin/", "kubernetes/node/bin/kube-proxy", "kubernetes/node/bin/kubeadm",
        "kubernetes/node/bin/kubectl", "kubernetes/node/bin/kubelet"]
CLIENT = ["kubernetes/", "kubernetes/client/", "kubernetes/client/bin/",
          "kubernetes/client/bin/kubectl"]
TARBALLS = ["release/kubernetes-client-linux-amd64.tar.gz",
            "release/kubernetes-node-linux-amd64.tar.gz",
            "release/kubernetes-server-linux-amd64.tar.gz", "release/kubernetes-src.tar.gz"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    up = make_upstream(tmp_path_factory.mktemp("tree"), tags={"v1.20.2": TREE_FILES})
    return up.work, up.tags["v1.20.2"]


def context(tree: tuple[Path, str], *, epoch: int = EPOCH, components: tuple[str, ...] = SEVEN,
            platforms: tuple[str, ...] = ("linux/amd64",),
            version: str = "v1.20.2-tke.1") -> ReleaseContext:
    return ReleaseContext(
        release="1.20", distro_version=version, upstream_url="https://example.invalid/k8s.git",
        tag="v1.20.2", upstream_commit=tree[1], tree_commit=tree[1], tree=tree[0],
        source_date_epoch=epoch, platforms=platforms, components=components,
        image_components=SERVER_IMAGES, patches=(), builder_image="builder:1",
        builder_image_id="sha256:00", go_version="1.15.15", tool_version="0.1.0")


def make_output(root: Path, platforms: tuple[str, ...] = ("linux/amd64",),
                components: tuple[str, ...] = SEVEN) -> Path:
    """``root/bin/<platform>/<component>``: a few KB each, different per file."""
    for platform in platforms:
        for component in components:
            path = root / "bin" / platform / component
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"#!ELF {component} {platform}\n".encode() * 200)
            path.chmod(0o755)
    return root


def image_tars(root: Path, platform: str = "linux/amd64") -> dict[tuple[str, str], Path]:
    tars = {}
    for component in SERVER_IMAGES:
        path = root / "images" / platform / f"{component}.tar"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"docker archive of {component}\n".encode() * 50)
        tars[(component, platform)] = path
    return tars


def listing(path: Path) -> list[str]:
    """What the system ``tar -tzf`` lists, in the archive's order."""
    return subprocess.run(["tar", "-tzf", str(path)], capture_output=True, text=True,
                          check=True).stdout.splitlines()


def test_each_tarball_has_upstreams_layout(tree: tuple[Path, str], tmp_path: Path) -> None:
    out = make_output(tmp_path / "out")
    written = write_tarballs(out, context(tree), image_tars(tmp_path))
    assert written == TARBALLS
    assert listing(out / TARBALLS[2]) == SERVER
    assert listing(out / TARBALLS[1]) == NODE
    assert listing(out / TARBALLS[0]) == CLIENT
    assert sorted(p.name for p in (out / "release").iterdir()) == [t[8:] for t in TARBALLS]


def test_the_src_tarball_is_git_archive_of_the_tree_commit(tree: tuple[Path, str],
                                                           tmp_path: Path) -> None:
    out = make_output(tmp_path / "out")
    write_tarballs(out, context(tree))
    src = out / "release" / "kubernetes-src.tar.gz"
    assert sorted(n for n in listing(src) if not n.endswith("/")) == sorted(TREE_FILES)
    with tarfile.open(out / TARBALLS[1]) as node:
        inner = node.extractfile("kubernetes/kubernetes-src.tar.gz")
        assert inner is not None and inner.read() == src.read_bytes()


def test_members_are_owned_by_root_at_the_epoch_with_fixed_modes(tree: tuple[Path, str],
                                                                 tmp_path: Path) -> None:
    out = make_output(tmp_path / "out")
    (out / "bin/linux/amd64/kubectl").chmod(0o700)  # the mode on disk does not leak
    write_tarballs(out, context(tree, version="v1.20.2-tke.1+g0abc"), image_tars(tmp_path))
    with tarfile.open(out / TARBALLS[2]) as server:
        members = server.getmembers()
        tag = server.extractfile("kubernetes/server/bin/kube-proxy.docker_tag")
        assert tag is not None and tag.read() == b"v1.20.2-tke.1_g0abc\n"
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {
        (EPOCH, 0, 0, "root", "root")}
    modes = {m.name: m.mode for m in members}
    assert {n for n, mode in modes.items() if mode == 0o755} == {
        n.rstrip("/") for n in SERVER if n.endswith("/") or n.split("/")[-1] in SEVEN}
    assert {n for n, mode in modes.items() if mode == 0o644} == {
        n for n in SERVER if not n.endswith("/") and n.split("/")[-1] not in SEVEN}
    head = (out / TARBALLS[2]).read_bytes()[:10]
    assert head[3] & 0x08 == 0 and head[4:8] == b"\0\0\0\0"  # no file name, mtime 0


def test_same_inputs_same_bytes_another_epoch_other_bytes(tree: tuple[Path, str],
                                                          tmp_path: Path) -> None:
    first = make_output(tmp_path / "first")
    second = make_output(tmp_path / "second")
    os.utime(second / "bin/linux/amd64/kubelet", (1, 1))  # file times do not leak either
    write_tarballs(first, context(tree), image_tars(tmp_path))
    write_tarballs(second, context(tree), image_tars(tmp_path))
    for rel in TARBALLS:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    other = make_output(tmp_path / "other")
    write_tarballs(other, context(tree, epoch=EPOCH + 1), image_tars(tmp_path))
    for rel in TARBALLS[:3]:
        assert (first / rel).read_bytes() != (other / rel).read_bytes(), rel


def test_a_users_git_config_does_not_change_the_src_tarball(tree: tuple[Path, str],
                                                            tmp_path: Path) -> None:
    first = make_output(tmp_path / "first")
    write_tarballs(first, context(tree), image_tars(tmp_path))
    (Path.home() / ".gitconfig").write_text("[tar]\n\tumask = 0077\n")
    second = make_output(tmp_path / "second")
    write_tarballs(second, context(tree), image_tars(tmp_path))
    for rel in TARBALLS:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_system_tar_unpacks_the_layout_and_executables_stay_executable(
        tree: tuple[Path, str], tmp_path: Path) -> None:
    out = make_output(tmp_path / "out")
    write_tarballs(out, context(tree), image_tars(tmp_path))
    dest = tmp_path / "unpacked"
    dest.mkdir()
    subprocess.run(["tar", "-xzf", str(out / TARBALLS[2]), "-C", str(dest)], check=True)
    found = sorted(str(p.relative_to(dest)) + ("/" if p.is_dir() else "")
                   for p in dest.rglob("*"))
    assert found == sorted(SERVER)
    bin_dir = dest / "kubernetes/server/bin"
    for component in SEVEN:
        assert (bin_dir / component).stat().st_mode & 0o777 == 0o755
        assert (bin_dir / component).read_bytes() == (
            out / "bin/linux/amd64" / component).read_bytes()
    assert (bin_dir / "kube-apiserver.tar").stat().st_mode & 0o777 == 0o644
    assert (dest / "kubernetes/LICENSES/LICENSE").read_text() == "Apache License 2.0\n"


def test_only_what_was_built_is_shipped(tree: tuple[Path, str], tmp_path: Path) -> None:
    out = make_output(tmp_path / "out", components=("kubectl", "kubelet"))
    ctx = context(tree, components=("kubectl", "kubelet"))
    assert write_tarballs(out, ctx) == TARBALLS
    assert [n for n in listing(out / TARBALLS[2]) if "/bin/" in n] == [
        "kubernetes/server/bin/", "kubernetes/server/bin/kubectl", "kubernetes/server/bin/kubelet"]
    assert [n for n in listing(out / TARBALLS[1]) if "/bin/" in n] == [
        "kubernetes/node/bin/", "kubernetes/node/bin/kubectl", "kubernetes/node/bin/kubelet"]


def test_each_platform_gets_its_own_set_and_images(tree: tuple[Path, str], tmp_path: Path) -> None:
    platforms = ("linux/amd64", "linux/arm64")
    out = make_output(tmp_path / "out", platforms)
    tars = {**image_tars(tmp_path / "a"), **image_tars(tmp_path / "b", "linux/arm64")}
    written = write_tarballs(out, context(tree, platforms=platforms), tars)
    assert written == sorted([*TARBALLS, *(t.replace("amd64", "arm64") for t in TARBALLS[:3])])
    assert listing(out / "release/kubernetes-server-linux-arm64.tar.gz") == SERVER
    with tarfile.open(out / "release/kubernetes-server-linux-arm64.tar.gz") as server:
        kubelet = server.extractfile("kubernetes/server/bin/kubelet")
        image = server.extractfile("kubernetes/server/bin/kube-proxy.tar")
        assert kubelet is not None and b"linux/arm64" in kubelet.read()
        arm64_proxy = tars[("kube-proxy", "linux/arm64")].read_bytes()
        assert image is not None and image.read() == arm64_proxy


def test_a_missing_binary_or_image_archive_is_named(tree: tuple[Path, str], tmp_path: Path) -> None:
    out = make_output(tmp_path / "out")
    (out / "bin/linux/amd64/kubeadm").unlink()
    with pytest.raises(BuildError, match=r"bin/linux/amd64/kubeadm: no such file; the build "
                                         r"output lacks kubeadm for linux/amd64"):
        write_tarballs(out, context(tree))
    assert not (out / "release").exists()  # checked before anything is written
    tars = image_tars(tmp_path)
    tars[("kube-proxy", "linux/amd64")].unlink()
    with pytest.raises(ImageError, match="kube-proxy.tar: no such file; the image archive of "
                                         "kube-proxy for linux/amd64 is missing"):
        write_tarballs(make_output(tmp_path / "other"), context(tree), tars)


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    def broken() -> object:
        raise OSError("disk gone")

    dest = tmp_path / "release" / "x.tar.gz"
    dest.parent.mkdir()
    with pytest.raises(OSError, match="disk gone"):
        write_tarball(dest, [Entry("kubernetes/bin/x", 3, True, broken)], EPOCH)  # type: ignore[arg-type]
    assert list(dest.parent.iterdir()) == []


def test_a_symlink_at_the_tarball_is_refused_and_what_it_points_at_is_untouched(
        tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    dest = tmp_path / "release" / "x.tar.gz"
    dest.parent.mkdir()
    dest.symlink_to(victim)
    with pytest.raises(UnsafePathError, match=f"^{re.escape(str(dest))} is a symlink"):
        write_tarball(dest, [Entry("kubernetes/bin/x", 1, True, lambda: io.BytesIO(b"x"))],
                      EPOCH)
    assert victim.read_text() == "keep\n"
    assert [p.name for p in dest.parent.iterdir()] == ["x.tar.gz"]  # no temporary left


def test_big_files_are_streamed(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with big.open("wb") as handle:
        handle.truncate(64 << 20)  # 64 MiB (sparse: zeros)
    tracemalloc.start()
    try:
        write_tarball(tmp_path / "big.tar.gz",
                      [Entry("kubernetes/bin/big", 64 << 20, True, lambda: big.open("rb"))], EPOCH)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak} bytes"
    with gzip.open(tmp_path / "big.tar.gz") as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
        assert [(m.name, m.size) for m in tar] == [("kubernetes", 0), ("kubernetes/bin", 0),
                                                   ("kubernetes/bin/big", 64 << 20)]


def test_checksums_pass_sha256sum_and_sha512sum(tree: tuple[Path, str], tmp_path: Path) -> None:
    out = make_output(tmp_path / "out")
    files = [*write_tarballs(out, context(tree), image_tars(tmp_path)),
             *(f"bin/linux/amd64/{c}" for c in SEVEN)]
    sums = write_checksums(out, files)
    for tool, name in (("sha256sum", "SHA256SUMS"), ("sha512sum", "SHA512SUMS")):
        checked = subprocess.run([tool, "-c", name], cwd=out, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.splitlines() == [f"{rel}: OK" for rel in sorted(files)]
    assert output.read_sha256sums(out / "SHA256SUMS") == sums["sha256"]
    assert output.read_sha512sums(out / "SHA512SUMS") == sums["sha512"]
    assert all(len(h) == 128 for h in sums["sha512"].values())
    text = (out / "SHA256SUMS").read_text()
    assert output.write_sha256sums(out, files) == sums["sha256"]  # the build's own format
    assert (out / "SHA256SUMS").read_text() == text
    (out / "bin/linux/amd64/kubectl").write_bytes(b"tampered")
    checked = subprocess.run(["sha512sum", "-c", "SHA512SUMS"], cwd=out, capture_output=True,
                             text=True)
    assert checked.returncode == 1 and "bin/linux/amd64/kubectl: FAILED" in checked.stdout
