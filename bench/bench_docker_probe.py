#!/usr/bin/env python3
"""Is the docker SDK's start-up cost worth the stdlib engine probe in engine/docker.py?

`tkedistro build` asks the engine two things before it knows whether the release is up to date:
is it there (`/_ping`) and which builder image id it has (`/images/<name>/json`). This times
both ways, each in a fresh interpreter (as a CLI run is), median of N runs:

- stdlib: what DockerBackend does on a unix socket (http.client over AF_UNIX);
- sdk:    `import docker`, `docker.from_env()`, `ping()`, `images.get()`.

Needs a running engine and the image (default: the builder image of releases/1.20.yaml).

usage: bench/bench_docker_probe.py [--image IMAGE] [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

STDLIB = """
from tkedistro.engine.docker import DockerBackend
b = DockerBackend(); b.check_available(); assert b.image_info({image!r}) is not None
"""
SDK = """
import docker
c = docker.from_env(); c.ping(); c.images.get({image!r})
"""


def timed(code: str) -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", default="tkedistro/builder:go1.15-bullseye")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rows = {"python -c pass": "pass",
            "stdlib probe": STDLIB.format(image=args.image),
            "docker SDK probe": SDK.format(image=args.image)}
    medians = {}
    for label, code in rows.items():
        timed(code)  # warm the page cache
        medians[label] = statistics.median(timed(code) for _ in range(args.runs))
    base = medians["python -c pass"]
    for label, seconds in medians.items():
        print(f"{label:<18} {seconds * 1000:7.0f} ms  (+{(seconds - base) * 1000:.0f} ms "
              f"over a bare interpreter)")
    extra = medians["docker SDK probe"] - medians["stdlib probe"]
    print(f"the SDK costs {extra * 1000:.0f} ms more per `tkedistro build` start")


if __name__ == "__main__":
    main()
