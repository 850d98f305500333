"""The release manifest model and loader: typed values, every problem at once, file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.conftest import REPO
from tests.helpers.manifests import manifest_text
from tkedistro.core.errors import ManifestError, ReleaseNotFoundError
from tkedistro.model.manifest import (
    COMPONENTS,
    SCHEMA_VERSION,
    list_release_names,
    load_manifest,
    parse_manifest,
    update_pin,
)

GOOD = manifest_text(components=("kubelet", "kubectl"), platforms=None, patches=None, extra="""\
patches:
  - file: patches/1.20/0001-kmem.patch
  - file: patches/1.20/0002-plain.diff
    subject: Plain diff
""")
FILE = "releases/1.20.yaml"


def parse(text: str) -> list[str]:
    """The problems ``parse_manifest`` reports for ``text`` (none: the test fails)."""
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, Path(FILE), FILE)
    assert info.value.exit_code == 3
    return info.value.problems


def test_the_repo_release_1_20_pins_the_issue_values() -> None:
    manifest = load_manifest(REPO / "releases" / "1.20.yaml")

    assert manifest.schema_version == SCHEMA_VERSION == 1
    assert manifest.release == "1.20"
    assert manifest.upstream.url == "https://github.com/kubernetes/kubernetes.git"
    assert manifest.upstream.tag == "v1.20.2"
    assert manifest.upstream.commit == "faecb196815e248d3ecfb03c680a4507229c2a56"
    assert manifest.distro_version == "v1.20.2-tke.1"
    assert manifest.go.version.startswith("1.15.")
    assert manifest.components == COMPONENTS
    assert manifest.platforms == ("linux/amd64", "linux/arm64")
    assert manifest.images == ("kube-apiserver", "kube-controller-manager", "kube-scheduler",
                               "kube-proxy", "pause")


def test_good_manifest_is_typed_frozen_and_defaults_platforms() -> None:
    manifest = parse_manifest(GOOD, Path(FILE), FILE)

    assert manifest.components == ("kubelet", "kubectl")
    assert manifest.platforms == ("linux/amd64",)
    assert [p.file for p in manifest.patches] == [
        "patches/1.20/0001-kmem.patch", "patches/1.20/0002-plain.diff"
    ]
    assert manifest.patches[1].subject == "Plain diff"
    with pytest.raises(ValidationError):
        manifest.upstream.tag = "v1.20.3"


def test_summary_uses_the_yaml_key_names() -> None:
    summary = parse_manifest(GOOD, Path(FILE), FILE).summary()

    assert summary["schema"] == 1
    assert "path" not in summary
    assert summary["patches"][0] == {"file": "patches/1.20/0001-kmem.patch", "subject": None}


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    text = (GOOD.replace("tag: v1.20.2", "tag: 1.20.2")
            .replace("faecb196815e248d3ecfb03c680a4507229c2a56", "faecb19")
            .replace("[kubelet, kubectl]", "[kubelett, kubectl]")
            .replace("builder:", "buildr:"))

    assert parse(text) == [
        f"{FILE}: builder: required key is missing",
        f"{FILE}:5: upstream.tag: expected a tag like v1.20.2, got '1.20.2'",
        f"{FILE}:6: upstream.commit: expected a full 40-character lowercase hex commit SHA, "
        "got 'faecb19'",
        f"{FILE}:10: buildr: unknown key; did you mean 'builder'? (allowed: schema, release, "
        "upstream, distro_version, go, builder, components, platforms, patches, images, debian)",
        f"{FILE}:12: components[0]: unknown value 'kubelett'; did you mean 'kubelet'? "
        "(allowed: kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, "
        "kubelet, kubectl, kubeadm)",
    ]


def test_nested_unknown_key_suggests_the_field_of_that_mapping() -> None:
    text = GOOD.replace("    subject: Plain diff", "    subjet: Plain diff")

    assert parse(text) == [
        f"{FILE}:16: patches[1].subjet: unknown key; did you mean 'subject'? "
        "(allowed: file, subject)"
    ]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('release: "1.20"', "release: 1.20",
         f'{FILE}:2: release: expected a release name like "1.20", got the number 1.2; '
         "quote it in YAML"),
        ('version: "1.15.15"', "version: 1.15",
         f'{FILE}:9: go.version: expected a Go version like "1.15.15", got the number 1.15; '
         "quote it in YAML"),
        ("components: [kubelet, kubectl]", "components: []",
         f"{FILE}:12: components: expected at least one entry, got []"),
        ("components: [kubelet, kubectl]", "components: [kubelet]\nplatforms: [linux/arm]",
         f"{FILE}:13: platforms[0]: unknown value 'linux/arm'; did you mean 'linux/arm64'? "
         "(allowed: linux/amd64, linux/arm64)"),
        (GOOD[GOOD.index("upstream:"):GOOD.index("distro_version")], "upstream: github\n",
         f"{FILE}:3: upstream: expected a mapping of keys, got 'github'"),
        ("distro_version: v1.20.2-tke.1", "distro_version: 1.20.2",
         f"{FILE}:7: distro_version: expected a version like v1.20.2-tke.1, got '1.20.2'"),
        ("schema: 1", "schema: 2",
         f"{FILE}:1: schema: unsupported schema version 2; this tkedistro reads 1"),
        ("schema: 1\n", "",
         f"{FILE}: schema: required key is missing"),
    ],
    ids=["unquoted-release", "go-version-number", "no-components", "bad-platform",
         "scalar-for-mapping", "bad-distro-version", "schema-2", "no-schema"],
)
def test_one_bad_value(old: str, new: str, problem: str) -> None:
    assert old in GOOD
    assert parse(GOOD.replace(old, new)) == [problem]


def test_yaml_syntax_error_gives_file_and_line() -> None:
    text = GOOD.replace("components: [kubelet, kubectl]", "components: [kubelet, kubectl")

    assert parse(text) == [
        f"{FILE}:13: YAML syntax error: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence started on line 12)"
    ]


def test_duplicate_key_is_a_syntax_error_with_line() -> None:
    assert parse(GOOD.replace("schema: 1\n", "schema: 1\nschema: 1\n")) == [
        f'{FILE}:2: YAML syntax error: found duplicate key "schema" with value "1" '
        '(original value: "1")'
    ]


def test_top_level_must_be_a_mapping() -> None:
    assert parse("- kubelet\n") == [f"{FILE}: expected a mapping of keys at the top level"]


def test_release_must_match_the_file_name() -> None:
    assert parse(GOOD.replace('release: "1.20"', 'release: "1.21"')) == [
        f"{FILE}:2: release: '1.21' does not match the file name (expected '1.20')"
    ]


def test_missing_manifest_is_release_not_found(tmp_path: Path) -> None:
    with pytest.raises(ReleaseNotFoundError) as info:
        load_manifest(tmp_path / "1.99.yaml", "releases/1.99.yaml")

    assert info.value.problems == ["releases/1.99.yaml: no such manifest (releases: none)"]
    assert info.value.exit_code == 3


def test_release_names_sort_by_version(tmp_path: Path) -> None:
    for name in ("1.9", "1.20", "1.10", "notes"):
        (tmp_path / f"{name}.yaml").write_text("")
    (tmp_path / "README.md").write_text("")

    assert list_release_names(tmp_path) == ["1.9", "1.10", "1.20", "notes"]


def test_update_pin_keeps_comments_and_existing_patch_entries(tmp_path: Path) -> None:
    path = tmp_path / "1.20.yaml"
    path.write_text(GOOD.replace("  tag: v1.20.2", "  tag: v1.20.2   # the pinned tag"))

    update_pin(path, tag="v1.20.3", commit="a" * 40, distro_version="v1.20.3-tke.1",
               patch_files=["patches/1.20/0002-plain.diff", "patches/1.20/0003-new.patch"])

    text = path.read_text()
    assert "tag: v1.20.3   # the pinned tag" in text
    manifest = parse_manifest(text, path, FILE)
    assert (manifest.upstream.commit, manifest.distro_version) == ("a" * 40, "v1.20.3-tke.1")
    assert [(p.file, p.subject) for p in manifest.patches] == [
        ("patches/1.20/0002-plain.diff", "Plain diff"), ("patches/1.20/0003-new.patch", None)
    ]


def test_an_image_of_a_component_that_is_not_built_is_refused(tmp_path: Path) -> None:
    text = (REPO / "releases" / "1.20.yaml").read_text()
    text = text.replace("  - kube-proxy\n  - kubelet", "  - kubelet", 1)
    path = tmp_path / "1.20.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as err:
        load_manifest(path, "releases/1.20.yaml")
    assert err.value.problems[0].startswith("releases/1.20.yaml:")
    assert err.value.problems[0].endswith(
        ": images: kube-proxy not in components (an image holds the component's binary: add "
        "it to components or drop the image)")
