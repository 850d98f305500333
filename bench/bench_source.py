#!/usr/bin/env python3
"""Source preparation benchmarks (issue 3) on the real Kubernetes v1.20.2 tree.

tkedistro: cold prepare (empty cache, no _src), warm prepare (mirror cached, no _src),
unchanged re-run, re-apply after editing the last patch. Each beside the naive baselines,
measured in the same run: extract the source archive + `patch -p1` each patch
(tke-k8s-distro), and a fresh `git clone` + `git am` (EKS-D). The series is this repo's
releases/1.20.yaml series plus one synthetic last patch (README.md), re-pinned to the local
fixture made by scripts/make-k8s-upstream.sh. One warm-up run of everything, then medians of
N runs and ratios. CLI figures include Python start-up; in-process ones call prepare_source.

usage: bench/bench_source.py [--runs 3] [--fixtures ~/.cache/tkedistro/fixtures] [--keep]
                             [--quick]   (only the re-run and re-apply rows: minutes less)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.real_k8s.conftest import FIXTURE_COMMIT, copy_distro  # noqa: E402
from tests.real_k8s.test_source_real import readme_patch  # noqa: E402

ENV = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
GIT_ID = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@invalid",
          "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@invalid"}


def sh(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, cwd=cwd, env={**ENV, **(env or {})}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Bench:
    def __init__(self, work: Path, fixtures: Path) -> None:
        self.work = work
        self.upstream = fixtures / "kubernetes-v1.20.2.git"
        self.tarball = fixtures / "kubernetes_1.20.5+really1.20.2.orig.tar.gz"
        self.distro = copy_distro(work / "distro", self.upstream)
        self.cache = work / "cache"
        self.src = self.distro / "_src" / "1.20"
        self.last = self.distro / "patches" / "1.20" / "9999-bench-readme.patch"
        self.flip = 0
        self._add_last_patch()
        self.patches = self._series()

    def _add_last_patch(self) -> None:
        self.last.parent.mkdir(parents=True, exist_ok=True)
        self.last.write_text(readme_patch(self.upstream, "TKE bench 0"))
        manifest = self.distro / "releases" / "1.20.yaml"
        text = manifest.read_text().replace("patches: []", "patches:").rstrip("\n")
        manifest.write_text(text + f"\n  - file: {self.last.relative_to(self.distro)}\n")

    def _series(self) -> list[Path]:
        from tkedistro.model.manifest import load_manifest

        manifest = load_manifest(self.distro / "releases" / "1.20.yaml")
        return [self.distro / p.file for p in manifest.patches]

    # --- tkedistro ---------------------------------------------------------------------
    def cli(self) -> None:
        sh([sys.executable, "-m", "tkedistro", "--root", str(self.distro), "source", "1.20"],
           env={"TKEDISTRO_CACHE": str(self.cache)})

    def in_process(self) -> None:
        from tkedistro.core.workspace import Workspace
        from tkedistro.source.prepare import prepare_source

        with contextlib.redirect_stderr(io.StringIO()):
            prepare_source(Workspace(self.distro, self.cache), "1.20")

    def drop_src(self) -> None:
        shutil.rmtree(self.distro / "_src", ignore_errors=True)

    def drop_cache(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)

    def edit_last(self) -> None:
        self.flip += 1
        self.last.write_text(readme_patch(self.upstream, f"TKE bench {self.flip}"))

    # --- baselines ----------------------------------------------------------------------
    def archive_patch(self) -> None:
        dest = self.work / "baseline-archive"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        sh(["tar", "-C", str(dest), "-xzf", str(self.tarball)])
        tree = dest / "kubernetes-1.20.2"
        for patch in self.patches:
            sh(["patch", "-p1", "-s", "-i", str(patch)], cwd=tree)

    def clone_am(self) -> None:
        dest = self.work / "baseline-clone"
        shutil.rmtree(dest, ignore_errors=True)
        sh(["git", "clone", "-q", self.upstream.as_uri(), str(dest)])
        sh(["git", "checkout", "-q", FIXTURE_COMMIT], cwd=dest)
        if self.patches:
            sh(["git", "am", "-q", "--3way", *map(str, self.patches)], cwd=dest, env=GIT_ID)


def timed(prepare: Callable[[], None], action: Callable[[], None]) -> float:
    prepare()
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def nothing() -> None:
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fixtures", type=Path,
                        default=Path(os.environ.get("TKEDISTRO_FIXTURES")
                                     or Path("~/.cache/tkedistro/fixtures").expanduser()))
    parser.add_argument("--keep", action="store_true", help="Keep the work folder.")
    parser.add_argument("--quick", action="store_true",
                        help="Skip baselines, cold and warm prepare (no ratios).")
    args = parser.parse_args()
    sh([str(REPO / "scripts" / "make-k8s-upstream.sh"),
        str(args.fixtures / "kubernetes-v1.20.2.git")])
    work = Path(tempfile.mkdtemp(prefix="tkedistro-bench-", dir="/var/tmp"))
    try:
        run_all(Bench(work, args.fixtures), args.runs, args.quick)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run_all(b: Bench, runs: int, quick: bool) -> None:
    def cold() -> None:
        b.drop_src()
        b.drop_cache()

    scenarios: list[tuple[str, Callable[[], None], Callable[[], None]]] = [
        ("baseline: extract archive + patch -p1", nothing, b.archive_patch),
        ("baseline: fresh git clone + git am", nothing, b.clone_am),
        ("tkedistro cold prepare (CLI)", cold, b.cli),
        ("tkedistro warm prepare (CLI)", b.drop_src, b.cli),
        ("tkedistro unchanged re-run (CLI)", nothing, b.cli),
        ("tkedistro unchanged re-run (in-process)", nothing, b.in_process),
        ("tkedistro re-apply edited last patch (CLI)", b.edit_last, b.cli),
        ("tkedistro re-apply edited last patch (in-process)", b.edit_last, b.in_process),
    ]
    if quick:
        b.cli()  # the cold prepare, untimed
        scenarios = [s for s in scenarios if "re-" in s[0]]
    print(f"series: {len(b.patches)} patches ({len(b.patches) - 1} from the project + "
          f"1 synthetic); warm-up run, then median of {runs}", flush=True)
    for _, prepare, action in scenarios:  # warm-up: page cache, first writes, pyc
        timed(prepare, action)
    medians: dict[str, float] = {}
    for name, prepare, action in scenarios:
        times = [timed(prepare, action) for _ in range(runs)]
        medians[name] = statistics.median(times)
        spread = " ".join(f"{t:.2f}" for t in times)
        print(f"{name:<52} {medians[name]:8.3f} s   (runs: {spread})", flush=True)
    if not quick:
        print_ratios(medians)


def print_ratios(m: dict[str, float]) -> None:
    archive = m["baseline: extract archive + patch -p1"]
    clone = m["baseline: fresh git clone + git am"]
    rows = [
        ("cold prepare", m["tkedistro cold prepare (CLI)"]),
        ("warm prepare", m["tkedistro warm prepare (CLI)"]),
        ("unchanged re-run (CLI)", m["tkedistro unchanged re-run (CLI)"]),
        ("unchanged re-run (in-process)", m["tkedistro unchanged re-run (in-process)"]),
        ("re-apply last patch (CLI)", m["tkedistro re-apply edited last patch (CLI)"]),
        ("re-apply last patch (in-process)",
         m["tkedistro re-apply edited last patch (in-process)"]),
    ]
    print()
    print(f"{'tkedistro':<34} {'median':>9} {'vs archive+patch':>17} {'vs clone+am':>12}")
    for name, value in rows:
        print(f"{name:<34} {value:8.3f}s {value / archive:16.3f}x {value / clone:11.3f}x")


if __name__ == "__main__":
    main()
