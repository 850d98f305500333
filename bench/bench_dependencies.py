#!/usr/bin/env python3
"""Which patch needs which (issue 28, item 5): how right and how fast, on real series.

1. right: the last ``--count`` commits of a git repository (first parent, no merges), taken
   as a series of that many patches (``git format-patch``), in windows of ``--window``.
   Each need the tool finds is checked by git: patch j needs patch i when j no longer applies
   (``git apply --check --cached``) on the tree before j with i taken out (``git apply -R``).
   Pairs where i cannot be taken out alone (a later patch rewrote its lines) are not
   decidable and counted apart. Prints per window: needs found, true, false positives,
   missed, and what ``validate`` flags on the series in its true order (must be 0).
2. fast: ``validate`` of ``--release`` in the distro at ``--root`` (in-process, medians of
   15), and the dependency check alone on the same patch texts.

The repository is read, never written (a temporary index file outside it).

usage: bench/bench_dependencies.py --repo PATH [--count 160] [--window 20]
                                   [--root DISTRO --release 1.20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tkedistro.core.workspace import Workspace
from tkedistro.model.dependencies import dependencies, misplaced
from tkedistro.model.validation import validate_releases


def git(repo: Path, *args: str, env: dict[str, str] | None = None,
        text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          env=env, input=text, check=False)


def needs_by_git(repo: Path, shas: list[str], texts: list[str], index: Path) -> tuple[
        set[tuple[int, int]], set[tuple[int, int]]]:
    """(pairs (j, i) where j fails without i, pairs where i cannot be taken out alone)."""
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    true, undecided = set(), set()
    for j in range(len(shas)):
        for i in range(j):
            git(repo, "read-tree", f"{shas[j]}^", env=env)
            if git(repo, "apply", "--cached", "-R", "-", env=env, text=texts[i]).returncode:
                undecided.add((j, i))
            elif git(repo, "apply", "--cached", "--check", "-", env=env,
                     text=texts[j]).returncode:
                true.add((j, i))
    return true, undecided


def check_window(repo: Path, shas: list[str], index: Path) -> None:
    texts = [git(repo, "format-patch", "-1", "--stdout", sha).stdout for sha in shas]
    names = [f"{n:04d}" for n in range(len(shas))]
    start = time.perf_counter()
    needs = dependencies(list(zip(names, texts, strict=True)))
    took = time.perf_counter() - start
    found = {(int(n.patch), int(n.needed)) for n in needs}
    true, undecided = needs_by_git(repo, shas, texts, index)
    false = found - true - undecided
    print(f"{shas[0][:8]}..{shas[-1][:8]}: found {len(found)} in {took * 1000:.0f} ms; "
          f"true (git) {len(true)}, of them found {len(found & true)}; false positives "
          f"{len(false)}; not decidable {len(found & undecided)} found of {len(undecided)}; "
          f"validate flags {len(misplaced(needs, names))} in the true order")


def time_validate(root: Path, release: str) -> None:
    ws = Workspace.discover(root)
    runs = []
    for _ in range(15):
        start = time.perf_counter()
        validate_releases(ws, [release])
        runs.append(time.perf_counter() - start)
    patches = sorted((root / "patches" / release).glob("*.patch"))
    texts = [(p.name, p.read_text(errors="replace")) for p in patches]
    alone = []
    for _ in range(15):
        start = time.perf_counter()
        dependencies(texts)
        alone.append(time.perf_counter() - start)
    size = sum(len(t) for _, t in texts) // 1024
    print(f"{root} {release}: {len(patches)} patches, {size} KiB: validate median "
          f"{statistics.median(runs) * 1000:.1f} ms, of which the dependency check "
          f"{statistics.median(alone) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path)
    parser.add_argument("--count", type=int, default=160)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--root", type=Path)
    parser.add_argument("--release", default="1.20")
    args = parser.parse_args()
    if args.repo:
        line = git(args.repo, "rev-list", "--reverse", "--no-merges", "--first-parent",
                   "HEAD").stdout.split()[-args.count:]
        with tempfile.TemporaryDirectory(prefix="bench-deps-") as tmp:
            for at in range(0, len(line) - args.window + 1, args.window):
                check_window(args.repo, line[at:at + args.window], Path(tmp) / "index")
    if args.root:
        time_validate(args.root, args.release)


if __name__ == "__main__":
    main()
