"""Upstream images made offline through the image engine, under their upstream refs.

``build_image_set`` takes the refs a caller wants (the suite's images, the cluster's pause and
etcd) and, for each one ``recipes.py`` knows, builds it with the engine (``docker build`` of a
context folder under ``work``): binaries from the tree (built once per commit in the builder
container, no network), tools and daemons from one Debian base (``debianbase.py``). Every
image carries where it came from and the digest of its inputs; an image whose local copy
carries the same digest is reused, not rebuilt. Pushing to a registry is the caller's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from tkedistro.core import console
from tkedistro.core.errors import BuildError
from tkedistro.core.runner import run
from tkedistro.engine.imagerecord import ImageRecord, local_id
from tkedistro.engine.protocols import ContainerBackend, ContainerSpec, ImageEngine, Mount
from tkedistro.images.upstream import recipes
from tkedistro.images.upstream.debianbase import INPUTS_LABEL, DebianBase, ensure_base
from tkedistro.images.upstream.imagebuild import (
    BuildTool,
    build_binaries,
    inputs_for,
    labels_for,
    source_line,
    write_context,
)
from tkedistro.images.upstream.recipes import Recipe, recipe_for

if TYPE_CHECKING:
    from tkedistro.core.workspace import Workspace

short_name = recipes.short_name
__all__ = ["BuildTool", "ImageOutcome", "ImageSet", "backend_build_tool", "build_image_set",
           "expected_images", "short_name"]


def images_dir(ws: Workspace, release: str) -> Path:
    """Binaries, build contexts and repo lists of these images (in the user cache, so a
    rebuild of ``_output`` keeps them; the cluster and a conformance run share them)."""
    return ws.cache / "conformance-images" / release


# Local names are the suite's refs under this prefix, so a build never shadows the real
# upstream image of the same name in the engine (``docker run k8s.gcr.io/pause:3.2`` elsewhere).
LOCAL_PREFIX = "tkedistro.local/conformance"


def local_ref(ref: str, prefix: str = LOCAL_PREFIX) -> str:
    """``k8s.gcr.io/pause:3.2`` -> ``tkedistro.local/conformance/k8s.gcr.io/pause:3.2``."""
    return f"{prefix}/{ref}"


@dataclass(frozen=True)
class ImageOutcome:
    ref: str  # the suite's name
    image_id: str
    source: str  # one human line
    labels: Mapping[str, str] = field(default_factory=dict)
    reused: bool = False
    local: str = ""  # its name in the local engine (``local_ref``)

    def to_json(self) -> dict[str, object]:
        return {"ref": self.ref, "image_id": self.image_id, "source": self.source,
                "reused": self.reused, "labels": dict(self.labels)}


@dataclass(frozen=True)
class ImageSet:
    built: tuple[ImageOutcome, ...]
    no_recipe: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"built": [o.to_json() for o in self.built], "no_recipe": list(self.no_recipe)}


def expected_images(e2e_test: Path) -> list[str]:
    out = run([e2e_test, "--list-images"], message="e2e.test --list-images failed").stdout
    return sorted({line.strip() for line in out.splitlines() if line.strip()})


def backend_build_tool(backend: ContainerBackend, image: str) -> BuildTool:
    """Build in a session of the build backend (no network, as the tree's owner)."""

    def build(src: Path, out: Path, argv: list[str]) -> None:
        src, out = src.resolve(), out.resolve()
        owner = src.stat()
        spec = ContainerSpec(
            image=image, user=f"{owner.st_uid}:{owner.st_gid}", network="none",
            env={"HOME": "/tmp", "CGO_ENABLED": "0", "GOFLAGS": "-mod=vendor",
                 "GOCACHE": "/src/_output/local/go/cache"},
            mounts=(Mount(src, PurePosixPath("/src")), Mount(out, PurePosixPath("/out"))),
            workdir=PurePosixPath("/src"),
        )
        with backend.session(spec) as session:
            result = session.run(argv)
        if not result.ok:
            raise BuildError(f"building a test image binary failed: {' '.join(argv)}",
                             details=result.output[-4000:])

    return build


def plan(wanted: Sequence[str]) -> tuple[list[tuple[str, Recipe]], tuple[str, ...]]:
    """(ref, recipe) in build order (a parent image first), and the refs with no recipe."""
    found: dict[str, Recipe] = {}
    missing = []
    for ref in dict.fromkeys(wanted):
        recipe = recipe_for(ref)
        if recipe is None:
            missing.append(ref)
            continue
        parent = recipe_for(recipe.parent)
        if parent is not None:
            found.setdefault(recipe.parent, parent)
        found[ref] = recipe
    order = sorted(found.items(), key=lambda item: item[1].parent not in ("base", "scratch"))
    return order, tuple(missing)


def build_image_set(tree: Path, commit: str, wanted: Sequence[str], engine: ImageEngine,
                    tool: BuildTool, work: Path, prefix: str = LOCAL_PREFIX) -> ImageSet:
    """Build (or reuse) every wanted ref a recipe knows; the others come back in ``no_recipe``.

    ``tree`` is the source tree at ``commit``; binaries are cached in ``work/bin/COMMIT``.
    Each image is tagged ``local_ref(ref, prefix)`` in the engine.
    """
    order, missing = plan(wanted)
    base = ensure_base(engine, work) if order else None
    bins = work / "bin" / commit
    build_binaries(tree, bins, [b for _, r in order for b in r.binaries], tool)
    outcomes: dict[str, ImageOutcome] = {}
    for ref, recipe in order:
        outcomes[ref] = _build_one(ref, recipe, tree, commit, engine, work, base, outcomes,
                                   prefix)
    return ImageSet(tuple(outcomes.values()), missing)


def _parent_id(recipe: Recipe, base: DebianBase | None,
               done: Mapping[str, ImageOutcome]) -> str:
    if recipe.parent == "base":
        return base.image_id if base else ""
    if recipe.parent == "scratch":
        return ""
    return done[recipe.parent].image_id


def _build_one(ref: str, recipe: Recipe, tree: Path, commit: str, engine: ImageEngine,
               work: Path, base: DebianBase | None, done: Mapping[str, ImageOutcome],
               prefix: str) -> ImageOutcome:
    parent = done[recipe.parent].local if recipe.parent in done else recipe.parent
    inputs = inputs_for(ref, recipe, tree, commit, work / "bin" / commit, base,
                        _parent_id(recipe, base, done), parent)
    local = local_ref(ref, prefix)
    source = source_line(recipe, commit, base)
    labels = labels_for(inputs, recipe, source)
    digest = labels[INPUTS_LABEL]
    existing = engine.labels(local)
    if existing is not None and existing.get(INPUTS_LABEL) == digest:
        image_id = local_id(engine, local, digest, work)
        return ImageOutcome(ref, image_id, source, dict(existing), reused=True, local=local)
    context = write_context(work / "context" / _folder(ref), inputs)
    with console.step("conformance_images", f"build {ref}"):
        built = engine.build(context, local, labels)
    ImageRecord(work / "images.json").remember(local, digest, built.id)
    return ImageOutcome(ref, built.id, source, dict(built.labels or labels), reused=False,
                        local=local)


def _folder(ref: str) -> str:
    return f"{recipes.short_name(ref)}-{recipes.tag_of(ref)}"


