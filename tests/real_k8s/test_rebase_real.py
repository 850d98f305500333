"""real_k8s tier: `tkedistro rebase 1.20` on the real Kubernetes v1.20.2 tree.

The series is the project's own 1.20 patches (if any) topped up with small synthetic carry
patches to 20. An upstream tag ``v1.20.3-test`` is made by committing the series' first
patch upstream (plus an unrelated upstream change); the rebase must report that patch
"already upstream" naming the upstream commit, and apply the rest.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.real_k8s.conftest import FIXTURE_TAG, copy_distro
from tests.unit.test_rebase import make_app
from tkedistro.core.workspace import Workspace
from tkedistro.model.manifest import load_manifest
from tkedistro.source.prepare import prepare_source

pytestmark = [pytest.mark.real_k8s, pytest.mark.timeout(900)]

SERIES_SIZE = 20
TRAILERS = "Patch-Kind: carry\nUpstream-Ref: none\nUpstream-Status: not-submitted"
DATES = {"GIT_AUTHOR_DATE": "2021-02-02T10:00:00+0800",
         "GIT_COMMITTER_DATE": "2021-02-02T10:00:00+0800"}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    import os

    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})}).stdout.strip()


def top_up_series(distro: Path, work: Path) -> list[str]:
    """Synthetic carry patches (a comment appended to a kubelet file each) up to 20."""
    manifest = load_manifest(distro / "releases" / "1.20.yaml")
    files = [e.file for e in manifest.patches]
    out = distro / "patches" / "1.20"
    out.mkdir(parents=True, exist_ok=True)
    git(work, "checkout", "-q", "-B", "series", FIXTURE_TAG)
    for f in files:
        git(work, "am", "-q", "--3way", str(distro / f))
    targets = sorted(p for p in git(work, "ls-files", "pkg/kubelet/*.go").split()
                     if not p.endswith("_test.go"))
    for n in range(len(files) + 1, SERIES_SIZE + 1):
        path = work / targets[n * 7 % len(targets)]
        path.write_text(path.read_text() + f"\n// TKE carry patch {n}\n")
        git(work, "commit", "-q", "-a", "-m", f"kubelet: TKE marker {n}\n\n{TRAILERS}", env=DATES)
        name = git(work, "format-patch", "-1", "--full-index", f"--start-number={n}",
                   "-o", str(out))
        files.append(f"patches/1.20/{Path(name).name}")
    text = (distro / "releases" / "1.20.yaml").read_text()
    head, _, _ = text.partition("patches:")
    listed = "".join(f"  - file: {f}\n" for f in files)
    (distro / "releases" / "1.20.yaml").write_text(f"{head}patches:\n{listed}")
    return files


def test_rebase_of_the_1_20_series_drops_the_patch_taken_upstream(
        tmp_path: Path, k8s_upstream: Path, capsys: pytest.CaptureFixture[str]) -> None:
    upstream = tmp_path / "upstream.git"
    git(tmp_path, "clone", "-q", "--bare", str(k8s_upstream), str(upstream))
    distro = copy_distro(tmp_path / "distro", upstream)
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(upstream), str(work))
    files = top_up_series(distro, work)

    # Upstream takes our first patch (as a real backport would be: git am of the same mail).
    git(work, "checkout", "-q", "-B", "release-1.20", FIXTURE_TAG)
    git(work, "am", "-q", str(distro / files[0]))
    taken = git(work, "rev-parse", "HEAD")
    (work / "CHANGELOG" / "CHANGELOG-1.20.md").write_text("# v1.20.3-test\n")
    git(work, "commit", "-q", "-a", "-m", "CHANGELOG: v1.20.3-test", env=DATES)
    git(work, "tag", "-a", "v1.20.3-test", "-m", "v1.20.3-test", env=DATES)
    git(work, "push", "-q", str(upstream), "v1.20.3-test")
    shutil.rmtree(work)

    prepare_source(Workspace.discover(distro), "1.20")
    start = time.monotonic()
    res = CliRunner().invoke(make_app(), ["--root", str(distro), "rebase", "1.20",
                                          "--onto", "v1.20.3-test"])
    elapsed = time.monotonic() - start
    assert res.exit_code == 0, res.output
    rows = [line.split(None, 2) for line in res.stdout.splitlines()
            if line.startswith("  ") and line.split()[0].isdigit()]
    assert rows[0][1] == files[0]
    assert rows[0][2].startswith(f"already upstream — dropped: {taken[:12]} (patch-id) ")
    assert all(r[2] == "applied clean" for r in rows[1:]), res.stdout
    assert len(rows) == SERIES_SIZE
    m = load_manifest(distro / "releases" / "1.20.yaml")
    assert m.upstream.tag == "v1.20.3-test"
    assert [e.file for e in m.patches] == files[1:]
    with capsys.disabled():
        print(f"\nrebase of a {SERIES_SIZE}-patch series on the real tree: {elapsed:.2f} s")
