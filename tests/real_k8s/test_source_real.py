"""real_k8s tier: `tkedistro source 1.20` on the real Kubernetes v1.20.2 tree with the
project's own series (which may be empty), plus a synthetic patch on top."""

from __future__ import annotations

import difflib
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.real_k8s.conftest import FIXTURE_COMMIT, copy_distro
from tkedistro.model.manifest import load_manifest

pytestmark = [pytest.mark.real_k8s, pytest.mark.timeout(900)]

runner = CliRunner()


def source(root: Path, *args: str) -> Result:
    from tkedistro.cli.app import app

    return runner.invoke(app, ["--root", str(root), "source", "1.20", *args])


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout.strip()


def readme_patch(upstream: Path, line: str) -> str:
    """A git format-patch style mail adding ``line`` to v1.20.2's README.md."""
    old = git(upstream, "show", f"{FIXTURE_COMMIT}:README.md").splitlines(keepends=True)
    new = [old[0], "\n", line + "\n", *old[1:]]
    diff = "".join(difflib.unified_diff(old, new, "a/README.md", "b/README.md"))
    return (
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: TKE Dev <dev@example.invalid>\n"
        "Date: Tue, 2 Feb 2021 10:00:00 +0800\n"
        "Subject: [PATCH] README: name the distribution\n\n"
        "Patch-Kind: carry\nUpstream-Ref: none\nUpstream-Status: not-submitted\n"
        "---\n"
        f"diff --git a/README.md b/README.md\n{diff}"
        "-- \n2.39.5\n\n"
    )


@pytest.fixture()
def distro(tmp_path: Path, k8s_upstream: Path) -> Path:
    return copy_distro(tmp_path / "distro", k8s_upstream)


def test_project_series_applies_to_the_real_tree_and_reruns_as_up_to_date(
    distro: Path,
) -> None:
    count = len(load_manifest(distro / "releases" / "1.20.yaml").patches)
    result = source(distro)
    assert result.exit_code == 0, result.output
    src = distro / "_src" / "1.20"
    assert git(src, "rev-parse", f"HEAD~{count}") == FIXTURE_COMMIT
    assert git(src, "rev-list", "--count", f"{FIXTURE_COMMIT}..HEAD") == str(count)
    assert set(git(src, "log", "--format=%ce", f"{FIXTURE_COMMIT}..HEAD").split()) <= {
        "tkedistro@invalid"}
    assert (src / "hack" / "lib" / "version.sh").is_file()
    assert (src / "vendor" / "modules.txt").is_file()
    assert git(src, "status", "--porcelain") == ""
    again = source(distro)
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("_src/1.20: up to date: v1.20.2 (84fe13fd0283) + ")


def test_synthetic_patch_on_the_real_tree_is_applied_and_reapplied_alone(
    distro: Path, k8s_upstream: Path
) -> None:
    manifest = distro / "releases" / "1.20.yaml"
    count = len(load_manifest(manifest).patches)
    (distro / "patches" / "1.20").mkdir(parents=True, exist_ok=True)
    patch = distro / "patches" / "1.20" / "9999-readme.patch"
    patch.write_text(readme_patch(k8s_upstream, "TKE distribution"))
    text = manifest.read_text().replace("patches: []", "patches:")
    manifest.write_text(text.rstrip("\n") + "\n  - file: patches/1.20/9999-readme.patch\n")
    result = source(distro)
    assert result.exit_code == 0, result.output
    total = count + 1
    assert (f"  {total}/{total}  applied    patches/1.20/9999-readme.patch  "
            "README: name the distribution") in result.stdout
    src = distro / "_src" / "1.20"
    assert "TKE distribution" in (src / "README.md").read_text()
    assert git(src, "log", "-1", "--format=%an|%aI|%cn|%cI") == (
        "TKE Dev|2021-02-02T10:00:00+08:00|tkedistro|2021-02-02T10:00:00+08:00")
    below = git(src, "rev-parse", "HEAD~1")
    patch.write_text(readme_patch(k8s_upstream, "TKE distribution, edited"))
    edited = source(distro)
    assert edited.exit_code == 0, edited.output
    methods = [line.split()[1] for line in edited.stdout.splitlines()[1:]]
    assert methods == ["unchanged"] * count + ["applied"]
    assert git(src, "rev-parse", "HEAD~1") == below
    assert "TKE distribution, edited" in (src / "README.md").read_text()
    assert source(distro).stdout.startswith("_src/1.20: up to date")
