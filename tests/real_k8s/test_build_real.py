"""real_k8s tier: build kubectl from the real patched Kubernetes v1.20.2 tree in the offline
builder image and check the stamped version by running it.

The distro copy and the tkedistro cache live under /var/tmp/tkedistro-realk8s (not the
per-test HOME), so the prepared tree and Kubernetes' own Go cache in ``_src/1.20/_output``
survive between runs: the first run takes minutes, later ones about one.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.real_k8s.conftest import refresh_persistent_distro
from tkedistro.cli.app import app

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(3600)]



@pytest.fixture
def real_distro(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The persistent copy of this distro repo (current manifest and series), re-pinned."""
    return refresh_persistent_distro(monkeypatch)


def test_kubectl_from_the_real_tree_reports_the_distro_version(real_distro: Path) -> None:
    result = CliRunner().invoke(
        app, ["--root", str(real_distro), "build", "1.20", "-c", "kubectl", "--force"])
    assert result.exit_code == 0, result.output
    out = real_distro / "_output" / "1.20"
    info = json.loads((out / "build-info.json").read_text())
    assert info["builder"]["go_version"].startswith("1.15.")
    kubectl = out / "bin" / "linux" / "amd64" / "kubectl"
    version = subprocess.run([str(kubectl), "version", "--client"], capture_output=True,
                             text=True, check=True).stdout
    assert 'GitVersion:"v1.20.2-tke.1"' in version
    assert f'GitCommit:"{info["tree_commit"]}"' in version
    assert 'GitTreeState:"clean"' in version
    assert 'GoVersion:"go1.15.15"' in version
