#!/usr/bin/env python3
"""Release artifacts (issue 14) against the naive way, on a built output of the real tree.

1. tarballs: `write_tarballs` (every server/node/client tarball of every platform, threads,
   and kubernetes-src.tar.gz, which the naive side does not make)
   vs. GNU tar + gzip of the same layouts, one after the other, with the flags that make them
   reproducible (`--sort=name --owner=0 --group=0 --numeric-owner --mtime=@EPOCH`, `gzip -n`);
2. checksums: `write_checksums` (one read per file for SHA256SUMS and SHA512SUMS) vs.
   `sha256sum` then `sha512sum` over the same files.

Prints seconds and ratios (tool / naive). The output is read, never written: the tool writes
into a scratch copy made of hard links.

usage: bench/bench_artifacts.py [--root /var/tmp/tkedistro-realk8s/distro] [--release 1.20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tkedistro.artifacts.checksums import write_checksums
from tkedistro.artifacts.context import ReleaseContext
from tkedistro.artifacts.tarballs import write_tarballs


def link_copy(src: Path, dest: Path) -> None:
    for path in src.rglob("*"):
        target = dest / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)


def context(root: Path, release: str, info: dict[str, object]) -> ReleaseContext:
    tree = root / "_src" / release
    commit = str(info["tree_commit"])
    epoch = int(subprocess.run(["git", "-C", str(tree), "show", "-s", "--format=%ct", commit],
                               capture_output=True, text=True, check=True).stdout)
    upstream = dict(info["upstream"])  # type: ignore[call-overload]
    return ReleaseContext(
        release=release, distro_version=str(info["distro_version"]),
        upstream_url=str(upstream["url"]), tag=str(upstream["tag"]),
        upstream_commit=str(upstream["commit"]), tree_commit=commit, tree=tree,
        source_date_epoch=epoch, platforms=tuple(info["platforms"]),  # type: ignore[arg-type]
        components=tuple(info["components"]), image_components=(),  # type: ignore[arg-type]
        patches=(), builder_image="", builder_image_id="", go_version="", tool_version="")


def naive_tarballs(scratch: Path, ctx: ReleaseContext) -> float:
    """The same layouts staged as folders, then `tar | gzip -n` one tarball after another."""
    stage = scratch / "naive"
    for release_tar in sorted((scratch / "tool" / "release").glob("kubernetes-*-linux-*.tar.gz")):
        folder = stage / release_tar.name.removesuffix(".tar.gz")
        folder.mkdir(parents=True)
        subprocess.run(["tar", "-C", str(folder), "-xzf", str(release_tar)], check=True)
    start = time.monotonic()  # staging the folders is not counted against the naive way
    for folder in sorted(p for p in stage.iterdir() if p.is_dir()):
        with (stage / f"{folder.name}.tar.gz").open("wb") as out:
            tar = subprocess.Popen(
                ["tar", "-C", str(folder), "--sort=name", "--owner=0", "--group=0",
                 "--numeric-owner", f"--mtime=@{ctx.source_date_epoch}", "-cf", "-",
                 "kubernetes"], stdout=subprocess.PIPE)
            subprocess.run(["gzip", "-n", "-6"], stdin=tar.stdout, stdout=out, check=True)
            tar.wait()
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/var/tmp/tkedistro-realk8s/distro"))
    parser.add_argument("--release", default="1.20")
    args = parser.parse_args()
    out = args.root / "_output" / args.release
    info = json.loads((out / "build-info.json").read_text())
    ctx = context(args.root, args.release, info)
    scratch = Path(tempfile.mkdtemp(prefix="tkedistro-bench-artifacts-", dir="/var/tmp"))
    try:
        tool_out = scratch / "tool"
        link_copy(out / "bin", tool_out / "bin")
        start = time.monotonic()
        written = write_tarballs(tool_out, ctx)
        tool_tar = time.monotonic() - start
        naive_tar = naive_tarballs(scratch, ctx)
        files = [str(p.relative_to(tool_out)) for p in sorted((tool_out / "bin").rglob("*"))
                 if p.is_file()] + [w for w in written]
        start = time.monotonic()
        write_checksums(tool_out, files)
        tool_sums = time.monotonic() - start
        start = time.monotonic()
        for command in ("sha256sum", "sha512sum"):
            subprocess.run([command, *files], cwd=tool_out, check=True, capture_output=True)
        naive_sums = time.monotonic() - start
        size = sum((tool_out / f).stat().st_size for f in files) / 2**30
        print(f"tarballs ({len(written)} files, {', '.join(ctx.platforms)}): tool "
              f"{tool_tar:.1f}s, GNU tar + gzip -n one by one {naive_tar:.1f}s "
              f"(ratio {tool_tar / naive_tar:.2f})")
        print(f"checksums ({len(files)} files, {size:.2f} GiB): tool {tool_sums:.1f}s, "
              f"sha256sum + sha512sum {naive_sums:.1f}s (ratio {tool_sums / naive_sums:.2f})")
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
