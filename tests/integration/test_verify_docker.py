"""Docker tier: ``tkedistro verify`` on what a real build of the synthetic upstream ships
(binaries, tarballs, pause as an OCI archive, sums, SBOM, provenance): the release passes,
unsigned (said so); a copy with one byte flipped in a tarball and one in a layer blob inside
the OCI archive fails naming both; the pushed image verifies by digest from the registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.registrylogin import log_in
from tests.helpers.releasefolder import first_layer, flip_blob_byte, flip_byte
from tests.integration.test_build_arm64_docker import build, go_cache, root
from tkedistro.cli.app import app
from tkedistro.engine import skopeo
from tkedistro.engine.registry import LocalRegistry

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]
__all__ = ["go_cache", "root"]  # fixtures: a distro of the synthetic upstream, images: [pause]
TARBALL = "release/kubernetes-client-linux-amd64.tar.gz"
ARCHIVE = "images/pause.oci.tar"


def test_verify_passes_a_built_release_and_names_a_flipped_tarball_and_layer(
        root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = build(root, "-p", "linux/amd64")
    assert code == 0, out
    result = CliRunner().invoke(app, ["--root", str(root), "verify", "1.20"])
    assert result.exit_code == 0, result.output
    shown = result.stdout.splitlines()
    assert shown[0] == "signatures not checked: no --key (or TKEDISTRO_VERIFY_KEY) given"
    assert shown[-1].startswith("verify: 0 problems in ") and shown[-1].endswith(", 1 image")

    copy = tmp_path / "site" / "1.20"
    shutil.copytree(root / "_output" / "1.20", copy)
    flip_byte(copy / TARBALL)
    layer = first_layer(copy / ARCHIVE)
    flip_blob_byte(copy / ARCHIVE, layer)
    result = CliRunner().invoke(app, ["verify", str(copy)])
    assert result.exit_code == 26
    shown = result.stdout.splitlines()
    assert (f"sums: {TARBALL}: does not match SHA256SUMS or SHA512SUMS (the file changed "
            "after the build)") in shown
    assert any(line.startswith(f"image: {ARCHIVE}: blob {layer} (layer of linux/amd64 "
                               "manifest) does not match its digest") for line in shown)
    assert f"{copy}: verify: " in result.output

    images = json.loads((root / "_output/1.20/images/images.json").read_text())["images"]
    digest = images[0]["index_digest"]
    with LocalRegistry(tmp_path / "registry") as registry:
        log_in(registry, tmp_path / "login", monkeypatch)
        ref = f"{registry.address}/tkedistro/pause"
        skopeo.push_archive(root / "_output" / "1.20" / ARCHIVE, f"{ref}:v1")
        result = CliRunner().invoke(app, ["verify", f"{ref}@{digest}"])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[-1] == "verify: 0 problems in 0 files, 1 image"
