"""``--verify-reproducible``: build again from a fresh copy of the patched tree at another
path (host and container) with a cold Go cache, and compare ``SHA256SUMS``. The second build's
artifacts (images, tarballs, SBOM) are made again too (``finish``), reusing nothing, and
compared with the published ones.

When they differ the second build is kept as ``_output/<release>.verify`` (beside the published
output) so the binaries can be compared; a later identical verification removes it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from tkedistro.build import output, publish
from tkedistro.build.container import build_in_container
from tkedistro.build.plan import BuildPlan
from tkedistro.core import console, files
from tkedistro.core.workspace import Workspace
from tkedistro.engine.protocols import ContainerBackend
from tkedistro.git.repo import Repo

# makes the second build's artifacts in its staged output: (out, go version, binaries) -> sums
SecondFinish = Callable[[Path, str, Sequence[str]], dict[str, str]]
VERIFY_SRC = PurePosixPath("/tkedistro/verify/src/kubernetes")


def fresh_tree(src: Path, commit: str, dest: Path) -> None:
    """A clone of ``src`` at ``commit`` with nothing from earlier builds in it."""
    Repo.clone_at(src, commit, dest).close()


def compare(first: dict[str, str], second: dict[str, str]) -> list[str]:
    return sorted(rel for rel in first.keys() | second.keys() if first.get(rel) != second.get(rel))


def verify_dir(final: Path) -> Path:
    """Where a second build that differs is kept: ``_output/<release>.verify``."""
    return final.with_name(f"{final.name}.verify")


def verify_reproducible(backend: ContainerBackend, plan: BuildPlan, ws: Workspace,
                        src_tree: Path, final: Path,
                        finish: SecondFinish) -> dict[str, Any]:
    """Build ``plan`` again from a fresh clone of ``src_tree``; compare with ``final``."""
    published = output.read_sha256sums(final / output.SUMS_NAME)
    second_final = files.check_path(verify_dir(final))  # kept only when they differ
    scratch = files.make_temp_dir(final.parent, f".{final.name}.verify-")
    try:
        tree = scratch / "tree"
        with console.step("verify_reproducible", f"fresh tree at {tree}"):
            fresh_tree(src_tree, plan.tree_commit, tree)
            with publish.staging_for(second_final) as staging:
                built = build_in_container(backend, plan, ws, tree, staging, second_final,
                                           VERIFY_SRC)
                second = finish(staging.out, built.go_version, built.binaries)
                differ = compare(published, second)
                if differ:
                    publish.publish(staging.out, second_final)
    finally:
        _remove_quietly(scratch)
    if not differ:
        _remove_quietly(second_final)
    return {"second_tree": str(tree), "differ": differ, "second_sha256": second,
            "kept": str(second_final) if differ else None}


def _remove_quietly(folder: Path) -> None:
    try:
        files.remove(folder)
    except OSError as exc:
        console.warn(f"could not remove {folder}: {exc.strerror or exc}; remove it by hand")
