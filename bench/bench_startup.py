#!/usr/bin/env python3
"""Start-up of the quick commands against git's (issue 23: one command-line parse).

Each row runs tkedistro as the installed script does (a new Python process entering
``tkedistro.cli.app:main``, the checkout first on ``PYTHONPATH``) beside git's own quick
commands, measured in the same run:

  tkedistro --version          vs  git --version
  tkedistro --help             vs  git --help
  tkedistro patches --help     vs  git --help
  tkedistro list [--json]      vs  git status (in a small repo of the same files)

``--help`` and ``list`` print what they kept from the run before when nothing it was made
from changed (``core/startcache.py``): the plain rows measure that, every run after the
first; the ``1st`` rows start each run without the kept answers (a first run, or the first
after an edit or upgrade).

``list`` runs in a small distro repo made in a temporary folder: copies of this repo's
``releases/`` and ``patches/``, committed to git so ``git status`` has a tree to read.
Runs are paired: every round runs each command once in turn (tkedistro, the ``--before``
checkout when given, git), so all see the same load. One warm-up round, then the median
of N rounds; ratio = tkedistro / git. ``--before`` names another checkout (e.g. ``git
archive <commit> tkedistro | tar -x -C DIR``) whose figures are printed beside, with its
ratio to this checkout's.

``--cpu`` times user + system CPU instead of wall-clock: on a busy machine a process waiting
for a core is not charged for it.

usage: bench/bench_startup.py [--runs 21] [--before CHECKOUT] [--cpu] [--keep]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# what the installed `tkedistro` script runs (pip's console-script wrapper)
SCRIPT = ("import re, sys\nfrom tkedistro.cli.app import main\n"
          "sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\nsys.exit(main())\n")
CLEAN = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "TKEDISTRO_"))}
CPU_TIME = "--cpu" in sys.argv  # set by main's option; read by timed
IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@invalid",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@invalid"}


@dataclass(frozen=True)
class Row:
    label: str
    args: tuple[str, ...]  # tkedistro's
    baseline: tuple[str, ...]  # git's
    cold: bool = False  # each run starts without the answers kept in the cache (first run)


ROWS = (
    Row("--version", ("--version",), ("git", "--version")),
    Row("--help", ("--help",), ("git", "--help")),
    Row("patches -h", ("patches", "--help"), ("git", "--help")),
    Row("list", ("list",), ("git", "status", "--porcelain")),
    Row("list --json", ("list", "--json"), ("git", "status", "--porcelain")),
    Row("--help 1st", ("--help",), ("git", "--help"), cold=True),
    Row("list 1st", ("list",), ("git", "status", "--porcelain"), cold=True),
)


def make_distro(work: Path) -> Path:
    """A small distro repo: copies of ``releases/`` and ``patches/``, committed."""
    distro = work / "distro"
    for folder in ("releases", "patches"):
        shutil.copytree(REPO / folder, distro / folder)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "distro"]):
        subprocess.run(["git", "-c", "core.hooksPath=/dev/null", *args], cwd=distro,
                       env={**CLEAN, **IDENTITY}, check=True, capture_output=True)
    return distro


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds ``argv`` took: wall-clock, or with ``--cpu`` its user + system CPU time."""
    start, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    spent = (_children_cpu() - cpu) if CPU_TIME else time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n"
                         f"{done.stderr.decode(errors='replace')[-2000:]}")
    return spent


def round_of(row: Row, codes: list[Path], distro: Path, cache: Path) -> list[float]:
    """One run of ``row`` with each checkout's tkedistro, then git's: seconds each."""
    spent = []
    for code in codes:
        env = {**CLEAN, "PYTHONPATH": str(code), "TKEDISTRO_CACHE": str(cache)}
        if row.cold:
            shutil.rmtree(cache / "startup", ignore_errors=True)
        spent.append(timed([sys.executable, "-c", SCRIPT, *row.args], distro, env))
    spent.append(timed(list(row.baseline), distro, CLEAN))
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--before", type=Path,
                        help="Also measure this checkout's tkedistro, paired with this one's.")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder.")
    parser.add_argument("--cpu", action="store_true",
                        help="Time user + system CPU instead of wall-clock (steadier on a busy "
                             "machine; a process waiting for the CPU is not charged).")
    args = parser.parse_args()
    codes = [REPO, *([args.before.resolve()] if args.before else [])]
    work = Path(tempfile.mkdtemp(prefix="tkedistro-bench-startup-", dir="/var/tmp"))
    try:
        distro = make_distro(work)
        python = statistics.median(timed([sys.executable, "-c", "pass"], distro, CLEAN)
                                   for _ in range(args.runs))
        clock = "CPU (user + system)" if args.cpu else "wall-clock"
        print(f"{distro}; {clock} time; warm-up round, then median of {args.runs} paired "
              f"rounds; python start-up alone: {python * 1000:.1f} ms", flush=True)
        if kubectl := shutil.which("kubectl"):  # another Kubernetes CLI, for scale
            spent = [timed([kubectl, "--help"], distro, CLEAN) for _ in range(args.runs + 1)]
            print(f"kubectl --help: {statistics.median(spent[1:]) * 1000:.1f} ms", flush=True)
        before = f" {'before':>9} {'/git':>6} {'now/before':>10}" if args.before else ""
        print(f"{'':<12} {'tkedistro':>9} {'git':>8} {'ratio':>6}{before}   baseline")
        for row in ROWS:
            round_of(row, codes, distro, work / "cache")  # warm-up: page cache, pyc files
            rounds = [round_of(row, codes, distro, work / "cache") for _ in range(args.runs)]
            columns = zip(*rounds, strict=True)
            now, *old, git = (statistics.median(column) * 1000 for column in columns)
            shown = "".join(f" {o:7.1f}ms {o / git:5.2f}x {now / o:9.2f}x" for o in old)
            print(f"{row.label:<12} {now:7.1f}ms {git:6.1f}ms {now / git:5.2f}x{shown}   "
                  f"{' '.join(row.baseline)}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
