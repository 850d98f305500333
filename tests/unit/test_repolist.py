"""KUBE_TEST_REPO_LIST: every registry to the local one, the expect-failure ones untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.unit.test_catalog import write_tree
from tkedistro.conformance.catalog import Catalog, load_catalog
from tkedistro.conformance.repolist import redirect, repo_list, write_repo_list
from tkedistro.core.errors import ClusterError

REGISTRY = "127.0.0.1:5000"


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return load_catalog(write_tree(tmp_path / "tree"))


def test_repo_list_keeps_the_original_host_as_a_path_segment(catalog: Catalog) -> None:
    assert repo_list(catalog, REGISTRY) == {
        "dockerLibraryRegistry": "127.0.0.1:5000/docker.io/library",
        "e2eRegistry": "127.0.0.1:5000/gcr.io/kubernetes-e2e-test-images",
        "gcRegistry": "127.0.0.1:5000/k8s.gcr.io",
        "invalidRegistry": "invalid.com/invalid",
        "promoterE2eRegistry": "127.0.0.1:5000/k8s.gcr.io/e2e-test-images",
    }


def test_redirect_names_each_needed_image_in_the_local_registry(catalog: Catalog) -> None:
    names = {n.ref: redirect(n.ref, catalog, REGISTRY + "/") for n in catalog.needs}

    assert names["k8s.gcr.io/e2e-test-images/agnhost:2.21"] == (
        "127.0.0.1:5000/k8s.gcr.io/e2e-test-images/agnhost:2.21")
    assert names["k8s.gcr.io/pause:3.2"] == "127.0.0.1:5000/k8s.gcr.io/pause:3.2"
    assert names["invalid.com/invalid/alpine:3.1"] == "invalid.com/invalid/alpine:3.1"


def test_the_repo_list_file_is_yaml_the_suite_reads(catalog: Catalog, tmp_path: Path) -> None:
    mapping = repo_list(catalog, REGISTRY)
    path = write_repo_list(tmp_path / "conformance" / "repo-list.yaml", mapping)

    text = path.read_text()
    assert text.splitlines()[0] == "dockerLibraryRegistry: 127.0.0.1:5000/docker.io/library"
    assert YAML(typ="safe").load(text) == mapping
    assert [p.name for p in path.parent.iterdir()] == ["repo-list.yaml"]  # no temp file left


def test_an_image_of_no_known_registry_is_an_error(catalog: Catalog) -> None:
    with pytest.raises(ClusterError, match="quay.io/x/y:1: no registry of the suite's image "
                                           "manifest serves this image"):
        redirect("quay.io/x/y:1", catalog, REGISTRY)


@pytest.mark.parametrize("bad", ["", "http://127.0.0.1:5000", "host name:5000"])
def test_a_registry_address_with_a_scheme_or_space_is_refused(catalog: Catalog, bad: str) -> None:
    with pytest.raises(ClusterError, match="expected a registry address such as 127.0.0.1:5000"):
        repo_list(catalog, bad)
