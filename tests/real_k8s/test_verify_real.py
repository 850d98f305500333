"""``tkedistro verify`` on the real v1.20.2 release: the persistent distro's build passes
(unsigned: said so); a copy of its output with one byte flipped in a server tarball and one in
a layer of the kube-proxy image fails, naming each. The copy links the build's files and gets
its own copy of each file it changes, so the persistent output is only read."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.releasefolder import first_layer, flip_blob_byte, flip_byte
from tkedistro.cli.app import app
from tkedistro.core.workspace import Workspace

pytestmark = [pytest.mark.real_k8s, pytest.mark.timeout(3600)]
TARBALL = "release/kubernetes-server-linux-arm64.tar.gz"
ARCHIVE = "images/kube-proxy.oci.tar"


def _own(path: Path) -> Path:
    """``path``, no longer a link to the build's file (changing it leaves that one alone)."""
    own = path.with_name(path.name + ".own")
    shutil.copyfile(path, own)
    own.replace(path)
    return path


def test_verify_passes_the_real_release_and_names_a_flipped_tarball_and_layer(
        built_release: Workspace, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--root", str(built_release.root), "verify", "1.20"])
    assert result.exit_code == 0, result.output
    shown = result.stdout.splitlines()
    assert "signatures not checked: no --key (or TKEDISTRO_VERIFY_KEY) given" in shown
    assert shown[-1].startswith("verify: 0 problems in ") and shown[-1].endswith(" 5 images")

    copy = tmp_path / "site" / "1.20"
    shutil.copytree(built_release.output_dir("1.20"), copy, copy_function=os.link)
    flip_byte(_own(copy / TARBALL), 5_000_000)
    layer = first_layer(copy / ARCHIVE, "linux/arm64")
    flip_blob_byte(copy / ARCHIVE, layer, 12345)  # writes a new archive in place of the link
    result = CliRunner().invoke(app, ["verify", str(copy)])
    assert result.exit_code == 26
    shown = result.stdout.splitlines()
    assert (f"sums: {TARBALL}: does not match SHA256SUMS or SHA512SUMS (the file changed "
            "after the build)") in shown
    assert any(line.startswith(f"image: {ARCHIVE}: blob {layer} (layer of linux/arm64 "
                               "manifest) does not match its digest") for line in shown)
    assert shown[-1] == "verify: 3 problems"  # the tarball, the archive's sums, its layer
