"""The SPDX 2.3 SBOM and the in-toto/SLSA provenance statement of a release output.

A tiny Kubernetes-shaped tree (go.mod, a vendor/modules.txt sorted the way Kubernetes' vendor
script leaves it, with staging replaces), a fake binary whose function names link two of the
vendored modules, a tarball and one image. The SBOM is read back and validated by spdx-tools
(the SPDX project's own library); the statement is checked against the in-toto Statement v1 /
SLSA Provenance v1 shape with jsonschema.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from tkedistro.artifacts.context import PatchInfo, ReleaseContext
from tkedistro.artifacts.gomodules import load_modules, parse_modules
from tkedistro.artifacts.provenance import release_subjects, write_provenance
from tkedistro.artifacts.sbom import write_sbom
from tkedistro.core.errors import BuildError

MODULES_TXT = """\
# github.com/Azure/autorest v14.2.0+incompatible => github.com/Azure/autorest v14.2.0+incompatible
## explicit
github.com/Azure/autorest
# github.com/Azure/autorest => github.com/Azure/autorest v14.2.0+incompatible
# cloud.google.com/go v0.54.0 => cloud.google.com/go v0.54.0
# cloud.google.com/go => cloud.google.com/go v0.54.0
# cloud.google.com/go/bigquery => cloud.google.com/go/bigquery v1.4.0
cloud.google.com/go/compute/metadata
# github.com/spf13/pflag v1.0.5 => github.com/spf13/pflag v1.0.5
## explicit
github.com/spf13/pflag
# gopkg.in/yaml.v2 v2.2.8 => gopkg.in/yaml.v2 v2.2.8
gopkg.in/yaml.v2
# golang.org/x/net v0.0.0-20201110031124-69a78807bb2b => example.org/fork/net v0.1.0
golang.org/x/net/http2
golang.org/x/net/http2/hpack
# k8s.io/api v0.0.0 => ./staging/src/k8s.io/api
## explicit
# k8s.io/api => ./staging/src/k8s.io/api
k8s.io/api/core/v1
k8s.io/api/apps/v1
# k8s.io/unused v1.0.0 => k8s.io/unused v1.0.0
# sigs.k8s.io/yaml => sigs.k8s.io/yaml v1.2.0
"""
UPSTREAM = "0123456789abcdef0123456789abcdef01234567"
TREE = "fedcba9876543210fedcba9876543210fedcba98"
INDEX = "sha256:" + "a" * 64
AMD64 = "sha256:" + "b" * 64
REF = "tkedistro.local/k8s/kube-proxy:v1.20.2-tke.1"
PATCH = "patches/1.20/0001-kubelet-fix.patch"
UPSTREAM_REF = "https://github.com/kubernetes/kubernetes/pull/98000"


def sums(data: bytes) -> dict[str, str]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()}


@pytest.fixture
def release(tmp_path: Path) -> tuple[Path, ReleaseContext, dict[str, dict[str, str]], list[Any]]:
    tree = tmp_path / "tree"
    (tree / "vendor").mkdir(parents=True)
    (tree / "go.mod").write_text("module k8s.io/kubernetes\n\ngo 1.15\n")
    (tree / "vendor" / "modules.txt").write_text(MODULES_TXT)
    out = tmp_path / "out"
    binary = (b"\x7fELF...k8s.io/kubernetes/vendor/github.com/spf13/pflag.(*FlagSet).Parse\x00"
              b"k8s.io/kubernetes/vendor/k8s.io/api/core/v1.(*Pod).Reset\x00go1.15.15\x00")
    outputs = {"bin/linux/amd64/kube-proxy": binary, "release/kubernetes-server.tar.gz": b"tgz",
               "images/kube-proxy.oci.tar": b"oci archive"}
    for rel, data in outputs.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    files = {rel: sums(data) for rel, data in outputs.items()}
    images = [{"component": "kube-proxy", "ref": REF, "index_digest": INDEX,
               "manifests": {"linux/amd64": AMD64}, "archive": "images/kube-proxy.oci.tar"}]
    patch = PatchInfo(PATCH, hashlib.sha256(b"patch").hexdigest(), "kubelet: fix a thing",
                      {"Upstream-Ref": UPSTREAM_REF, "Upstream-Status": "Backport"})
    ctx = ReleaseContext(
        release="1.20", distro_version="v1.20.2-tke.1",
        upstream_url="https://github.com/kubernetes/kubernetes.git", tag="v1.20.2",
        upstream_commit=UPSTREAM, tree_commit=TREE, tree=tree, source_date_epoch=1610544000,
        platforms=("linux/amd64",), components=("kube-proxy",),
        image_components=("kube-proxy",), patches=(patch,),
        builder_image="tkedistro/builder:go1.15-bullseye",
        builder_image_id="sha256:" + "c" * 64, go_version="1.15.15", tool_version="0.1.0",
    )
    return out, ctx, files, images


def test_modules_txt_gives_each_package_to_its_module_and_marks_staging() -> None:
    modules = {m.path: m for m in parse_modules(MODULES_TXT)}
    # no package lines: k8s.io/unused and the wildcard-only sigs.k8s.io/yaml are not built in
    assert sorted(modules) == ["cloud.google.com/go", "github.com/Azure/autorest",
                               "github.com/spf13/pflag", "golang.org/x/net", "gopkg.in/yaml.v2",
                               "k8s.io/api"]
    # the metadata package follows the bigquery wildcard line but belongs to cloud.google.com/go
    assert modules["cloud.google.com/go"].packages == 1
    assert modules["k8s.io/api"].packages == 2 and modules["k8s.io/api"].in_tree
    net = modules["golang.org/x/net"]
    assert (net.used_path, net.used_version, net.in_tree) == ("example.org/fork/net", "v0.1.0",
                                                              False)


def _packages(sbom: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["SPDXID"]: p for p in sbom["packages"]}


def _purls(sbom: dict[str, Any]) -> set[str]:
    return {r["referenceLocator"] for p in sbom["packages"] for r in p.get("externalRefs", [])}


def _related(sbom: dict[str, Any], kind: str) -> set[tuple[str, str]]:
    return {(r["spdxElementId"], r["relatedSpdxElement"]) for r in sbom["relationships"]
            if r["relationshipType"] == kind}


def test_sbom_is_valid_spdx_23_and_names_what_was_shipped(release: Any) -> None:
    out, ctx, files, images = release
    path = write_sbom(out, ctx, files, images)
    assert path == out / "sbom.spdx.json"
    assert validate_full_spdx_document(parse_file(str(path))) == []
    sbom = json.loads(path.read_text())
    assert sbom["spdxVersion"] == "SPDX-2.3"
    assert sbom["creationInfo"]["created"] == "2021-01-13T13:20:00Z"
    packages = _packages(sbom)
    patch = next(p for p in packages.values() if p.get("packageFileName") == PATCH)
    assert f"Upstream-Ref: {UPSTREAM_REF}" in patch["comment"]
    assert "Upstream-Status: Backport" in patch["comment"]
    upstream = next(p for p in packages.values() if p["name"] == "kubernetes")
    assert upstream["downloadLocation"] == (
        "git+https://github.com/kubernetes/kubernetes.git@v1.20.2")
    assert UPSTREAM in upstream["sourceInfo"]
    binary = next(p for p in packages.values()
                  if p.get("packageFileName") == "bin/linux/amd64/kube-proxy")
    assert binary["primaryPackagePurpose"] == "APPLICATION"
    assert {c["algorithm"]: c["checksumValue"] for c in binary["checksums"]} == {
        "SHA256": files["bin/linux/amd64/kube-proxy"]["sha256"],
        "SHA512": files["bin/linux/amd64/kube-proxy"]["sha512"]}
    purls = _purls(sbom)
    assert "pkg:golang/github.com/spf13/pflag@v1.0.5" in purls
    assert "pkg:golang/github.com/Azure/autorest@v14.2.0%2Bincompatible" in purls
    assert "pkg:golang/example.org/fork/net@v0.1.0" in purls  # the replacement is compiled in
    assert not any("k8s.io/api" in p for p in purls)  # staging is the tree itself
    assert ("pkg:oci/kube-proxy@sha256:" + "b" * 64
            + "?arch=amd64&repository_url=tkedistro.local/k8s/kube-proxy&tag=v1.20.2-tke.1"
            ) in purls
    assert "pkg:golang/stdlib@1.15.15" in purls
    text = path.read_text()
    assert INDEX in text and ctx.builder_image in text


def test_sbom_relationships_tie_outputs_to_source_patches_and_tools(release: Any) -> None:
    out, ctx, files, images = release
    sbom = json.loads(write_sbom(out, ctx, files, images).read_text())
    by_name = {p.get("packageFileName") or p["name"]: p["SPDXID"] for p in sbom["packages"]}
    binary = by_name["bin/linux/amd64/kube-proxy"]
    tree = by_name["kubernetes-v1.20.2-tke.1-source"]
    assert (binary, tree) in _related(sbom, "GENERATED_FROM")
    assert (by_name[PATCH], tree) in _related(sbom, "PATCH_APPLIED")
    assert (tree, by_name["kubernetes"]) in _related(sbom, "DESCENDANT_OF")
    assert (by_name["images/kube-proxy.oci.tar"], binary) in _related(sbom, "CONTAINS")
    assert (by_name[ctx.builder_image], binary) in _related(sbom, "BUILD_TOOL_OF")
    assert (by_name["go"], binary) in _related(sbom, "BUILD_TOOL_OF")
    # what the binary's function names show it links, and nothing else
    assert {b for a, b in _related(sbom, "STATIC_LINK") if a == binary} == {
        by_name["github.com/spf13/pflag"], by_name["k8s.io/api"]}
    assert {b for a, b in _related(sbom, "CONTAINS") if a == tree} == {
        by_name[m.path] for m in load_modules(ctx.tree)}
    describes = _related(sbom, "DESCRIBES")
    assert describes == {("SPDXRef-DOCUMENT", by_name["tkedistro-kubernetes"])}


def test_sbom_and_provenance_bytes_depend_only_on_their_inputs(release: Any) -> None:
    out, ctx, files, images = release
    subjects = release_subjects(files, images)
    first = write_sbom(out, ctx, files, images).read_bytes()
    first_statement = write_provenance(out, ctx, subjects).read_bytes()
    assert write_sbom(out, ctx, files, images).read_bytes() == first
    assert write_provenance(out, ctx, subjects).read_bytes() == first_statement
    namespace = json.loads(first)["documentNamespace"]
    assert namespace.startswith("https://tkedistro.invalid/spdx/1.20/v1.20.2-tke.1-")
    changed = dict(files, **{"release/kubernetes-server.tar.gz": sums(b"other")})
    assert json.loads(write_sbom(out, ctx, changed, images).read_bytes())[
        "documentNamespace"] != namespace


DIGEST_SET = {"type": "object", "minProperties": 1,
              "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]+$"}}
DESCRIPTOR = {"type": "object", "anyOf": [{"required": ["uri"]}, {"required": ["digest"]}],
              "properties": {"uri": {"type": "string"}, "name": {"type": "string"},
                             "digest": DIGEST_SET, "annotations": {"type": "object"}}}
STATEMENT_SCHEMA = {
    "type": "object",
    "required": ["_type", "subject", "predicateType", "predicate"],
    "properties": {
        "_type": {"const": "https://in-toto.io/Statement/v1"},
        "predicateType": {"const": "https://slsa.dev/provenance/v1"},
        "subject": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "digest"],
            "properties": {"name": {"type": "string"}, "digest": DIGEST_SET}}},
        "predicate": {"type": "object", "required": ["buildDefinition", "runDetails"],
                      "properties": {
            "buildDefinition": {
                "type": "object",
                "required": ["buildType", "externalParameters", "resolvedDependencies"],
                "properties": {"buildType": {"type": "string", "format": "uri"},
                               "externalParameters": {"type": "object"},
                               "internalParameters": {"type": "object"},
                               "resolvedDependencies": {"type": "array", "items": DESCRIPTOR}}},
            "runDetails": {"type": "object", "required": ["builder"], "properties": {
                "builder": {"type": "object", "required": ["id"]},
                "metadata": {"type": "object"},
                "byproducts": {"type": "array", "items": DESCRIPTOR}}}}},
    },
}


def test_provenance_is_an_slsa_v1_statement_over_the_outputs(release: Any) -> None:
    out, ctx, files, images = release
    sbom = write_sbom(out, ctx, files, images)
    path = write_provenance(out, ctx, release_subjects(files, images))
    statement = json.loads(path.read_text())
    jsonschema.validate(statement, STATEMENT_SCHEMA)
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects == {**{rel: s["sha256"] for rel, s in files.items()}, REF: "a" * 64}
    assert [s["name"] for s in statement["subject"]] == sorted(subjects)
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"] == {"release": "1.20", "manifest": "releases/1.20.yaml"}
    deps = {d["name"]: d for d in build["resolvedDependencies"]}
    assert deps["kubernetes"]["digest"] == {"gitCommit": UPSTREAM}
    assert deps["kubernetes"]["uri"].startswith("git+https://github.com/kubernetes/")
    assert deps[PATCH]["digest"] == {"sha256": ctx.patches[0].sha256}
    assert deps[PATCH]["annotations"]["Upstream-Ref"] == UPSTREAM_REF
    assert deps[ctx.builder_image]["digest"] == {"sha256": "c" * 64}
    run = statement["predicate"]["runDetails"]
    assert "startedOn" not in run["metadata"]
    assert run["byproducts"] == [{"name": "sbom.spdx.json",
                                  "digest": {"sha256": hashlib.sha256(
                                      sbom.read_bytes()).hexdigest()}}]


def test_provenance_refuses_a_subject_without_a_sha256(release: Any) -> None:
    out, ctx, _, _ = release
    with pytest.raises(BuildError, match="provenance: images/x: not a sha256 digest: 'md5:00'"):
        write_provenance(out, ctx, {"images/x": "md5:00"})
    assert not (out / "provenance.intoto.json").exists()
