#!/usr/bin/env python3
"""The nightly's build step with Kubernetes' Go build cache restored from an archive (issue 15).

The nightly saves `_src/<release>/_output/local/go/cache` after a night and restores it into a
fresh checkout the next night. This does the same here: it archives the Go cache of a built
distro (the "previous night"), makes a fresh distro copy with a fresh `_src` (same cache folder,
so the upstream mirror is warm as the nightly's mirror cache would be), runs `tkedistro source`,
extracts the archive into the new tree, and times the nightly's build step
(`tkedistro build RELEASE --with-conformance-tools`). "Recompiled nothing" is measured, not
assumed: Go adds an entry to the cache for every package it compiles, so the number of cache
files before and after the build is compared. Prints the step's time beside the time the
previous build of the source distro took (its build-info.json), as a ratio.

usage: bench/bench_nightly_cache.py [--from /var/tmp/tkedistro-realk8s/distro]
                                    [--cache /var/tmp/tkedistro-realk8s/cache] [--release 1.20]
                                    [--work /var/tmp/tkedistro-bench-nightly]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

GO_CACHE = Path("_output/local/go/cache")


def count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def tool(root: Path, cache: Path, *args: str) -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "tkedistro", "--root", str(root), "--cache-dir",
                    str(cache), *args], check=True, env={**os.environ, "CI": "1"})
    return time.monotonic() - start


def previous_build_seconds(distro: Path, release: str) -> float | None:
    try:
        info = json.loads((distro / "_output" / release / "build-info.json").read_text())
        start, end = (datetime.datetime.strptime(info[k], "%Y-%m-%dT%H:%M:%SZ")
                      for k in ("started_at", "finished_at"))
        return (end - start).total_seconds()
    except (OSError, ValueError, KeyError):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path,
                        default=Path("/var/tmp/tkedistro-realk8s/distro"))
    parser.add_argument("--cache", type=Path, default=Path("/var/tmp/tkedistro-realk8s/cache"))
    parser.add_argument("--release", default="1.20")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/tkedistro-bench-nightly"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    archive = args.work / "go-cache.tar"
    try:
        start = time.monotonic()
        subprocess.run(["tar", "-C", str(args.source / "_src" / args.release / GO_CACHE.parent),
                        "-cf", str(archive), GO_CACHE.name], check=True)
        saved = time.monotonic() - start
        distro = args.work / "distro"
        for folder in ("releases", "patches"):
            shutil.copytree(args.source / folder, distro / folder)
        source = tool(distro, args.cache, "source", args.release)
        tree_cache = distro / "_src" / args.release / GO_CACHE
        start = time.monotonic()
        tree_cache.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "-C", str(tree_cache.parent), "-xf", str(archive)], check=True)
        restored = time.monotonic() - start
        before = count_files(tree_cache)
        build = tool(distro, args.cache, "build", args.release, "--with-conformance-tools")
        after = count_files(tree_cache)
        cold = previous_build_seconds(args.source, args.release)
        print(f"go cache archive: {archive.stat().st_size / 2**30:.2f} GiB, saved in "
              f"{saved:.0f}s, restored in {restored:.0f}s; source step {source:.0f}s")
        print(f"build step with the cache restored: {build:.0f}s; Go cache files "
              f"{before} before, {after} after ({after - before} new compile results)")
        if cold:
            print(f"the source distro's last build took {cold:.0f}s (ratio {build / cold:.2f})")
        return 0 if after == before else 1
    finally:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
