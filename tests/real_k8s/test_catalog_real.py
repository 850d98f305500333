"""The image catalogue of the real v1.20.2 tree, and the real e2e.test reading our repo list.

The catalogue test reads ``test/`` of the local v1.20.2 fixture (conftest.py), extracted with
``git archive``. The repo-list test needs a built ``e2e.test``: by default the persistent distro
of the build tier built through the tool (a no-op when warm); ``TKEDISTRO_REAL_BIN_DIR`` (a bin
folder holding e2e.test) and ``TKEDISTRO_REAL_SRC`` (the tree it came from) point elsewhere.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.real_k8s.conftest import FIXTURE_TAG, PERSIST, refresh_persistent_distro
from tkedistro.cli.app import app
from tkedistro.conformance.catalog import load_catalog
from tkedistro.conformance.repolist import redirect, repo_list, write_repo_list

pytestmark = [pytest.mark.real_k8s]

EXPECTED = {
    "k8s.gcr.io/e2e-test-images/agnhost:2.21", "docker.io/library/busybox:1.29",
    "k8s.gcr.io/pause:3.2", "docker.io/library/httpd:2.4.38-alpine",
    "docker.io/library/httpd:2.4.39-alpine", "docker.io/library/nginx:1.14-alpine",
    "docker.io/library/nginx:1.15-alpine", "gcr.io/kubernetes-e2e-test-images/jessie-dnsutils:1.0",
    "gcr.io/kubernetes-e2e-test-images/sample-apiserver:1.17", "k8s.gcr.io/etcd:3.4.13-0",
    "gcr.io/kubernetes-e2e-test-images/nautilus:1.0",
    "gcr.io/kubernetes-e2e-test-images/kitten:1.0",
    "gcr.io/kubernetes-e2e-test-images/nonroot:1.0",
    "gcr.io/kubernetes-e2e-test-images/nonewprivs:1.0",
}


@pytest.fixture(scope="module")
def real_tree(tmp_path_factory: pytest.TempPathFactory, k8s_upstream: Path) -> Path:
    """``test/`` of the v1.20.2 fixture, extracted."""
    dest = tmp_path_factory.mktemp("k8s")
    archive = subprocess.run(["git", "--git-dir", str(k8s_upstream), "archive", FIXTURE_TAG,
                              "test"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def test_the_real_tree_needs_the_images_its_conformance_specs_pull(real_tree: Path) -> None:
    catalog = load_catalog(real_tree)

    assert len(catalog.specs) == 311
    assert len(catalog.all_configs) == 38
    refs = {n.ref: n for n in catalog.needs}
    assert EXPECTED <= set(refs)
    assert {n.registry_key for n in catalog.needs if n.expect_failure} == {
        "invalidRegistry", "gcAuthenticatedRegistry", "privateRegistry"}
    agnhost = refs["k8s.gcr.io/e2e-test-images/agnhost:2.21"]
    assert "[sig-network] DNS should provide DNS for services  [Conformance]" in agnhost.specs
    sample = refs["gcr.io/kubernetes-e2e-test-images/sample-apiserver:1.17"]
    assert sample.files == ("test/e2e/apimachinery/aggregator.go",)
    assert any("Aggregator" in spec for spec in sample.specs)
    webserver = refs["docker.io/library/httpd:2.4.38-alpine"]  # apps/types.go WebserverImage
    assert any("Deployment" in spec for spec in webserver.specs)


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(the tree, the e2e.test built from it)."""
    if given := os.environ.get("TKEDISTRO_REAL_BIN_DIR"):
        src = Path(os.environ.get("TKEDISTRO_REAL_SRC", PERSIST / "distro/_src/1.20"))
        e2e = Path(given) / "e2e.test"
        if not e2e.is_file():
            pytest.skip(f"no e2e.test in {given} (TKEDISTRO_REAL_BIN_DIR)")
        return src, e2e
    root = refresh_persistent_distro(monkeypatch)
    result = CliRunner().invoke(
        app, ["--root", str(root), "build", "1.20", "--with-conformance-tools"])
    assert result.exit_code == 0, result.output
    return root / "_src/1.20", root / "_output/1.20/bin/linux/amd64/e2e.test"


@pytest.mark.docker
@pytest.mark.timeout(3600)
def test_e2e_test_lists_exactly_the_redirected_names(built: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    src, e2e = built
    catalog = load_catalog(src)
    repo_list_file = write_repo_list(tmp_path / "repo-list.yaml",
                                     repo_list(catalog, "127.0.0.1:5000"))

    listed = subprocess.run([str(e2e), "--list-images"], capture_output=True, text=True,
                            check=True, env={**os.environ,
                                             "KUBE_TEST_REPO_LIST": str(repo_list_file)})
    names = set(listed.stdout.split())

    assert names == {redirect(c.ref, catalog, "127.0.0.1:5000") for c in catalog.all_configs}
    assert "127.0.0.1:5000/k8s.gcr.io/e2e-test-images/agnhost:2.21" in names
    assert "invalid.com/invalid/alpine:3.1" in names  # still fails, as the spec expects
