"""Each patch of the 1.20 series shows its effect on a real local cluster of the built release:
``tkedistro cluster up 1.20``, ``tkedistro cluster prove 1.20 --json``, ``cluster down``.

Runs as root on the persistent distro of the build tier (``conftest.PERSIST``), built through
the tool first (a no-op when warm). Its cluster (``tke-1-20-<hex>``) is replaced by the one
this test starts and removed at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.real_k8s.conftest import assert_ran_shipped_images, refresh_persistent_distro
from tkedistro.cluster.bootstrap import kubectl
from tkedistro.engine.docker_nodes import DockerNodes

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(1800)]
# the 1.20 series; each declares its proof in its Proof: trailer
KCM_PATCH = "0001-kube-controller-manager-dynamic-log-level.patch"
METRICS_PATCH = "0002-kubelet-containerd-container-metric-labels.patch"
KMEM_PATCH = "0003-kubelet-kmem-accounting-off.patch"


def _tool(root: Path, *args: str) -> Result:
    from tkedistro.cli.app import app

    return CliRunner().invoke(app, ["--root", str(root), *args], env={"COLUMNS": "1000"})


@pytest.fixture
def root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("the local cluster needs root (node containers share the cgroup tree)")
    root = refresh_persistent_distro(monkeypatch)
    built = _tool(root, "build", "1.20")
    assert built.exit_code == 0, built.output
    up = _tool(root, "cluster", "up", "1.20", "--json")
    assert up.exit_code == 0, up.output
    yield root
    down = _tool(root, "cluster", "down", "1.20")
    assert down.exit_code == 0, down.output


def test_each_patch_shows_its_effect_on_the_running_cluster(root: Path) -> None:
    proved = _tool(root, "cluster", "prove", "1.20", "--json")
    report = json.loads(proved.stdout)
    by_patch = {p["patch"]: p for p in report["proofs"]}
    for patch, proof in by_patch.items():  # in the log (-rP): what this cluster answered
        print(f"{patch}: {proof['evidence']}")
    failed = {p: r["evidence"] for p, r in by_patch.items() if not r["passed"]}
    assert failed == {}
    assert proved.exit_code == 0, proved.output
    assert list(by_patch) == [KCM_PATCH, METRICS_PATCH, KMEM_PATCH]
    assert [p["kind"] for p in report["proofs"]] == ["component-http", "metric-labels",
                                                     "cgroup-value"]
    assert report["unproven"] == [] and report["runs_current_build"] is True
    # the cluster ran the release's shipped OCI images: digests read back from its nodes
    assert_ran_shipped_images(report["running_images"], root / "_output" / "1.20")
    results = Path(report["results_dir"])
    assert results.parent == root / "_results" / "1.20" / "prove"
    assert json.loads((results / "running-images.json").read_text()) == \
        report["running_images"]
    assert json.loads((results / "summary.json").read_text()) == report

    kcm = by_patch[KCM_PATCH]["evidence"]
    assert 'no credentials -> 403 forbidden: User "system:anonymous" cannot put path ' \
           '"/debug/flags/v"' in kcm
    assert "PUT 5 -> 200 successfully set klog.logging.verbosity to 5" in kcm
    assert "PUT loud -> 400 failed set klog.logging.verbosity loud" in kcm
    assert "restored to 0 -> 200" in kcm

    metrics = by_patch[METRICS_PATCH]["evidence"]
    assert 'container_cpu_usage_seconds_total{container="POD",pod="patch-proof",' \
           'namespace="tkedistro-proofs",image="127.0.0.1:5000/' in metrics
    assert 'container_network_receive_bytes_total{container="POD",pod="patch-proof"' in metrics
    assert '{container="app",pod="patch-proof",namespace="tkedistro-proofs",image="' \
           '127.0.0.1:5000/' in metrics

    kmem = by_patch[KMEM_PATCH]["evidence"]
    assert "limit_in_bytes=33554432 kmem.limit_in_bytes=9223372036854771712" in kmem

    # the check's pod and namespace are gone again
    state = json.loads(_tool(root, "cluster", "status", "1.20", "--json").stdout)["state"]
    left = kubectl(DockerNodes(), state["nodes"][0], "get", "namespaces", "-o", "name")
    assert left.ok, left.output
    assert "namespace/tkedistro-proofs" not in left.output.split()
