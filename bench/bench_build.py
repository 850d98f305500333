#!/usr/bin/env python3
"""Build benchmarks (issue 4), against a distro repo whose release 1.20 builds:

1. no-op: `tkedistro build` with nothing changed vs. upstream's `make` re-run with nothing
   changed (same components, same image and container settings, warm Go cache);
2. cold kubectl: `tkedistro build -c kubectl --force` with the tree's `_output` (and so
   Kubernetes' Go cache) removed vs. a raw `docker run … make WHAT=cmd/kubectl` the same way.

Prints medians and ratios. Cold builds take minutes each on 2 cores.

With no --root, a distro copy of this repo re-pinned to the local v1.20.2 fixture
(scripts/make-k8s-upstream.sh) is made under /var/tmp/tkedistro-bench/distro (kept: the
no-op rows need a built tree; the first run builds it).

usage: bench/bench_build.py [--root DISTRO] [--release 1.20] [--noop-runs 5] [--make-runs 3]
                            [--cold-runs 1] [--skip-cold] [--skip-noop]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tkedistro.build.plan import CONTAINER_SRC, VERSION_FILE_NAME, make_argv, version_file
from tkedistro.model.manifest import load_manifest


def timed(fn: Callable[[], None]) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def tool(root: Path, release: str, *args: str) -> None:
    cmd = [sys.executable, "-m", "tkedistro", "--root", str(root), "build", release, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def raw_make(root: Path, release: str, components: list[str], scratch: Path) -> None:
    """Upstream's own build, by hand: docker run … make, same image, mounts and user."""
    manifest = load_manifest(root / "releases" / f"{release}.yaml")
    tree = root / "_src" / release
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    (scratch / VERSION_FILE_NAME).write_text(version_file(manifest.distro_version, head))
    cmd = ["docker", "run", "--rm", "--network", "none", "--user",
           f"{os.getuid()}:{os.getgid()}", "--cap-drop", "ALL",
           "--security-opt", "no-new-privileges",
           "-v", f"{tree}:{CONTAINER_SRC}", "-v", f"{scratch}:/tkedistro/work:ro",
           "-w", str(CONTAINER_SRC),
           "-e", f"KUBE_GIT_VERSION_FILE=/tkedistro/work/{VERSION_FILE_NAME}",
           manifest.builder.image, *make_argv(components, list(manifest.platforms))]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"raw make failed ({proc.returncode}):\n{proc.stdout[-3000:]}")


def drop_go_cache(root: Path, release: str) -> None:
    shutil.rmtree(root / "_src" / release / "_output", ignore_errors=True)


def row(name: str, samples: list[float]) -> tuple[str, float, str]:
    return name, statistics.median(samples), " ".join(f"{s:.2f}" for s in samples)


def bench_noop(args: argparse.Namespace, scratch: Path) -> list[tuple[str, float, str]]:
    components = list(load_manifest(args.root / "releases" / f"{args.release}.yaml").components)
    tool(args.root, args.release)  # make sure it is built and published (warm-up)
    noop = [timed(lambda: tool(args.root, args.release)) for _ in range(args.noop_runs)]
    make = [timed(lambda: raw_make(args.root, args.release, components, scratch))
            for _ in range(args.make_runs)]
    return [row("no-op tkedistro build", noop),
            row(f"upstream make re-run ({len(components)} components)", make)]


def bench_cold(args: argparse.Namespace, scratch: Path) -> list[tuple[str, float, str]]:
    tool_runs, raw_runs = [], []
    for _ in range(args.cold_runs):
        drop_go_cache(args.root, args.release)
        raw_runs.append(timed(lambda: raw_make(args.root, args.release, ["kubectl"], scratch)))
        drop_go_cache(args.root, args.release)
        tool_runs.append(timed(lambda: tool(args.root, args.release, "-c", "kubectl", "--force")))
    return [row("cold kubectl: tkedistro build", tool_runs),
            row("cold kubectl: raw docker run make", raw_runs)]


REPO = Path(__file__).resolve().parents[1]
FIXTURE_COMMIT = "84fe13fd02837506d4ca9e4dbfcd087bb2f26e17"  # scripts/make-k8s-upstream.sh


def default_distro() -> Path:
    """This repo's manifest and series under /var/tmp, pinned to the local v1.20.2 fixture."""
    from tkedistro.model.manifest import update_pin

    upstream = subprocess.run([str(REPO / "scripts" / "make-k8s-upstream.sh")], check=True,
                              capture_output=True, text=True).stdout.strip()
    root = Path("/var/tmp/tkedistro-bench/distro")
    for folder in ("releases", "patches"):
        shutil.rmtree(root / folder, ignore_errors=True)
        shutil.copytree(REPO / folder, root / folder)
    update_pin(root / "releases" / "1.20.yaml", tag="v1.20.2", commit=FIXTURE_COMMIT)
    os.environ["TKEDISTRO_UPSTREAM"] = Path(upstream).as_uri()
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--release", default="1.20")
    parser.add_argument("--noop-runs", type=int, default=5)
    parser.add_argument("--make-runs", type=int, default=3)
    parser.add_argument("--cold-runs", type=int, default=1)
    parser.add_argument("--skip-noop", action="store_true")
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    if args.root is None:
        args.root = default_distro()
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as scratch:
        if not args.skip_noop:
            rows += bench_noop(args, Path(scratch))
            print_rows(rows[-2:], "no-op vs upstream make re-run")
        if not args.skip_cold:
            rows += bench_cold(args, Path(scratch))
            print_rows(rows[-2:], "tool overhead on a cold kubectl build")


def print_rows(rows: list[tuple[str, float, str]], title: str) -> None:
    width = max(len(name) for name, _, _ in rows)
    print(f"\n{title}")
    print(f"{'case':<{width}}  {'median s':>9}  samples")
    for name, median, samples in rows:
        print(f"{name:<{width}}  {median:>9.2f}  {samples}")
    (_, first, _), (_, second, _) = rows
    print(f"ratio tkedistro / baseline: {first / second:.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
