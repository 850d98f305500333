#!/usr/bin/env python3
"""Maintainer commands against plain git on the real Kubernetes v1.20.2 tree (issue 17).

Each row runs tkedistro as the installed script does (a new Python process entering
``tkedistro.cli.app:main``; this checkout first on ``PYTHONPATH``) beside what a maintainer
would type instead, in a second copy of the same tree:

  --version, --help            vs  git --version, git --help
  unchanged `source`           vs  git status, in the same tree   (issue 28 target: <= 1.0x)
  unchanged `source`           vs  git reset --hard <pin> && git am <the series>
  re-apply after editing the   vs  git reset --hard HEAD~1 && git am <that patch>
    message of the last patch                                     (issue 28 target: <= 1.5x)
  `forecast` of one tag        vs  git rebase --onto <tag> <pin> (then put back)
  `rebase` of the series       vs  the same git rebase --onto

DISTRO is a prepared distro repo (``releases/``, ``patches/``, ``_src/<release>`` made by
`tkedistro source`) and CACHE its cache (the mirror); both are modified while it runs and
put back after: give it copies (``cp -a`` of the real tier's distro and of its cache's
``mirrors/``, with the tree's ``objects/info/alternates`` pointed at the copy; or copy only
``releases/``, ``patches/`` and the mirrors and make a fresh tree with `tkedistro --root DISTRO
--cache-dir CACHE source RELEASE`: the real tree's ``_src`` also holds the Go build cache,
which no row reads). The tag is
``v1.20.3-bench``: v1.20.2 plus one upstream commit (CHANGELOG), made in a bare clone of
the v1.20.2 fixture (scripts/make-k8s-upstream.sh) without a checkout. One warm-up run of
every row, then the median of N runs; ratio = tkedistro / git, beside the issue's target
where it sets one. The code is byte-compiled first (``compileall``), as ``pip install`` does:
without ``.pyc`` files every run would compile its modules again. ``--before`` adds the same
figures for another checkout (e.g. ``git archive <commit> tkedistro | tar -x -C DIR``),
measured in turn with this one's, so both see the same load.

usage: bench/bench_maintainer.py --distro DISTRO --cache-dir CACHE [--runs 5] [--release 1.20]
       [--fixtures ~/.cache/tkedistro/fixtures] [--work /var/tmp/tkedistro-bench-maint]
       [--only version,help,status,source,reapply,forecast,rebase] [--before CHECKOUT]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench_source import nothing, timed  # the same timing helpers (bench/ is on sys.path)

REPO = Path(__file__).resolve().parents[1]
TAG = "v1.20.3-bench"
# what the installed `tkedistro` script runs (pip's console-script wrapper)
SCRIPT = ("import re, sys\nfrom tkedistro.cli.app import main\n"
          "sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\nsys.exit(main())\n")
CLEAN = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "TKEDISTRO_"))}
IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@invalid",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@invalid",
            "GIT_COMMITTER_DATE": "2021-02-02T10:00:00+0800"}


def sh(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
       ok: tuple[int, ...] = (0,)) -> str:
    done = subprocess.run(argv, cwd=cwd, env={**CLEAN, **(env or {})}, capture_output=True,
                          text=True, check=False)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n"
                         f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout.strip()


def git(cwd: Path, *args: str) -> str:
    return sh(["git", "-c", "core.hooksPath=/dev/null", *args], cwd=cwd, env=IDENTITY)


@dataclass
class Bench:
    distro: Path
    cache: Path
    release: str
    work: Path
    fixtures: Path

    def __post_init__(self) -> None:
        self.src = self.distro / "_src" / self.release
        self.state_dir = self.distro / "_src" / f".{self.release}.tkedistro"
        self.manifest = self.distro / "releases" / f"{self.release}.yaml"
        self.patches = self._series()
        self.pin = self._pin()
        self.head = git(self.src, "rev-parse", "HEAD")
        self.script = self.work / "tkedistro"
        self.script.write_text(SCRIPT)
        self.upstream = self._upstream()
        self.baseline = self._baseline_tree()
        self.saved = self.work / "saved"
        self._save()
        self.flip = 0

    # --- setup ----------------------------------------------------------------------------
    def _series(self) -> list[Path]:
        lines = self.manifest.read_text().split("\npatches:", 1)[1].splitlines()
        return [self.distro / line.split("file:", 1)[1].strip() for line in lines
                if line.strip().startswith("- file:")]

    def _pin(self) -> str:
        for line in self.manifest.read_text().splitlines():
            if line.strip().startswith("commit:"):
                return line.split(":", 1)[1].split("#")[0].strip().strip('"')
        raise SystemExit(f"{self.manifest}: no upstream commit")

    def _upstream(self) -> Path:
        """A bare clone of the v1.20.2 fixture (sharing its objects) with TAG on top."""
        bare = self.work / "upstream.git"
        if not bare.is_dir():
            sh(["git", "clone", "-q", "--bare", "--shared",
                str(self.fixtures / "kubernetes-v1.20.2.git"), str(bare)])
        if not git(bare, "tag", "-l", TAG):
            index = {"GIT_INDEX_FILE": str(self.work / "upstream.index")}
            sh(["git", "read-tree", self.pin], cwd=bare, env=index)
            blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=bare, check=True,
                                  input=f"# {TAG}\n", capture_output=True, text=True,
                                  env=CLEAN).stdout.strip()
            sh(["git", "update-index", "--add", "--cacheinfo",
                f"100644,{blob},CHANGELOG/CHANGELOG-1.20.md"], cwd=bare, env=index)
            tree = sh(["git", "write-tree"], cwd=bare, env=index)
            commit = sh(["git", "commit-tree", tree, "-p", self.pin, "-m", f"CHANGELOG: {TAG}"],
                        cwd=bare, env=IDENTITY)
            git(bare, "tag", "-a", TAG, "-m", TAG, commit)
        return bare

    def _baseline_tree(self) -> Path:
        """A copy of the prepared tree for the git rows, with TAG fetched."""
        tree = self.work / "baseline"
        if not tree.is_dir():
            sh(["cp", "-a", str(self.src), str(tree)])
        git(tree, "fetch", "-q", str(self.upstream), f"refs/tags/{TAG}:refs/tags/{TAG}")
        git(tree, "checkout", "-q", "-B", "bench", self.head)
        return tree

    def _save(self) -> None:
        shutil.rmtree(self.saved, ignore_errors=True)
        self.saved.mkdir()
        shutil.copy2(self.manifest, self.saved / "manifest.yaml")
        shutil.copytree(self.patches[0].parent, self.saved / "patches")
        shutil.copytree(self.state_dir, self.saved / "state")

    def restore(self) -> None:
        """Manifest, patch files, source state and ``_src`` as they were at the start."""
        shutil.copy2(self.saved / "manifest.yaml", self.manifest)
        shutil.rmtree(self.patches[0].parent)
        shutil.copytree(self.saved / "patches", self.patches[0].parent)
        shutil.rmtree(self.state_dir)
        shutil.copytree(self.saved / "state", self.state_dir)
        git(self.src, "checkout", "-q", "-B", "tkedistro", self.head)
        git(self.src, "reset", "-q", "--hard", self.head)

    # --- tkedistro ------------------------------------------------------------------------
    def tool(self, *args: str, where: bool, code: Path) -> Callable[[], None]:
        """``tkedistro [--root DISTRO --cache-dir CACHE] ARGS`` as the installed script, with
        the ``tkedistro`` package of checkout ``code``."""
        paths = ["--root", str(self.distro), "--cache-dir", str(self.cache)] if where else []
        return command([sys.executable, str(self.script), *paths, *args],
                       env={"PYTHONPATH": str(code)})

    def edit_last(self) -> None:
        """Change one word of the last patch's message (its commit, not its diff)."""
        self.flip += 1
        path = self.patches[-1]
        lines = path.read_text().split("\n")
        blank = lines.index("")  # the message starts after the mail header
        words = ("tkedistro-bench-a", "tkedistro-bench-b")
        text = lines[blank + 1]
        for word in words:
            text = text.replace(f" {word}", "")
        lines[blank + 1] = f"{text} {words[self.flip % 2]}"
        path.write_text("\n".join(lines))

    # --- plain git ------------------------------------------------------------------------
    def git_series(self) -> None:
        git(self.baseline, "reset", "-q", "--hard", self.pin)
        git(self.baseline, "am", "-q", "--3way", *map(str, self.patches))

    def git_status(self) -> None:
        git(self.src, "status")  # the tree tkedistro checks, as a maintainer would look

    def git_last(self) -> None:
        git(self.baseline, "reset", "-q", "--hard", "HEAD~1")
        git(self.baseline, "am", "-q", "--3way", str(self.patches[-1]))

    def git_rebase(self) -> None:
        git(self.baseline, "rebase", "-q", "--onto", TAG, self.pin)

    def git_back(self) -> None:
        git(self.baseline, "reset", "-q", "--hard", self.head)


def command(argv: list[str], env: dict[str, str] | None = None) -> Callable[[], None]:
    def run() -> None:
        sh(argv, env=env)

    return run


Action = tuple[Callable[[], None], Callable[[], None]]  # (prepare, what is timed)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    prepare: Callable[[], None]
    args: tuple[str, ...]  # of tkedistro
    where: bool  # with --root and --cache-dir
    git: Action
    target: float | None = None  # the highest ratio issue 28 accepts


def rows(b: Bench) -> list[Row]:
    upstream = ("--upstream", str(b.upstream))
    version, helps = command(["git", "--version"]), command(["git", "--help"])
    source = ("source", b.release)
    return [
        Row("version", "--version", nothing, ("--version",), False, (nothing, version)),
        Row("help", "--help", nothing, ("--help",), False, (nothing, helps)),
        Row("status", "unchanged source vs git status", nothing, source, True,
            (nothing, b.git_status), 1.0),
        Row("source", "unchanged source vs reset + am", nothing, source, True,
            (nothing, b.git_series)),
        Row("reapply", "re-apply after editing 1 message", b.edit_last, source, True,
            (nothing, b.git_last), 1.5),
        Row("forecast", "forecast of 1 tag", nothing,
            ("forecast", b.release, "--onto", TAG, *upstream), True, (b.git_back, b.git_rebase)),
        Row("rebase", f"rebase of the {len(b.patches)} patches", b.restore,
            ("rebase", b.release, "--onto", TAG, *upstream), True, (b.git_back, b.git_rebase)),
    ]


def measure(b: Bench, row: Row, codes: list[Path], runs: int) -> list[list[float]]:
    """Times of each code's tkedistro, then of git, runs interleaved (the load varies)."""
    actions = [(row.prepare, b.tool(*row.args, where=row.where, code=code)) for code in codes]
    actions.append(row.git)
    times: list[list[float]] = [[] for _ in actions]
    for _ in range(runs):
        for spent, action in zip(times, actions, strict=True):
            spent.append(timed(*action))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--distro", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--release", default="1.20")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fixtures", type=Path,
                        default=Path(os.environ.get("TKEDISTRO_FIXTURES")
                                     or Path("~/.cache/tkedistro/fixtures").expanduser()))
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/tkedistro-bench-maint"))
    parser.add_argument("--only", default="", help="Comma-separated row keys.")
    parser.add_argument("--before", type=Path,
                        help="Also measure this checkout's tkedistro (e.g. an older commit's "
                             "`git archive`), interleaved with this one's.")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    b = Bench(args.distro.resolve(), args.cache_dir.resolve(), args.release, args.work,
              args.fixtures)
    codes = [REPO, *([args.before.resolve()] if args.before else [])]
    for code in codes:  # as installed: pip byte-compiles the package
        sh([sys.executable, "-m", "compileall", "-q", str(code / "tkedistro")])
    chosen = [r for r in rows(b) if not args.only or r.key in args.only.split(",")]
    python = statistics.median(timed(nothing, command([sys.executable, "-c", "pass"]))
                               for _ in range(args.runs))
    print(f"{len(b.patches)} patches on {b.pin[:12]}, {b.src}; warm-up run, then median of "
          f"{args.runs}; python start-up alone: {python:.3f} s", flush=True)
    try:
        for row in chosen:  # warm-up: page cache, pyc files, first fetches
            measure(b, row, codes, 1)
        before = f" {'before':>10} {'ratio':>7}" if args.before else ""
        print(f"{'':<34} {'tkedistro':>10} {'git':>9} {'ratio':>7} {'target':>8}{before}")
        for row in chosen:
            times = measure(b, row, codes, args.runs)
            m, *old, g = (statistics.median(t) for t in times)
            shown = "".join(f" {o:9.3f}s {o / g:6.2f}x" for o in old)
            spread = " ".join(f"{t:.2f}" for t in times[0])
            target = f"<={row.target:.1f}x {'ok' if m / g <= row.target else 'OVER'}" \
                if row.target else ""
            print(f"{row.label:<34} {m:9.3f}s {g:8.3f}s {m / g:6.2f}x {target:>8}{shown}   "
                  f"(runs: {spread}; git: {' '.join(f'{t:.2f}' for t in times[-1])})",
                  flush=True)
    finally:
        b.restore()
        b.git_back()


if __name__ == "__main__":
    main()
