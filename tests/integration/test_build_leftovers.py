"""Docker tier, issue 17 item 3: a build that fails inside `make` after writing a file git
neither tracks nor ignores does not block the next build, and a builder image without
`gofmt` is refused before `make` runs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.gitrepo import make_upstream
from tests.integration.test_build_docker import BUILDER, Distro, upstream_files

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

LEFTOVER = "test/e2e/generated/bindata.go.tmp"
# what hack/generate-bindata.sh does without gofmt: the .tmp is written, then the script dies
FAILING = {"hack/build.sh": f"mkdir -p test/e2e/generated\necho 'package generated' > {LEFTOVER}\n"
                            "gofmt-missing -s -w test/e2e/generated/bindata.go.tmp\n"}
NO_GOFMT_IMAGE = "tkedistro-test/no-gofmt:go1.15"
NO_GOFMT_LABEL = "tkedistro-test=no-gofmt"


@pytest.fixture
def distro(tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Distro:
    monkeypatch.setenv("TKEDISTRO_CACHE", str(shared_cache))
    upstream = make_upstream(tmp_path / "up", {"v1.20.0": {**upstream_files(), **FAILING},
                                               "v1.20.1": upstream_files()})
    d = Distro(tmp_path / "distro", upstream)
    d.pin("v1.20.0")
    return d


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tkedistro-cache")


@pytest.fixture(scope="module")
def no_gofmt_image() -> Iterator[str]:
    """The builder without gofmt (as the image was before make-builder-image.sh linked it)."""
    name = "tkedistro-test-no-gofmt"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    subprocess.run(["docker", "image", "prune", "-f", "--filter", f"label={NO_GOFMT_LABEL}"],
                   capture_output=True)
    subprocess.run(["docker", "run", "--name", name, "--user", "0", BUILDER, "sh", "-c",
                    "rm -f /usr/local/bin/gofmt /usr/lib/go-1.15/bin/gofmt"],
                   check=True, capture_output=True)
    subprocess.run(["docker", "commit", "--change", f"LABEL {NO_GOFMT_LABEL}", name,
                    NO_GOFMT_IMAGE], check=True, capture_output=True)
    subprocess.run(["docker", "rm", "-f", name], check=True, capture_output=True)
    yield NO_GOFMT_IMAGE
    subprocess.run(["docker", "rmi", "-f", NO_GOFMT_IMAGE], capture_output=True)


def test_failed_build_leftover_is_removed_and_the_fixed_tree_builds(distro: Distro) -> None:
    code, out = distro.build()
    assert code == 11, out
    assert f"removed 1 file(s) ({LEFTOVER}) the build wrote into _src/1.20" in out
    src = distro.root / "_src" / "1.20"
    assert not (src / LEFTOVER).exists()
    distro.pin("v1.20.1")  # the fix: a tree whose build works
    code, out = distro.build()
    assert code == 0, out
    assert "holds work in progress" not in out
    assert "runs: v1.20.1-tke.1" in out


def test_builder_without_gofmt_is_refused_before_make(distro: Distro,
                                                     no_gofmt_image: str) -> None:
    code, out = distro.build("--builder-image", no_gofmt_image)
    assert code == 10, out
    assert (f"error: builder image {no_gofmt_image} lacks gofmt, which the build runs; "
            "nothing was built") in out
    assert not (distro.root / "_src" / "1.20" / LEFTOVER).exists()  # make never ran
    assert not (distro.root / "_output" / "1.20").exists()
