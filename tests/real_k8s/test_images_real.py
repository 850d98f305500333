"""Every image the v1.20.2 suite lists that has a recipe, built offline from the real tree and
the Debian base, runs the way the specs call it; a second call rebuilds nothing.

The tree and e2e.test are the persistent build tier's (``/var/tmp/tkedistro-realk8s/distro``,
conftest.py), or ``TKEDISTRO_IMAGES_TREE`` (a copy, say) and ``TKEDISTRO_REAL_BIN_DIR``.
The binaries compile with the tree's own Go cache (``_output/local/go/cache``). Needs root
(debootstrap, the first time), Docker and the builder image (``make install``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.real_k8s.conftest import PERSIST, build_persistent_distro
from tkedistro.engine.docker import DockerBackend
from tkedistro.engine.docker_images import DockerImages
from tkedistro.images.upstream import imageset

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(3600)]

TREE = Path(os.environ.get("TKEDISTRO_IMAGES_TREE") or PERSIST / "distro/_src/1.20")
BIN = Path(os.environ.get("TKEDISTRO_REAL_BIN_DIR")
           or PERSIST / "distro/_output/1.20/bin/linux/amd64")
BUILDER = "tkedistro/builder:go1.15-bullseye"
WORK = PERSIST / "conformance-images"

# What the conformance specs run, and what they need to see.
CHECKS = {
    "k8s.gcr.io/e2e-test-images/agnhost:2.21": (["--help"], "Usage:"),
    "gcr.io/kubernetes-e2e-test-images/sample-apiserver:1.17": (["--help"], "wardle"),
    "k8s.gcr.io/etcd:3.4.13-0": (["/usr/local/bin/etcd", "--version"], "etcd Version:"),
    "gcr.io/kubernetes-e2e-test-images/jessie-dnsutils:1.0": (["dig", "-v"], "DiG"),
    "docker.io/library/busybox:1.29": (["sh", "-c", "echo ok"], "ok"),
    "docker.io/library/perl:5.26": (["perl", "-e", "print 6*7"], "42"),
    "gcr.io/kubernetes-e2e-test-images/nonroot:1.0": (["id", "-u"], "1234"),
}


@pytest.fixture(scope="module")
def image_sets() -> tuple[imageset.ImageSet, imageset.ImageSet]:
    if not os.environ.get("TKEDISTRO_IMAGES_TREE"):
        with pytest.MonkeyPatch.context() as monkeypatch:
            build_persistent_distro(monkeypatch)  # a no-op when warm; no earlier run needed
    if DockerBackend().image_info(BUILDER) is None:
        pytest.skip(f"needs the builder image {BUILDER} (make install)")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=TREE, capture_output=True,
                            text=True, check=True).stdout.strip()
    wanted = imageset.expected_images(BIN / "e2e.test")
    tool = imageset.backend_build_tool(DockerBackend(), BUILDER)
    first = imageset.build_image_set(TREE, commit, wanted, DockerImages(), tool, WORK)
    second = imageset.build_image_set(TREE, commit, wanted, DockerImages(), tool, WORK)
    return first, second


def test_every_conformance_image_is_built_and_reused(
        image_sets: tuple[imageset.ImageSet, imageset.ImageSet]) -> None:
    first, second = image_sets
    built = {o.ref for o in first.built}
    assert set(CHECKS) <= built
    assert len(built) + len(first.no_recipe) == len(set(built) | set(first.no_recipe))
    assert all(o.reused for o in second.built)


@pytest.mark.parametrize("ref", sorted(CHECKS))
def test_image_runs_as_the_specs_call_it(
        image_sets: tuple[imageset.ImageSet, imageset.ImageSet], ref: str) -> None:
    argv, expected = CHECKS[ref]
    local = {o.ref: o.local or o.ref for o in image_sets[0].built}  # the name it was built as
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", local[ref], *argv],
                          capture_output=True, text=True, timeout=120)
    assert expected in proc.stdout + proc.stderr
