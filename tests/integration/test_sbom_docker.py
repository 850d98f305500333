"""Docker tier: the SBOM's per-binary Go modules against a binary the real Go 1.15 of the
builder image links in GOPATH mode from vendor/, the way Kubernetes 1.20 builds.

The tree vendors two modules and the program imports one: the SBOM must say the binary links
that one only, and ``go version -m`` must indeed have nothing to say (why the SBOM reads the
function names instead).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from tests.conftest import REPO
from tkedistro.artifacts.context import ReleaseContext
from tkedistro.artifacts.gomodules import linked_modules, load_modules
from tkedistro.artifacts.sbom import write_sbom
from tkedistro.model.manifest import load_manifest

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

BUILDER = load_manifest(REPO / "releases" / "1.20.yaml").builder.image
MODULES_TXT = """\
# example.com/used v1.2.3 => example.com/used v1.2.3
## explicit
example.com/used/greet
# example.com/unused v0.1.0 => example.com/unused v0.1.0
## explicit
example.com/unused/noise
"""
MAIN = 'package main\n\nimport "example.com/used/greet"\n\nfunc main() { greet.Hello() }\n'
GREET = 'package greet\n\nimport "fmt"\n\nfunc Hello() { fmt.Println("hello") }\n'
NOISE = 'package noise\n\nimport "fmt"\n\nfunc Noise() { fmt.Println("noise") }\n'


def _tree(root: Path) -> None:
    files = {"go.mod": "module k8s.io/kubernetes\n\ngo 1.15\n",
             "vendor/modules.txt": MODULES_TXT, "cmd/kube-proxy/main.go": MAIN,
             "vendor/example.com/used/greet/greet.go": GREET,
             "vendor/example.com/unused/noise/noise.go": NOISE}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def _in_builder(tree: Path, script: str) -> str:
    done = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--user", "0",
         "-v", f"{tree}:/gopath/src/k8s.io/kubernetes", "-w", "/gopath/src/k8s.io/kubernetes",
         "-e", "GOPATH=/gopath", "-e", "GO111MODULE=off", "-e", "GOCACHE=/tmp/gocache",
         BUILDER, "sh", "-c", script],
        capture_output=True, text=True, check=False, timeout=240)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_sbom_names_the_modules_a_real_gopath_binary_links(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _tree(tree)
    out_rel = "_output/bin/linux/amd64/kube-proxy"
    shown = _in_builder(tree, f"go build -ldflags '-s -w' -o {out_rel} ./cmd/kube-proxy && "
                              f"go version -m {out_rel}")
    assert "\tmod\t" not in shown and "\tdep\t" not in shown  # GOPATH mode: no module list
    out = tree / "_output"
    binary = out / "bin/linux/amd64/kube-proxy"
    modules = load_modules(tree)
    assert linked_modules(binary, modules, "k8s.io/kubernetes") == frozenset({"example.com/used"})
    data = binary.read_bytes()
    files = {"bin/linux/amd64/kube-proxy": {"sha256": hashlib.sha256(data).hexdigest(),
                                            "sha512": hashlib.sha512(data).hexdigest()}}
    ctx = ReleaseContext(
        release="1.20", distro_version="v1.20.2-tke.1",
        upstream_url="https://github.com/kubernetes/kubernetes.git", tag="v1.20.2",
        upstream_commit="0" * 40, tree_commit="1" * 40, tree=tree,
        source_date_epoch=1610544000, platforms=("linux/amd64",), components=("kube-proxy",),
        image_components=(), patches=(), builder_image=BUILDER,
        builder_image_id="sha256:" + "2" * 64, go_version="1.15.15", tool_version="0.1.0")
    path = write_sbom(out, ctx, files, [])
    assert validate_full_spdx_document(parse_file(str(path))) == []
    sbom = json.loads(path.read_text())
    names = {p["SPDXID"]: p["name"] for p in sbom["packages"]}
    linked = {names[r["relatedSpdxElement"]] for r in sbom["relationships"]
              if r["relationshipType"] == "STATIC_LINK"}
    assert linked == {"example.com/used"}
