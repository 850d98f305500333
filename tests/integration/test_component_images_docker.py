"""Docker tier: component images made by the real engine from synthetic binaries run
``<component> --version`` by name, carry their labels, and a second call builds nothing.

No debootstrap here: the base is a one-line image on the builder image that ``make install``
leaves (the real Debian base is the real_k8s tier's). The binaries are shell scripts that
print a version, which is all an image needs to prove it puts them where kubeadm calls them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.helpers.manifests import manifest_text
from tkedistro.debian.rootfs import DebianBase
from tkedistro.engine.docker import DockerBackend
from tkedistro.engine.docker_images import DockerImages
from tkedistro.engine.protocols import BuiltImage
from tkedistro.images import components, recipes
from tkedistro.model.manifest import parse_manifest

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

BUILDER = "tkedistro/builder:go1.15-bullseye"
REPOSITORY = "tkedistro.test/k8s"
BASE_REF = "tkedistro.test/component-base:tiny"
SOURCES = "tkedistro.test/conformance-src"
VERSION = "v1.20.2-tke.1"


class CountingEngine(DockerImages):
    """The real engine, counting the builds that are not the ``FROM ref`` id lookup."""

    def __init__(self) -> None:
        super().__init__()
        self.builds: list[str] = []

    def build(self, context: Path, tag: str, labels: Mapping[str, str],
              dockerfile: str = "Dockerfile") -> BuiltImage:
        if labels:
            self.builds.append(tag)
        return super().build(context, tag, labels, dockerfile)


def _docker(*argv: str) -> str:
    return subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=120,
                          check=True).stdout


def _refs() -> list[str]:
    return [recipes.component_ref(c, VERSION, REPOSITORY) for c in recipes.COMPONENTS]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, ...]]:
    if DockerBackend().image_info(BUILDER) is None:
        pytest.skip(f"needs the builder image {BUILDER} (make install)")
    tmp = tmp_path_factory.mktemp("components")
    engine = CountingEngine()
    (tmp / "base").mkdir()
    (tmp / "base/Dockerfile").write_text(f"FROM {BUILDER}\n")
    base_image = engine.build(tmp / "base", BASE_REF, {"org.tkedistro.test": "component-base"})
    base = DebianBase(BASE_REF, base_image.id, (), False)
    out = tmp / "_output/1.20"
    (out / "bin/linux/amd64").mkdir(parents=True)
    for name in recipes.COMPONENTS:
        script = out / "bin/linux/amd64" / name
        script.write_text(f'#!/bin/sh\necho "Kubernetes {VERSION} ($(basename "$0") $*)"\n')
        script.chmod(0o700)
    manifest = parse_manifest(manifest_text(), tmp / "releases/1.20.yaml", "releases/1.20.yaml")
    for ref in _refs():
        engine.remove(ref)
    engine.builds.clear()
    work = tmp / "work"
    first = components.build_component_images(out, manifest, engine, base, work,
                                              repository=REPOSITORY)
    built = list(engine.builds)
    second = components.build_component_images(out, manifest, engine, base, work,
                                               repository=REPOSITORY)
    yield first, second, built, list(engine.builds), engine, base, (out, manifest, work)
    for ref in [*_refs(), BASE_REF, f"{SOURCES}/etcd:3.4.13-0", f"{SOURCES}/pause:3.2",
                f"{REPOSITORY}/etcd:3.4.13-0", f"{REPOSITORY}/pause:3.2"]:
        engine.remove(ref)


def test_first_call_builds_four_and_the_second_builds_nothing(made: tuple) -> None:
    first, second, built, after, *_ = made
    assert built == _refs() and after == built
    assert [i.reused for i in first] == [False] * 4
    assert [(i.reused, i.image_id) for i in second] == [(True, i.image_id) for i in first]


@pytest.mark.parametrize("component", recipes.COMPONENTS)
def test_each_image_runs_its_binary_by_name(made: tuple, component: str) -> None:
    ref = recipes.component_ref(component, VERSION, REPOSITORY)
    out = _docker("run", "--rm", "--network", "none", ref, component, "--version")
    assert out == f"Kubernetes {VERSION} ({component} --version)\n"
    where = _docker("run", "--rm", "--network", "none", ref, "stat", "-c", "%a %Y %n",
                    f"/usr/local/bin/{component}")
    assert where == f"755 {recipes.FIXED_MTIME} /usr/local/bin/{component}\n"


def test_labels_in_the_engine_say_what_the_image_holds(made: tuple) -> None:
    first, _, _, _, _, base, _ = made
    proxy = _refs()[3]
    fmt = ('{{index .Config.Labels "org.opencontainers.image.version"}} '
           '{{index .Config.Labels "org.tkedistro.base"}} '
           '{{index .Config.Labels "org.tkedistro.inputs"}}')
    assert _docker("image", "inspect", "--format", fmt, proxy).split() == [
        VERSION, base.image_id, first[3].labels["org.tkedistro.inputs"]]


def test_a_rebuild_gives_the_same_binary_layer(made: tuple) -> None:
    first, _, _, _, engine, base, (out, manifest, work) = made
    layers = _docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", _refs()[2])
    engine.remove(_refs()[2])
    again = components.build_component_images(out, manifest, engine, base, work,
                                              repository=REPOSITORY,
                                              components=("kube-scheduler",))
    assert not again[0].reused
    assert _docker("image", "inspect", "--format", "{{json .RootFS.Layers}}",
                   _refs()[2]) == layers


def test_kubeadm_etcd_and_pause_get_the_repository_name(made: tuple) -> None:
    *_, engine, base, _ = made
    for name in ("etcd:3.4.13-0", "pause:3.2"):
        engine.tag(BASE_REF, f"{SOURCES}/{name}")
    tagged = components.tag_kubeadm_images(engine, REPOSITORY, SOURCES)
    assert [t.ref for t in tagged] == [f"{REPOSITORY}/etcd:3.4.13-0", f"{REPOSITORY}/pause:3.2"]
    ids = {_docker("image", "inspect", "--format", "{{.Id}}", t.ref).strip() for t in tagged}
    assert ids == {base.image_id}
