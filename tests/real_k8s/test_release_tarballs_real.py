"""Release tarballs of the really built v1.20.2 binaries of the persistent distro: each
platform's server, node and client tarball unpacks to upstream's layout (``build/lib/
release.sh``) with the built binaries byte for byte, kubectl from the client tarball runs and
reports the distro version, the src tarball is the tree's commit, a second run gives the same
bytes, and coreutils check ``SHA256SUMS``/``SHA512SUMS``.

The build output is hard-linked into a temporary copy (the tarballs are written there, never
into ``_output``); the tree is only read (``git archive``).
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.real_k8s.conftest import build_persistent_distro
from tkedistro.artifacts.checksums import write_checksums
from tkedistro.artifacts.context import ReleaseContext
from tkedistro.artifacts.tarballs import write_tarballs
from tkedistro.build.output import read_sha256sums

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(1800)]

SERVER_BIN = ("kube-apiserver", "kube-controller-manager", "kube-proxy", "kube-scheduler",
              "kubeadm", "kubectl", "kubelet")
NODE_BIN = ("kube-proxy", "kubeadm", "kubectl", "kubelet")


def _git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True,
                          check=True).stdout


def _copy(built: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(built / "bin"), str(dest / "bin")], check=True)
    shutil.copy2(built / "SHA256SUMS", dest / "SHA256SUMS")
    return dest


def _context(tree: Path, info: dict) -> ReleaseContext:
    commit = info["tree_commit"]
    return ReleaseContext(
        release=info["release"], distro_version=info["distro_version"],
        upstream_url=info["upstream"]["url"], tag=info["upstream"]["tag"],
        upstream_commit=info["upstream"]["commit"], tree_commit=commit, tree=tree,
        source_date_epoch=int(_git(tree, "show", "-s", "--format=%ct", commit, "--")),
        platforms=tuple(info["platforms"]), components=tuple(info["components"]),
        image_components=(), patches=(), builder_image=info["builder"]["image"],
        builder_image_id=info["builder"]["image_id"], go_version=info["builder"]["go_version"],
        tool_version="test")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ReleaseContext,
                                                                      list[str], float]]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        ws = build_persistent_distro(monkeypatch)
        built = ws.output_dir("1.20")
        info = json.loads((built / "build-info.json").read_text())
        ctx = _context(ws.src_dir("1.20"), info)
        assert _git(ctx.tree, "rev-parse", "HEAD").strip() == ctx.tree_commit
        out = _copy(built, tmp_path_factory.mktemp("release") / "out")
        start = time.monotonic()
        written = write_tarballs(out, ctx)
        seconds = time.monotonic() - start
        yield out, ctx, written, seconds


def _listing(path: Path) -> list[str]:
    return subprocess.run(["tar", "-tzf", str(path)], capture_output=True, text=True,
                          check=True).stdout.splitlines()


def _licenses(ctx: ReleaseContext) -> list[str]:
    out = _git(ctx.tree, "ls-tree", "-r", "-t", "--format=%(objecttype) %(path)",
               ctx.tree_commit, "--", "LICENSES")
    return [f"kubernetes/{path}/" if kind == "tree" else f"kubernetes/{path}"
            for kind, path in (line.split(" ", 1) for line in out.splitlines())]


def test_every_platform_has_the_three_tarballs_and_the_src(made: tuple) -> None:
    out, ctx, written, seconds = made
    tags = [p.replace("/", "-") for p in ctx.platforms]
    assert written == sorted([f"release/kubernetes-{kind}-{tag}.tar.gz"
                              for kind in ("server", "node", "client") for tag in tags]
                             + ["release/kubernetes-src.tar.gz"])
    sizes = {rel: (out / rel).stat().st_size for rel in written}
    print(f"write_tarballs: {seconds:.1f}s for {', '.join(ctx.platforms)}; sizes {sizes}")


def test_each_tarball_unpacks_to_upstreams_layout(made: tuple) -> None:
    out, ctx, _, _ = made
    licenses = _licenses(ctx)
    for platform in ctx.platforms:
        tag = platform.replace("/", "-")
        server = _listing(out / f"release/kubernetes-server-{tag}.tar.gz")
        node = _listing(out / f"release/kubernetes-node-{tag}.tar.gz")
        client = _listing(out / f"release/kubernetes-client-{tag}.tar.gz")
        assert sorted(server) == sorted([
            "kubernetes/", *licenses, "kubernetes/addons/", "kubernetes/kubernetes-src.tar.gz",
            "kubernetes/server/", "kubernetes/server/bin/",
            *(f"kubernetes/server/bin/{c}" for c in SERVER_BIN)])
        assert sorted(node) == sorted([
            "kubernetes/", *licenses, "kubernetes/kubernetes-src.tar.gz", "kubernetes/node/",
            "kubernetes/node/bin/", *(f"kubernetes/node/bin/{c}" for c in NODE_BIN)])
        assert client == ["kubernetes/", "kubernetes/client/", "kubernetes/client/bin/",
                          "kubernetes/client/bin/kubectl"]


def test_the_binaries_inside_are_the_built_ones(made: tuple) -> None:
    out, ctx, _, _ = made
    sums = read_sha256sums(out / "SHA256SUMS")
    for platform in ctx.platforms:
        tag = platform.replace("/", "-")
        for kind, names in (("server", SERVER_BIN), ("node", NODE_BIN), ("client", ("kubectl",))):
            with tarfile.open(out / f"release/kubernetes-{kind}-{tag}.tar.gz") as tar:
                for name in names:
                    member = tar.getmember(f"kubernetes/{kind}/bin/{name}")
                    assert (member.mode, member.mtime) == (0o755, ctx.source_date_epoch)
                    handle = tar.extractfile(member)
                    assert handle is not None
                    digest = hashlib.file_digest(handle, "sha256").hexdigest()
                    assert digest == sums[f"bin/{platform}/{name}"], (kind, platform, name)


def test_kubectl_from_the_client_tarball_reports_the_distro_version(made: tuple,
                                                                   tmp_path: Path) -> None:
    out, ctx, _, _ = made
    for platform in ctx.platforms:  # arm64 runs through qemu-user-static's binfmt
        dest = tmp_path / platform.replace("/", "-")
        dest.mkdir()
        subprocess.run(["tar", "-xzf", str(out / f"release/kubernetes-client-"
                                            f"{platform.replace('/', '-')}.tar.gz"),
                        "-C", str(dest)], check=True)
        kubectl = dest / "kubernetes/client/bin/kubectl"
        assert kubectl.stat().st_mode & 0o777 == 0o755
        version = subprocess.run([str(kubectl), "version", "--client", "--short"],
                                 capture_output=True, text=True, check=True).stdout
        assert version.strip() == f"Client Version: {ctx.distro_version}"


def test_the_src_tarball_is_the_tree_commit(made: tuple) -> None:
    out, ctx, _, _ = made
    files = _git(ctx.tree, "ls-tree", "-r", "--name-only", ctx.tree_commit).splitlines()
    listed = [n for n in _listing(out / "release/kubernetes-src.tar.gz") if not n.endswith("/")]
    assert sorted(listed) == sorted(files)
    with tarfile.open(out / f"release/kubernetes-node-{ctx.platforms[0].replace('/', '-')}"
                            ".tar.gz") as node:
        inner = node.extractfile("kubernetes/kubernetes-src.tar.gz")
        assert inner is not None
        assert hashlib.file_digest(inner, "sha256").hexdigest() == hashlib.sha256(
            (out / "release/kubernetes-src.tar.gz").read_bytes()).hexdigest()


def test_a_second_run_writes_the_same_bytes(made: tuple, tmp_path: Path) -> None:
    out, ctx, written, _ = made
    again = _copy(out, tmp_path / "again")
    assert write_tarballs(again, ctx) == written
    for rel in written:
        assert filecmp.cmp(again / rel, out / rel, shallow=False), rel


def test_coreutils_check_sha256sums_and_sha512sums(made: tuple) -> None:
    out, ctx, written, _ = made
    binaries = [f"bin/{p}/{c}" for p in ctx.platforms for c in ctx.components]
    write_checksums(out, [*binaries, *written])
    for tool, name in (("sha256sum", "SHA256SUMS"), ("sha512sum", "SHA512SUMS")):
        checked = subprocess.run([tool, "-c", name], cwd=out, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert len(checked.stdout.splitlines()) == len(binaries) + len(written)
