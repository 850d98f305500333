"""real_k8s tier: `tkedistro bisect --go-test` names a patch injected into the real series.

A new distro (tests/real_k8s/bisect_series.py) pinned to the local v1.20.2 fixture, sharing
the persistent cache (its mirror), with a 5-patch series: the project's three 1.20 patches, an
injected patch at position 2 that halves ``MilliCPUToQuota``'s result (compiles; breaks
``TestMilliCPUToQuota``), a harmless note at 5. ``bisect 1.20 --go-test ./pkg/kubelet/cm/``
runs ``go test`` in the builder image at each position it picks and must name position 2.
The persistent distro's own 1.20 series is never touched. The time and steps are printed
(``-s``); bench/bench_bisect.py measures them against a naive linear run.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.real_k8s.bisect_series import INJECTED_SUBJECT, PACKAGE, make_bisect_distro
from tests.real_k8s.conftest import PERSIST
from tkedistro.cli.app import app

GO_CACHE = "_output/local/go/cache"  # Kubernetes' Go cache in its tree (build/gotest.py)

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(7200)]


def _warm_go_cache(distro: Path) -> None:
    """The new tree gets the persistent tree's Go cache, as a maintainer's tree has it after a
    build: hard links (Go's cache files are named by their content's or action's hash and
    never rewritten with other content), so the first check is not a cold compile of
    Kubernetes' dependencies."""
    prepared = CliRunner().invoke(app, ["--root", str(distro), "source", "1.20"])
    assert prepared.exit_code == 0, prepared.output
    warm = PERSIST / "distro" / "_src" / "1.20" / GO_CACHE
    if warm.is_dir():
        target = distro / "_src" / "1.20" / GO_CACHE
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-al", "--", str(warm), str(target)], check=True)


def test_bisect_names_the_patch_that_breaks_go_test(
        tmp_path: Path, k8s_upstream: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TKEDISTRO_CACHE", str(PERSIST / "cache"))  # the mirror is there
    monkeypatch.delenv("TKEDISTRO_UPSTREAM", raising=False)
    distro = tmp_path / "distro"
    series = make_bisect_distro(distro, k8s_upstream)
    _warm_go_cache(distro)
    started = time.monotonic()
    result = CliRunner().invoke(app, ["--root", str(distro), "bisect", "1.20", "--json",
                                      "--go-test", PACKAGE])
    took = time.monotonic() - started
    assert result.exit_code == 0, result.output[-6000:]
    data = json.loads(result.stdout)
    assert data["first_bad"]["position"] == 2, data
    assert data["first_bad"]["file"] == series[1]
    assert data["first_bad"]["subject"] == INJECTED_SUBJECT
    assert [s["position"] for s in data["steps"]][:2] == [5, 0]
    assert len(data["steps"]) <= 5
    log = Path(data["log"]).read_text(errors="replace")
    assert "--- FAIL: TestMilliCPUToQuota" in log, log[-4000:]
    src = distro / "_src" / "1.20"
    assert (src / ".git" / "HEAD").read_text() == "ref: refs/heads/tkedistro\n"
    steps = ", ".join(f"{s['position']}:{s['outcome']} {s['seconds']}s" for s in data["steps"])
    print(f"\nbisect --go-test {PACKAGE} on v1.20.2 + 5 patches: first bad 2/5 in "
          f"{len(data['steps'])} steps, {took:.1f}s ({steps})")
