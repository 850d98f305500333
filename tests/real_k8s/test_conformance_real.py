"""The rendered nightly's "Conformance (--smoke)" step, run as the nightly runs it (through
the runner stand-in of tests/helpers/runner.py, as root, ``sudo "$TKEDISTRO" --cache-dir
"$TKEDISTRO_CACHE" conformance 1.20 --smoke``), from really built v1.20 binaries, on the local
multi-node cluster made for the run: the 9 specs of the real tier's subset pass (the CRD specs,
two pulling agnhost and httpd built here, a cluster DNS spec and a ``[Serial]`` spec that needs
two nodes), the results say which cluster and DNS ran them, and no cluster is left afterwards.

By default everything comes through the tool: the persistent distro of the build tier
(``/var/tmp/tkedistro-realk8s/distro``, see conftest.py) is built with
``tkedistro build 1.20 --with-conformance-tools`` (a no-op when warm); its cluster is removed
first, so the run makes its own. The step's script is taken from the nightly.yml that
``tkedistro ci render`` makes for that distro; ``$TKEDISTRO`` is this checkout's tool (the
docker tier's tests/integration/test_nightly_runner.py installs it as the workflow does).
Needs root and Docker with the builder image (``make install``).

To test binaries built elsewhere instead, point ``TKEDISTRO_REAL_BIN_DIR`` at a bin folder with
the components plus e2e.test and ginkgo, and ``TKEDISTRO_REAL_SRC`` at the tree they came from
(default: ``_src/1.20`` of this repo; the conformance images are built from it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.helpers import host
from tests.helpers.runner import Runner
from tests.real_k8s.conftest import (
    Tool,
    assert_ran_shipped_images,
    build_persistent_distro,
    cgroup_parents,
    cluster_objects,
    cluster_skip_reason,
)
from tests.unit.test_conformance_smoke import DNS, HTTPD, QUICK, SERIAL
from tkedistro.ci.workflows import job_id, render_workflows
from tkedistro.cluster.config import cluster_name
from tkedistro.cluster.host import missing_binaries
from tkedistro.cluster.lifecycle import NODE_BINARIES
from tkedistro.conformance.pipeline import TOOLS
from tkedistro.conformance.results import parse_junit
from tkedistro.core.workspace import Workspace

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(3600)]

REPO = Path(__file__).resolve().parents[2]
BIN_OVERRIDE = os.environ.get("TKEDISTRO_REAL_BIN_DIR")
SRC = Path(os.environ.get("TKEDISTRO_REAL_SRC", REPO / "_src/1.20"))
# registry and image binaries, kept warm between runs
IMAGE_CACHE = Path(os.environ.get("TKEDISTRO_REAL_IMAGE_CACHE") or "/var/tmp/tkedistro-real-cache")
CONFORMANCE_STEP = "Conformance (--smoke)"
IMAGE_SPECS = ("Docker Containers should use the image defaults if command and args are blank",
               "Deployment RollingUpdateDeployment should delete old pods and create new ones")


def _given_binaries(bin_dir: Path) -> Iterator[Workspace]:
    """A throwaway distro repo whose _output/1.20 bin folder is ``bin_dir`` (no build)."""
    if missing := missing_binaries(bin_dir, (*NODE_BINARIES, *TOOLS)):
        pytest.skip(f"not built in {bin_dir}: {', '.join(missing)} (TKEDISTRO_REAL_BIN_DIR)")
    root = Path(tempfile.mkdtemp(prefix="tkc-", dir="/var/tmp"))
    (root / "releases").mkdir()
    shutil.copy(REPO / "releases/1.20.yaml", root / "releases/1.20.yaml")
    images = bin_dir.resolve().parents[2] / "images"  # <output>/bin/linux/amd64 -> <output>
    if not (images / "images.json").is_file():
        pytest.skip(f"no shipped images beside {bin_dir}: {images}/images.json (the cluster "
                    "runs them; tkedistro build makes them)")
    (root / "_output/1.20/bin/linux").mkdir(parents=True)
    (root / "_output/1.20/bin/linux/amd64").symlink_to(bin_dir.resolve())
    (root / "_output/1.20/images").symlink_to(images)
    (root / "_src").mkdir()
    (root / "_src/1.20").symlink_to(SRC.resolve())
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    yield Workspace(root=root, cache=IMAGE_CACHE)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    if reason := cluster_skip_reason():
        pytest.skip(reason)
    if BIN_OVERRIDE:
        yield from _given_binaries(Path(BIN_OVERRIDE))
    else:
        yield build_persistent_distro(monkeypatch)


def test_smoke_subset_passes_on_a_two_node_cluster_that_is_removed_after(
        workspace: Workspace, tmp_path: Path) -> None:
    ws, name = workspace, cluster_name("1.20", workspace.root)
    tool = Tool(ws, tmp_path)
    tool.run("cluster", "down", "1.20").ok()  # so the run makes (and removes) its own
    bin_dir = ws.output_dir("1.20") / "bin/linux/amd64"
    assert missing_binaries(bin_dir, (*NODE_BINARIES, *TOOLS)) == []

    runner = _nightly_runner(ws, tmp_path)
    step = _nightly_step(ws, CONFORMANCE_STEP, tmp_path)
    started = time.monotonic()
    run = runner.run_job({"steps": [step]})[0]
    print(f"nightly step {CONFORMANCE_STEP!r}: {time.monotonic() - started:.0f}s")
    assert (run.outcome, run.code) == ("success", 0), run.output[-8000:]

    report = ws.conformance_results_dir("1.20") / "latest"
    summary = json.loads((report / "summary.json").read_text())
    assert (summary["ok"], summary["passed"], summary["failed"], summary["timed_out"]) == \
        (True, 9, 0, False), summary
    # which cluster and which DNS served the run (CoreDNS, or the responder built here)
    assert re.fullmatch(rf"local cluster {name}: 2 node containers, kubeadm; "
                        r"DNS: (CoreDNS|tkedistro-dns)\b.*", summary["cluster"]), summary["cluster"]
    assert summary["cluster"] in run.output  # the user sees the same line
    assert Path(summary["report_dir"]).resolve() == report.resolve()
    assert summary["unavailable_images"] == []
    assert any(i.endswith("/k8s.gcr.io/pause:3.2") for i in summary["loaded_images"]), \
        summary["loaded_images"]
    # the nodes ran the release's shipped OCI images (digests read back from the nodes)
    record = json.loads((report / "running-images.json").read_text())
    assert record == summary["running_images"]
    assert_ran_shipped_images(record, ws.output_dir("1.20"))
    assert "shipped images running: 5 of 5 with the index and platform manifest digests " \
           "of images.json" in run.output

    results = parse_junit(report / "junit_01.xml")
    passed = sorted(s.name for s in results.specs if s.status.value == "passed")
    assert passed == sorted([*QUICK, DNS, SERIAL])
    assert all(any(spec in p for p in passed) for spec in (*IMAGE_SPECS, HTTPD))
    serial = "".join(p.read_text() for p in sorted(report.glob("junit_serial_*.xml")))
    assert "should rollback without unnecessary restarts" in serial  # ran in the serial pass
    for file in ("e2e.log", "junit_01.xml", "PRODUCT.yaml", "README.md", "summary.json"):
        assert (report / file).is_file(), file
    if (ws.output_dir("1.20") / "build-info.json").is_file():  # built by the tool
        assert (report / "build-info.json").read_bytes() == \
            (ws.output_dir("1.20") / "build-info.json").read_bytes()

    # the cluster made for the run is gone, with everything it made on the host
    assert cluster_objects(name) == {"containers": [], "volumes": [], "networks": []}
    assert cgroup_parents(name) == []
    assert host.leftovers(name, [], [*tool.sessions, *runner.sessions],
                          [name, str(ws.root / "_cluster")]) == []
    assert not (ws.cluster_dir("1.20") / "kubeconfig").exists()
    status = tool.run("cluster", "status", "1.20").ok()
    assert f"cluster {name}: down (no node containers)" in status.output


def _nightly_step(ws: Workspace, name: str, tmp_path: Path) -> dict[str, object]:
    """The step ``name`` of the nightly job of 1.20, as ``tkedistro ci render`` renders it
    for a copy of ``ws``'s releases and patches (nothing is written into the distro repo)
    whose tkedistro.yaml names this checkout's commit as the install source (a distro repo's
    render needs one; this step does not install)."""
    copy = tmp_path / "render"
    shutil.copytree(ws.root / "releases", copy / "releases")
    patches = ws.root / "patches"
    shutil.copytree(patches if patches.is_dir() else REPO / "patches", copy / "patches")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    (copy / "tkedistro.yaml").write_text(
        "schema: 1\nci:\n  install:\n    git: https://github.com/example/tkedistro.git\n"
        f"    commit: {head}\n")
    rendered = render_workflows(Workspace(root=copy, cache=ws.cache))
    text = next(w.text for w in rendered if w.path.name == "nightly.yml")
    steps = YAML(typ="safe").load(text)["jobs"][job_id("1.20")]["steps"]
    found = [s for s in steps if s.get("name") == name]
    assert len(found) == 1, f"nightly.yml has {len(found)} steps named {name!r}"
    assert "uses" not in found[0] and "conformance 1.20 --smoke" in found[0]["run"], found[0]
    return dict(found[0])


def _nightly_runner(ws: Workspace, tmp_path: Path) -> Runner:
    """A root runner whose ``$TKEDISTRO`` runs this checkout (the nightly's install step puts
    a venv's tool there) and whose ``$TKEDISTRO_CACHE`` is the distro's cache."""
    tool = tmp_path / "bin" / "tkedistro"
    tool.parent.mkdir()
    tool.write_text(f"#!/bin/sh\nexec /usr/bin/env PYTHONPATH={REPO} {sys.executable} "
                    '-m tkedistro "$@"\n')
    tool.chmod(0o755)
    (tmp_path / "home").mkdir()
    (tmp_path / "runner-temp" / "nightly" / "logs").mkdir(parents=True)  # made by the install
    return Runner("root", ws.root, tmp_path / "home", tmp_path / "runner-temp",
                  env={"TKEDISTRO": str(tool), "TKEDISTRO_CACHE": str(ws.cache)},
                  step_timeout=2400)
