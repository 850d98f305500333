"""Docker tier: the kubeadm bundle made by real skopeo from release images made by real buildah
(tiny static binaries, as ``test_release_images_docker.py`` makes them) holds exactly the names
kubeadm v1.20 lists (the real kubeadm's output, ``tests/unit/data/``), each platform its own
images, pause as the shipped pause's image; two runs give the same bytes; a server tarball's
component archive loads into Docker and runs. etcd and the DNS responder stand in as the tiny
base image (their real builders are the real_k8s tier's); the shared engine gets only names
unique to this test (``-i27k`` versions), never ``k8s.gcr.io/pause:3.2`` and the like.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import pytest

from tests.integration.test_release_images_docker import (
    BASE,
    BUILDER,
    PLATFORMS,
    _base,
    _binaries,
    _cmd,
    _context,
    _output,
)
from tests.unit.test_kubeadm_bundle import printed
from tkedistro.artifacts import kubeadmbundle
from tkedistro.artifacts.context import FinishRequest, ReleaseContext
from tkedistro.core.host import host_platform
from tkedistro.core.workspace import Workspace
from tkedistro.engine.buildah import Buildah
from tkedistro.engine.engines import Engines
from tkedistro.images.dockerbundle import archive_names
from tkedistro.images.shipped import make_release_images

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

VERSION = "v1.20.2-i27k.1"  # names no other test or cluster uses in the shared engine
STANDINS = {"etcd": "tkedistro.test/i27k-etcd:1", "coredns": "tkedistro.test/i27k-dns:1"}


@dataclass
class Made:
    ctx: ReleaseContext
    outs: list[Path]
    server_tar: Path  # kube-proxy's server-tarball archive for the host platform (run 1)
    tmp: Path


def _bundle(tmp: Path, ctx: ReleaseContext, out: Path, keep: Path) -> None:
    request = FinishRequest(Workspace(tmp / "root", tmp / "cache"), out, cast(Any, None),
                            cast(Any, None), "1.15.15", [], None)
    with kubeadmbundle.kubeadm_bundle(request, ctx, cast(Engines, None)) as bundle:
        shutil.copy(bundle.server_images[("kube-proxy", host_platform())], keep)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    if shutil.which("buildah") is None or shutil.which("skopeo") is None:
        pytest.skip("needs buildah and skopeo (apt-get install buildah skopeo)")
    if subprocess.run(["docker", "image", "inspect", BUILDER], capture_output=True).returncode:
        pytest.skip(f"needs the builder image {BUILDER} (make install)")
    tmp = tmp_path_factory.mktemp("kubeadm-bundle")
    (tmp / "bins").mkdir()
    _binaries(tmp / "bins")
    _base(tmp)
    for ref in STANDINS.values():
        _cmd("docker", "tag", BASE, ref)
    ctx = replace(_context(tmp), distro_version=VERSION,
                  components=("kubeadm", "kube-apiserver", "kube-controller-manager",
                              "kube-proxy", "kube-scheduler"))
    out = _output(tmp, "out1", tmp / "bins")
    make_release_images(out, ctx, tmp / "work", Buildah(tmp / "storage"),
                        {p: f"docker-daemon:{BASE}" for p in PLATFORMS})
    second = tmp / "out2"
    shutil.copytree(out / "images", second / "images")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kubeadmbundle, "_support_images", lambda request, engines: STANDINS)
        _bundle(tmp, ctx, out, tmp / "kube-proxy-server.tar")
        _bundle(tmp, ctx, second, tmp / "unused.tar")
    yield Made(ctx, [out, second], tmp / "kube-proxy-server.tar", tmp)
    loaded = archive_names(tmp / "kube-proxy-server.tar")
    for ref in [BASE, *STANDINS.values(), *loaded]:
        subprocess.run(["docker", "image", "rm", ref], capture_output=True)


def listed() -> list[str]:
    """What the real kubeadm printed, with this test's version for the distro's."""
    return sorted(ref.replace("v1.20.2-tke.1", VERSION)
                  for ref in printed("kubeadm-images-v1.20.2-tke.1.txt"))


def test_the_host_bundle_has_exactly_the_names_kubeadm_lists(made: Made) -> None:
    bundle = made.outs[0] / kubeadmbundle.bundle_name(host_platform())
    assert sorted(archive_names(bundle)) == listed()
    for platform in PLATFORMS:
        names = archive_names(made.outs[0] / kubeadmbundle.bundle_name(platform))
        assert set(names) <= set(listed()) and len(names) == len(set(names))


def test_two_runs_give_the_same_bytes(made: Made) -> None:
    for platform in PLATFORMS:
        name = kubeadmbundle.bundle_name(platform)
        assert (made.outs[0] / name).read_bytes() == (made.outs[1] / name).read_bytes()


@pytest.mark.parametrize("platform", PLATFORMS)
def test_each_bundle_holds_its_platforms_images_and_pause_is_the_shipped_pause(
        made: Made, platform: str) -> None:
    bundle = made.outs[0] / kubeadmbundle.bundle_name(platform)
    arch = platform.split("/")[1]
    for ref in (f"k8s.gcr.io/kube-proxy:{VERSION}", "k8s.gcr.io/pause:3.2"):
        config = json.loads(_cmd("skopeo", "inspect", "--config", f"docker-archive:{bundle}:{ref}"))
        assert config["architecture"] == arch
    shipped = _cmd("skopeo", "--override-arch", arch, "inspect", "--config", "--raw",
                   f"oci-archive:{made.outs[0] / 'images/pause.oci.tar'}")
    bundled = _cmd("skopeo", "inspect", "--config", "--raw",
                   f"docker-archive:{bundle}:k8s.gcr.io/pause:3.2")
    assert bundled == shipped  # the same image config: the same image id


def test_a_server_tarball_archive_loads_into_docker_and_runs(made: Made) -> None:
    arch = host_platform().split("/")[1]
    assert archive_names(made.server_tar) == [f"k8s.gcr.io/kube-proxy:{VERSION}",
                                              f"k8s.gcr.io/kube-proxy-{arch}:{VERSION}"]
    loaded = _cmd("docker", "load", "-i", str(made.server_tar))
    assert f"Loaded image: k8s.gcr.io/kube-proxy-{arch}:{VERSION}" in loaded
    assert _cmd("docker", "run", "--rm", "--network", "none", "--entrypoint",
                "/usr/local/bin/kube-proxy", f"k8s.gcr.io/kube-proxy-{arch}:{VERSION}") == (
        f"/usr/local/bin/kube-proxy {arch} 0\n")
