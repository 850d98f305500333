"""The SBOM over the real v1.20.2 tree and its real binaries, and the SBOMs of the real
images (the Debian component base of each platform, made by debootstrap).

The module test reads ``vendor/modules.txt`` of the local v1.20.2 fixture (conftest.py) with
``git show``. The SBOM test builds the persistent distro through the tool (a no-op when warm)
and writes the SBOM for its binaries into a temporary folder that links to them, so the build's
own output folder is only read.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from tests.real_k8s.conftest import FIXTURE_COMMIT, FIXTURE_TAG, build_persistent_distro
from tkedistro.artifacts.context import PatchInfo, ReleaseContext
from tkedistro.artifacts.gomodules import linked_modules, load_modules, parse_modules
from tkedistro.artifacts.sbom import write_sbom
from tkedistro.core.workspace import Workspace
from tkedistro.model.patches import parse_patch

pytestmark = [pytest.mark.real_k8s]


def test_real_modules_txt_lists_the_vendored_modules(k8s_upstream: Path) -> None:
    text = subprocess.run(["git", "show", f"{FIXTURE_TAG}:vendor/modules.txt"], cwd=k8s_upstream,
                          capture_output=True, text=True, check=True).stdout
    modules = {m.path: m for m in parse_modules(text)}
    package_lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    # every package line belongs to a module, none is lost to the sorted wildcard lines
    assert sum(m.packages for m in modules.values()) == len(package_lines) == 1854
    assert len(modules) == 242
    staging = sorted(p for p, m in modules.items() if m.in_tree)
    assert len(staging) == 24 and "k8s.io/api" in staging and "k8s.io/client-go" in staging
    assert modules["github.com/spf13/cobra"].used_version == "v1.1.1"
    assert modules["github.com/google/cadvisor"].used_version == "v0.38.6"


def _sums(path: Path) -> dict[str, str]:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()}


def test_real_sbom_names_what_each_binary_links(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    workspace = build_persistent_distro(monkeypatch)
    built = workspace.root / "_output" / "1.20"
    tree = workspace.root / "_src" / "1.20"
    info = json.loads((built / "build-info.json").read_text())
    out = tmp_path / "out"
    out.mkdir()
    (out / "bin").symlink_to(built / "bin")
    files = {p.relative_to(out).as_posix(): _sums(p)
             for p in sorted((out / "bin").glob("*/*/*")) if p.is_file()}
    patches = tuple(
        PatchInfo(p["file"], p["sha256"], parsed.subject, parsed.trailers)
        for p in info["patches"] for parsed in [parse_patch(workspace.root / p["file"])])
    ctx = ReleaseContext(
        release="1.20", distro_version=info["distro_version"],
        upstream_url=info["upstream"]["url"], tag=FIXTURE_TAG, upstream_commit=FIXTURE_COMMIT,
        tree_commit=info["tree_commit"], tree=tree, source_date_epoch=1610544000,
        platforms=tuple(info["platforms"]), components=tuple(info["components"]),
        image_components=(), patches=patches, builder_image=info["builder"]["image"],
        builder_image_id=info["builder"]["image_id"], go_version=info["builder"]["go_version"],
        tool_version="0.1.0")
    path = write_sbom(out, ctx, files, [])
    assert validate_full_spdx_document(parse_file(str(path))) == []
    sbom = json.loads(path.read_text())
    comments = "\n".join(p.get("comment", "") for p in sbom["packages"])
    assert all(f"Upstream-Status: {p.trailers['Upstream-Status']}" in comments
               for p in patches if "Upstream-Status" in p.trailers)
    modules = load_modules(tree)
    platform = info["platforms"][0]
    scheduler = linked_modules(built / "bin" / platform / "kube-scheduler", modules,
                               "k8s.io/kubernetes")
    kubelet = linked_modules(built / "bin" / platform / "kubelet", modules, "k8s.io/kubernetes")
    assert scheduler is not None and kubelet is not None
    assert "k8s.io/api" in scheduler and "github.com/google/cadvisor" not in scheduler
    assert "github.com/google/cadvisor" in kubelet
    assert len(scheduler) < len(modules)


def _image_sbom(archive: Path) -> dict[str, object]:
    """The SPDX document attached to an archive's image index (its one referrer)."""
    import tarfile

    with tarfile.open(archive) as tar:
        def read(name: str) -> dict[str, object]:
            return json.loads(tar.extractfile(name).read())  # type: ignore[union-attr,no-any-return]

        listing = read("index.json")
        manifests = listing["manifests"]
        assert isinstance(manifests, list)
        index, referrer = manifests
        manifest = read(f"blobs/sha256/{referrer['digest'][7:]}")
        assert manifest["subject"]["digest"] == index["digest"]  # type: ignore[index]
        layer = manifest["layers"][0]  # type: ignore[index]
        return read(f"blobs/sha256/{layer['digest'][7:]}")


def test_real_images_list_their_debian_packages_in_every_sbom(
        built_release: Workspace, tmp_path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    out = built_release.output_dir("1.20")
    sbom_path = out / "sbom.spdx.json"
    assert validate_full_spdx_document(parse_file(str(sbom_path))) == []
    sbom = json.loads(sbom_path.read_text())
    images = json.loads((out / "images" / "images.json").read_text())["images"]
    purls = {r["referenceLocator"]: p for p in sbom["packages"]
             for r in p.get("externalRefs", [])}
    debs = [purl for purl in purls if purl.startswith("pkg:deb/debian/")]
    for arch in ("amd64", "arm64"):
        for name in ("iptables", "libc6", "conntrack", "ipset"):
            assert any(p.startswith(f"pkg:deb/debian/{name}@") and f"arch={arch}" in p
                       for p in debs), (name, arch)
    iptables = next(purls[p] for p in debs if p.startswith("pkg:deb/debian/iptables@"))
    assert "GPL-2.0" in iptables["licenseDeclared"]  # its copyright file stays in the base
    for image in images:
        doc = _image_sbom(out / image["archive"])
        path = tmp_path / f"{image['component']}.spdx.json"
        path.write_text(json.dumps(doc))
        assert validate_full_spdx_document(parse_file(str(path))) == []
        names = {p["name"] for p in doc["packages"]}  # type: ignore[attr-defined]
        assert ("iptables" in names) == (image["component"] != "pause")
    text = (out / "sbom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    assert "  sbom.cdx.json\n" in (out / "SHA256SUMS").read_text()
    print(f"SBOM: {sbom_path.stat().st_size} bytes SPDX, {len(text)} CycloneDX, "
          f"{len(sbom['packages'])} packages ({len(debs)} Debian)")
