"""Component images from the really built v1.20.2 binaries of the persistent distro, on the real
Debian component base: each runs ``--version`` and prints the distro's stamp, kube-proxy's
iptables is the legacy backend the nodes use, and a second call builds nothing (kubeadm's etcd
and pause under the same repository: test_conformance_images_real.py, which makes them).

Builds the persistent distro through the CLI first (a no-op when warm), so it needs no earlier
run. The base is debootstrapped the first time (root, about 2 minutes) and kept in the
engine; images go to the default repository ``tkedistro.local/k8s``, the names a local kubeadm
cluster uses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.real_k8s.conftest import FIXTURE_COMMIT, PERSIST, build_persistent_distro
from tkedistro.build.output import read_sha256sums
from tkedistro.core.workspace import Workspace
from tkedistro.engine.docker_images import DockerImages
from tkedistro.images import base, components, recipes
from tkedistro.images.components import ComponentImage
from tkedistro.model.manifest import load_release

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(1200)]

VERSION = "v1.20.2-tke.1"
WS = Workspace(root=PERSIST / "distro", cache=PERSIST / "cache")
def _run(ref: str, *argv: str) -> str:
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, *argv],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def made() -> tuple[list[ComponentImage], list[ComponentImage], float]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        ws = build_persistent_distro(monkeypatch)
    assert ws.root == WS.root
    engine = DockerImages()
    if os.geteuid() != 0 and engine.labels(base.base_ref("linux/amd64")) is None:
        pytest.skip("the component base is not made yet and making it needs root")
    if shutil.which("debootstrap") is None and engine.labels(base.base_ref("linux/amd64")) is None:
        pytest.skip("the component base needs debootstrap (make install)")
    manifest = load_release(WS, "1.20")
    first = components.ensure_component_images(WS, "1.20", manifest, engine)
    start = time.monotonic()
    second = components.ensure_component_images(WS, "1.20", manifest, engine)
    return first, second, time.monotonic() - start


@pytest.mark.parametrize("component", recipes.COMPONENTS)
def test_each_image_runs_the_stamped_binary(made: tuple, component: str) -> None:
    ref = recipes.component_ref(component, VERSION)
    assert _run(ref, component, "--version").strip() == f"Kubernetes {VERSION}"


def test_kube_proxy_has_legacy_iptables_and_its_tools(made: tuple) -> None:
    ref = recipes.component_ref("kube-proxy", VERSION)
    out = _run(ref, "sh", "-c", "iptables --version; ip6tables --version; "
               "for t in ipset conntrack ebtables modprobe ip; do command -v $t; done; "
               ". /etc/os-release; echo $VERSION_CODENAME $VERSION_ID")
    lines = out.split("\n")
    assert lines[7] == "trixie 13"
    assert lines[0].startswith("iptables v1.8.") and lines[0].endswith("(legacy)")
    assert lines[1].startswith("ip6tables v1.8.") and lines[1].endswith("(legacy)")
    assert lines[2:7] == ["/usr/sbin/ipset", "/usr/sbin/conntrack", "/usr/sbin/ebtables",
                          "/usr/sbin/modprobe", "/usr/sbin/ip"]


def test_a_second_call_builds_nothing(made: tuple) -> None:
    first, second, seconds = made
    assert [(i.reused, i.image_id) for i in second] == [(True, i.image_id) for i in first]
    print(f"no-op ensure_component_images: {seconds:.2f}s")


def test_labels_match_the_build_output(made: tuple) -> None:
    first, _, _ = made
    sums = read_sha256sums(WS.output_dir("1.20") / "SHA256SUMS")
    for image in first:
        assert image.labels["org.opencontainers.image.version"] == VERSION
        assert image.labels["org.opencontainers.image.revision"] == FIXTURE_COMMIT
        assert image.labels["org.tkedistro.binary.sha256"] == (
            "sha256:" + sums[f"bin/linux/amd64/{image.component}"])
