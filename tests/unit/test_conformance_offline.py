"""What ``conformance images`` and the local run make of a catalogue and a build: the names
images are pushed under, the repo list the suite reads, and the specs skipped (fast) because
their image is missing instead of letting them wait out their timeout."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.helpers.engines import fake_engines
from tkedistro.conformance import catalog as catalog_mod
from tkedistro.conformance import offline
from tkedistro.conformance.catalog import Catalog, ImageNeed
from tkedistro.core.errors import ClusterError
from tkedistro.core.workspace import Workspace
from tkedistro.git import repo as repo_mod
from tkedistro.images.upstream import imageset

REG = "127.0.0.1:5000"
PAUSE, AGNHOST = "k8s.gcr.io/pause:3.2", "k8s.gcr.io/e2e-test-images/agnhost:2.21"
NGINX = "docker.io/library/nginx:1.14-alpine"
ECHO = "gcr.io/kubernetes-e2e-test-images/echoserver:2.2"
INVALID = "invalid.com/invalid/alpine:3.1"
NGINX_SPECS = ("[sig-node] Pods should serve nginx (1.14) [Conformance]",
               "[sig-apps] Deployment should roll nginx [Conformance]")


def need(ref: str, key: str, specs: tuple[str, ...] = (), fail: bool = False) -> ImageNeed:
    name, version = ref.rsplit("/", 1)[1].split(":")
    return ImageNeed(name, ref, key, name, version, specs, ("test/e2e/x.go",), fail)


CATALOG = Catalog(
    registries={"gcRegistry": "k8s.gcr.io", "promoterE2eRegistry": "k8s.gcr.io/e2e-test-images",
                "dockerLibraryRegistry": "docker.io/library",
                "e2eRegistry": "gcr.io/kubernetes-e2e-test-images",
                "invalidRegistry": "invalid.com/invalid"},
    needs=(need(PAUSE, "gcRegistry", ("[sig-node] a [Conformance]",)),
           need(AGNHOST, "promoterE2eRegistry", ("[sig-node] b [Conformance]",)),
           need(NGINX, "dockerLibraryRegistry", NGINX_SPECS),
           need(ECHO, "e2eRegistry"),
           need(INVALID, "invalidRegistry", ("[sig-node] c [Conformance]",), fail=True)),
    all_configs=(),
)


class Engine:
    def __init__(self) -> None:
        self.tags: list[tuple[str, str]] = []
        self.pushed: list[str] = []
        self.untagged: list[str] = []

    def tag(self, ref: str, new_ref: str) -> None:
        self.tags.append((ref, new_ref))

    def push(self, ref: str, login: object = None) -> str:
        self.pushed.append(ref)
        return "sha256:" + "ab" * 32

    def remove(self, ref: str) -> None:
        self.untagged.append(ref)


@dataclass
class Setup:
    ws: Workspace
    engine: Engine
    built: list[list[str]]


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    root = tmp_path / "distro"
    (root / "_src/1.20/test/utils/image").mkdir(parents=True)
    (root / "_src/1.20/test/utils/image/manifest.go").write_text("package image\n")
    engine = Engine()
    built: list[list[str]] = []

    def build_image_set(tree: Path, commit: str, wanted: Sequence[str], *_: object,
                        **__: object) -> imageset.ImageSet:
        built.append(list(wanted))
        made = [r for r in wanted if r != NGINX and r != ECHO]  # nothing builds nginx or echo
        return imageset.ImageSet(
            tuple(imageset.ImageOutcome(r, "sha256:1", "tree", {}, False, imageset.local_ref(r))
                  for r in made), (NGINX, ECHO))

    class FakeRepo:
        def __init__(self, path: Path) -> None:
            pass

        def head(self) -> str:
            return "c" * 40

    monkeypatch.setattr(catalog_mod, "load_catalog", lambda tree: CATALOG)
    monkeypatch.setattr(imageset, "build_image_set", build_image_set)
    monkeypatch.setattr(imageset, "backend_build_tool", lambda *a: None)
    monkeypatch.setattr(repo_mod, "Repo", FakeRepo)
    return Setup(Workspace(root=root, cache=tmp_path / "cache"), engine, built)


class Manifest:
    class builder:  # noqa: N801 - stands in for the manifest's builder section
        image = "tkedistro/builder:go1.15-bullseye"


def prepare(setup: Setup, has: object = None) -> offline.OfflineImages:
    return offline.prepare_images(setup.ws, "1.20", Manifest(), REG,  # type: ignore[arg-type]
                                  has,  # type: ignore[arg-type]
                                  engines=fake_engines(images=setup.engine))


def test_images_go_to_the_registry_under_the_redirected_names(setup: Setup) -> None:
    result = prepare(setup)
    assert setup.built == [[PAUSE, AGNHOST, NGINX, ECHO]]
    assert setup.engine.tags == [(f"tkedistro.local/conformance/{PAUSE}", f"{REG}/{PAUSE}"),
                           (f"tkedistro.local/conformance/{AGNHOST}", f"{REG}/{AGNHOST}")]
    assert [i.pushed for i in result.images] == [f"{REG}/{PAUSE}", f"{REG}/{AGNHOST}"]
    assert result.expected_to_fail == (INVALID,)
    # the registry-address tags are dropped after the push (its port changes every run)
    assert setup.engine.untagged == setup.engine.pushed == [f"{REG}/{PAUSE}", f"{REG}/{AGNHOST}"]


def test_the_repo_list_redirects_every_registry_but_the_ones_meant_to_fail(
        setup: Setup) -> None:
    result = prepare(setup)
    mapping = YAML(typ="safe").load(result.repo_list.read_text())
    assert mapping["gcRegistry"] == f"{REG}/k8s.gcr.io"
    assert mapping["dockerLibraryRegistry"] == f"{REG}/docker.io/library"
    assert mapping["invalidRegistry"] == "invalid.com/invalid"
    assert result.repo_list.parent == setup.ws.cache / "conformance-images" / "1.20"


def test_a_missing_image_skips_exactly_the_specs_that_need_it(setup: Setup) -> None:
    result = prepare(setup)
    assert [m.ref for m in result.missing] == [NGINX]
    assert result.untraced == (ECHO,)  # no recipe, no spec traced: listed, skips nothing
    assert result.skipped_specs == tuple(sorted(NGINX_SPECS))
    skip = re.compile(offline.skip_regex(result.skipped_specs))
    assert all(skip.search(s) for s in NGINX_SPECS)
    assert not skip.search("[sig-node] Pods should serve nginx (1.15) [Conformance]")
    text = result.format_text()
    assert "MISSING docker.io/library/nginx:1.14-alpine: no recipe" in text
    assert "needed by 2 spec(s)" in text


def test_an_image_the_registry_does_not_serve_is_missing(setup: Setup) -> None:
    result = prepare(setup, has=lambda ref: not ref.endswith("agnhost:2.21"))
    assert [(m.ref, m.why) for m in result.missing] == [
        (AGNHOST, "pushed but the registry does not serve it"), (NGINX, offline.NO_RECIPE)]


def test_no_source_tree_says_how_to_make_one(setup: Setup) -> None:
    (setup.ws.src_dir("1.20") / "test/utils/image/manifest.go").unlink()
    with pytest.raises(ClusterError) as err:
        prepare(setup)
    assert err.value.message == ("_src/1.20: no Kubernetes source tree to build the images "
                                 "from")
    assert err.value.hint == "prepare it first: tkedistro source 1.20"
