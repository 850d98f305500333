"""A node on a real cgroup v2 kernel (the qemu guest, Docker's systemd driver): made by
tkedistro's own code (``cluster/cgroups.py`` finds the layout, ``lifecycle.node_spec`` and
``DockerNodes`` make the container), its entrypoint's cgroup set-up, containerd and the
release's kubelet, and a static etcd pod whose cgroup limits show under the node's cgroup.

The guest runs ``nodes_v2_guest.py`` from this checkout (shared read-only) with this host's
Python packages (shared read-only: the guest's Python is the same minor version); the node,
etcd and pause images are ``docker save``d from this host's engine into the guest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

BUDGET_S = 15 * 60
pytestmark = [pytest.mark.vm, pytest.mark.timeout(BUDGET_S + 1200)]

REPO = Path(__file__).resolve().parents[2]
NODE_IMAGE = "tkedistro.local/node:v1.20.2-tke.1"
ETCD_IMAGE = "tkedistro.local/k8s/etcd:3.4.13-0"
PAUSE_IMAGE = "tkedistro.local/k8s/pause:3.2"
GUEST_PYTHON = (3, 11)  # Debian bookworm's python3, which runs this host's packages


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "the guest and the host's images need root"
    if sys.version_info[:2] != GUEST_PYTHON:
        return (f"this host's Python {sys.version_info[0]}.{sys.version_info[1]} packages "
                "cannot run on the guest's Python 3.11")
    missing = [ref for ref in (NODE_IMAGE, ETCD_IMAGE, PAUSE_IMAGE)
               if subprocess.run(["docker", "image", "inspect", ref], capture_output=True,
                                 check=False).returncode != 0]
    if missing:
        return (f"not on this host's engine: {', '.join(missing)} (`tkedistro cluster up "
                "1.20` builds them)")
    return None


def _guest_run(command: list[str], images: Path,
               timeout_s: float) -> tuple[dict[str, object], float]:
    site = sysconfig.get_paths()["purelib"]
    argv = [sys.executable, "-m", "tkedistro", "guest", "run", "--json",
            "--timeout", str(int(timeout_s)),
            "--share", f"{REPO}:/tkedistro/src:ro", "--share", f"{site}:/tkedistro/site:ro",
            "--share", f"{images}:/tkedistro/images:ro", "--image", NODE_IMAGE,
            "--", *command]
    tree = os.environ.get("TKEDISTRO_GUEST_TREE", str(REPO))  # the guest tool's checkout
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=tree,
                          env={**os.environ, "PYTHONPATH": tree}, timeout=timeout_s + 600)
    took = time.monotonic() - start
    if "No such command 'guest'" in done.stderr:
        pytest.skip("this tree has no `tkedistro guest` (the cgroup v2 guest tool)")
    try:
        return json.loads(done.stdout), took
    except json.JSONDecodeError:
        raise AssertionError(f"tkedistro guest run exited {done.returncode}:\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}") from None


def test_a_node_runs_a_static_pod_with_its_limits_on_cgroup_v2(tmp_path: Path) -> None:
    if reason := _why_not():
        pytest.skip(reason)
    # etcd and pause for the node's containerd, shared in (no docker load of them in the guest)
    subprocess.run(["docker", "save", "-o", str(tmp_path / "images.tar"), ETCD_IMAGE,
                    PAUSE_IMAGE], check=True, capture_output=True, timeout=600)
    result, took = _guest_run(
        ["env", "PYTHONPATH=/tkedistro/src:/tkedistro/site", "python3",
         "/tkedistro/src/tests/vm/nodes_v2_guest.py", NODE_IMAGE, ETCD_IMAGE, PAUSE_IMAGE,
         "/tkedistro/images"], tmp_path, BUDGET_S)
    lines = str(result["stdout"]).strip().splitlines()
    assert lines, f"no output from the guest: {result['stderr']}"
    report = json.loads(lines[-1])
    failed = {name: evidence for name, (passed, evidence) in report["checks"].items()
              if not passed}
    print(json.dumps({"seconds": report["seconds"], "guest": result.get("timings"),
                      "wall_s": round(took, 1)}, indent=2))
    assert not failed, json.dumps(failed, indent=2)
    assert report["passed"] and result["exit_code"] == 0
    for needed in ("host: cgroup v2 with Docker's systemd driver",
                   "entrypoint: processes moved to /init (pid 1 too)",
                   "entrypoint: every controller delegated in /sys/fs/cgroup/kubelet",
                   "containerd runs", "the release's kubelet runs",
                   "static pod: memory.max and cpu.max in the node's cgroup",
                   "static pod: its cgroup is under the node's own cgroup on the guest",
                   "cgroup-value (0003) on the node's real v2 files"):
        assert report["checks"][needed][0], needed
    assert took <= BUDGET_S, f"{took:.0f} s in the guest, over the {BUDGET_S} s budget"
