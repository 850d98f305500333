#!/usr/bin/env python3
"""Conformance images (issue 13), nothing changed: ``tkedistro conformance images RELEASE``
(start the local registry, check every image's inputs, push) vs. the naive way a script would
do it: ``docker build`` of each image's context (Docker's own layer cache, warm) and
``docker push`` of each to the same registry.

Both run against the same distro, cache and registry storage, alternately, after one warm-up
run of each (the tool's also makes the contexts the naive side builds). Prints medians and the
ratio. Needs a distro whose ``_src/RELEASE`` holds the real tree (default: the real tier's
persistent copy) and what ``make install`` installs.

usage: bench/bench_conformance_images.py [--root DISTRO] [--cache DIR] [--release 1.20]
                                         [--runs 3]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tkedistro.engine.registry import LocalRegistry

PERSIST = Path("/var/tmp/tkedistro-realk8s")


def tool(root: Path, cache: Path, release: str) -> float:
    cmd = [sys.executable, "-m", "tkedistro", "--root", str(root), "--cache-dir", str(cache),
           "conformance", "images", release, "--json"]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    took = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return took


def docker(*argv: str) -> None:
    proc = subprocess.run(["docker", *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"docker {' '.join(argv)} failed:\n{proc.stderr[-2000:]}")


def naive(cache: Path, release: str) -> float:
    contexts = sorted(p for p in (cache / "conformance-images" / release / "work" / "context")
                      .iterdir() if (p / "Dockerfile").is_file() and not p.name.startswith("_"))
    start = time.monotonic()
    with LocalRegistry(cache / "registry") as registry, \
            tempfile.TemporaryDirectory() as config:
        # the registry asks for this run's login: a docker CLI config of its own holds it
        token = base64.b64encode(f"{registry.login.username}:{registry.login.password}"
                                 .encode()).decode()
        auths = {"auths": {registry.address: {"auth": token}}}
        Path(config, "config.json").write_text(json.dumps(auths))
        for context in contexts:
            tag = f"{registry.address}/naive/{context.name.replace('.', '-')}:bench"
            docker("build", "--network", "none", "-q", "-t", tag, str(context))
            docker("--config", config, "push", "-q", tag)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=PERSIST / "distro")
    parser.add_argument("--cache", type=Path, default=PERSIST / "cache")
    parser.add_argument("--release", default="1.20")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print("warm-up: tkedistro conformance images", args.release, "and the naive way",
          flush=True)
    tool(args.root, args.cache, args.release)
    naive(args.cache, args.release)  # its first push uploads every layer under new names
    ours, theirs = [], []
    for _ in range(args.runs):
        ours.append(tool(args.root, args.cache, args.release))
        theirs.append(naive(args.cache, args.release))
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"tkedistro conformance images (nothing changed): median {a:.2f}s "
          f"of {[round(x, 2) for x in ours]}")
    print(f"docker build (layer cache) + docker push of each context: median {b:.2f}s "
          f"of {[round(x, 2) for x in theirs]}")
    print(f"ratio tkedistro / naive: {a / b:.2f}")


if __name__ == "__main__":
    main()
