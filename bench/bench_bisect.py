#!/usr/bin/env python3
"""`tkedistro bisect` against a naive linear search for the first bad patch (issue 28).

bisect: ``tkedistro bisect RELEASE --json CHECK`` as a user runs it (a new process, this
checkout first on ``PYTHONPATH``) on a prepared distro: the whole series, upstream alone, then
the binary search over the commits ``source`` made in ``_src``.
naive: what a maintainer does without it, in a clone of the same tree: for k = 1, 2, ...
reset to the pinned commit, ``git am`` the first k patches from scratch, run the same check,
stop at the first k where it fails.

Three set-ups, each made fresh in WORK:
  synthetic  the unit tier's 5-patch series (tests/helpers/series.py; patch 2 breaks the
             check), check ``--run -- grep -q 'kmem = true' pkg/kubelet/cm/limits.go``;
             medians of --runs
  docker     the docker tier's series (tests/integration/test_bisect_docker.py; patch 2 breaks
             a Go test), check ``--go-test ./pkg/calc/...`` in the builder image; one cold run
  real       v1.20.2 + the real-tier series (tests/real_k8s/bisect_series.py; patch 2 breaks
             TestMilliCPUToQuota), check ``--go-test ./pkg/kubelet/cm/``; one cold run each
             (go test caches passing results, so a second run would not be comparable)

usage: bench/bench_bisect.py [--setup synthetic|docker|real] [--runs 5]
       [--work /var/tmp/tkedistro-bench-bisect] [--fixtures ~/.cache/tkedistro/fixtures]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CLEAN = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@invalid",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@invalid"}


@dataclass
class SetUp:
    root: Path  # the distro
    cache: Path
    bisect_args: list[str]
    naive_check: Callable[[Path, Path], int]  # (tree, log) -> exit status


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env={**CLEAN, **IDENTITY},
                          capture_output=True, text=True, check=True).stdout.strip()


def tool(setup: SetUp, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**CLEAN, "PYTHONPATH": str(REPO), "TKEDISTRO_CACHE": str(setup.cache)}
    return subprocess.run([sys.executable, "-m", "tkedistro", "--root", str(setup.root), *args],
                          env=env, capture_output=True, text=True, check=False)


def series_files(root: Path) -> list[Path]:
    from tkedistro.model.manifest import load_manifest

    return [root / e.file for e in load_manifest(root / "releases" / "1.20.yaml").patches]


def run_bisect(setup: SetUp) -> tuple[float, int, int]:
    started = time.monotonic()
    done = tool(setup, "bisect", "1.20", "--json", *setup.bisect_args)
    took = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"bisect failed ({done.returncode}):\n{done.stderr[-4000:]}")
    data = json.loads(done.stdout)
    return took, len(data["steps"]), data["first_bad"]["position"]


def run_naive(setup: SetUp, work: Path) -> tuple[float, int, int]:
    """Prefixes 1, 2, ... applied from scratch in a clone of _src until the check fails."""
    src = setup.root / "_src" / "1.20"
    clone = work / "naive"
    shutil.rmtree(clone, ignore_errors=True)
    git(work, "clone", "-q", "--shared", "--no-checkout", str(src), str(clone))
    pin = json.loads((setup.root / "_src" / ".1.20.tkedistro" / "source.json")
                     .read_text())["base"]
    patches = series_files(setup.root)
    started = time.monotonic()
    for k in range(1, len(patches) + 1):
        git(clone, "checkout", "-q", "-f", "--detach", pin)
        git(clone, "am", "-q", *map(str, patches[:k]))
        if setup.naive_check(clone, work / f"naive-{k}.log") != 0:
            return time.monotonic() - started, k, k
    sys.exit("naive: the check never failed")


def synthetic(work: Path) -> SetUp:
    from tests.helpers.series import make_distro

    distro = make_distro(work / "synthetic", prepare=False)
    argv = ["grep", "-q", "kmem = true", "pkg/kubelet/cm/limits.go"]

    def check(tree: Path, log: Path) -> int:
        return subprocess.run(argv, cwd=tree, check=False).returncode

    return SetUp(distro.root, work / "cache", ["--run", "--", *argv], check)


def go_test_check(cache: Path, root: Path, packages: list[str]) -> Callable[[Path, Path], int]:
    from tkedistro.build.gotest import run_go_test
    from tkedistro.core.workspace import Workspace
    from tkedistro.engine.engines import docker_engines
    from tkedistro.model.manifest import load_manifest

    image = load_manifest(root / "releases" / "1.20.yaml").builder.image
    backend = docker_engines().containers
    ws = Workspace(root=root, cache=cache)
    return lambda tree, log: run_go_test(backend, image, ws, tree, packages, log).exit_code


def docker(work: Path) -> SetUp:
    from tests.helpers.gitrepo import make_upstream, write_manifest
    from tests.helpers.series import make_patches
    from tests.integration.test_bisect_docker import CALC, CALC_TEST, SERIES
    from tests.integration.test_build_docker import COMPONENTS, upstream_files

    up = make_upstream(work / "up", {"v1.20.0": {
        **upstream_files(), "pkg/calc/calc.go": CALC, "pkg/calc/calc_test.go": CALC_TEST}})
    root = work / "distro"
    files = make_patches(work, up, root / "patches" / "1.20", SERIES)
    write_manifest(root, "1.20", url=up.url, tag="v1.20.0", commit=up.tags["v1.20.0"],
                   patches=[f"patches/1.20/{f.name}" for f in files], components=COMPONENTS)
    cache = work / "cache"
    return SetUp(root, cache, ["--go-test", "./pkg/calc/..."],
                 go_test_check(cache, root, ["./pkg/calc/..."]))


def real(work: Path, fixtures: Path) -> SetUp:
    from tests.real_k8s.bisect_series import PACKAGE, make_bisect_distro

    root = work / "distro"
    make_bisect_distro(root, fixtures / "kubernetes-v1.20.2.git")
    cache = work / "cache"
    return SetUp(root, cache, ["--go-test", PACKAGE], go_test_check(cache, root, [PACKAGE]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", choices=("synthetic", "docker", "real"), default="synthetic")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/tkedistro-bench-bisect"))
    parser.add_argument("--fixtures", type=Path,
                        default=Path("~/.cache/tkedistro/fixtures").expanduser())
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    made = {"synthetic": lambda: synthetic(args.work), "docker": lambda: docker(args.work),
            "real": lambda: real(args.work, args.fixtures)}[args.setup]()
    prepared = tool(made, "source", "1.20")
    if prepared.returncode != 0:
        sys.exit(f"source failed:\n{prepared.stderr[-4000:]}")
    runs = args.runs if args.setup == "synthetic" else 1
    bisects, naives = [], []
    for _ in range(runs):  # in turn, so both see the same load
        bisects.append(run_bisect(made))
        naives.append(run_naive(made, args.work))
    for name, rows in (("bisect", bisects), ("naive", naives)):
        took = statistics.median(r[0] for r in rows)
        print(f"{args.setup:<9} {name:<6} first bad {rows[0][2]}: {rows[0][1]} checks, "
              f"{took:.2f}s (median of {len(rows)})")
    ratio = statistics.median(r[0] for r in bisects) / statistics.median(r[0] for r in naives)
    print(f"{args.setup:<9} bisect / naive = {ratio:.2f}")


if __name__ == "__main__":
    main()
