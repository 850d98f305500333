"""Component images in the local engine, built from ``_output/<release>/bin/<os>/<arch>/``.

``ensure_component_images`` makes (or reuses) the Debian base for the platform and one image
per component on it, tagged ``<repository>/<component>:<distro version>``. An image whose
``org.tkedistro.inputs`` label matches its recipe (binary sha256, base id, Dockerfile, labels)
is reused: a second call builds nothing. ``tag_kubeadm_images`` puts the upstream etcd and
pause images (``upstream/``) under the same repository, so kubeadm finds all of its images in
one place.
Everything goes through the ``ImageEngine`` protocol (``engine/protocols.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from tkedistro.core import console, files
from tkedistro.core.errors import BuildError
from tkedistro.core.locks import exclusive_lock
from tkedistro.core.workspace import Workspace
from tkedistro.debian.rootfs import INPUTS_LABEL, DebianBase
from tkedistro.engine.imagerecord import ImageRecord, local_id
from tkedistro.engine.protocols import ImageEngine
from tkedistro.images.base import STEP, ensure_component_base
from tkedistro.images.recipes import (
    COMPONENTS,
    DEFAULT_REPOSITORY,
    ComponentRecipe,
    plan_components,
    write_context,
)
from tkedistro.images.upstream.imageset import LOCAL_PREFIX
from tkedistro.model.manifest import Manifest

# kubeadm v1.20's other images (constants.DefaultEtcdVersion, PauseVersion) and where the
# upstream images put them in the engine (``upstream/imageset.py`` ``local_ref``).
KUBEADM_EXTRAS = {"etcd": "3.4.13-0", "pause": "3.2"}
CONFORMANCE_PREFIX = f"{LOCAL_PREFIX}/k8s.gcr.io"
LOCK_WAIT = 900.0  # seconds: a cold base (debootstrap) takes about 2 minutes here


@dataclass(frozen=True)
class ComponentImage:
    """One image in the local engine: its ref and id, what it holds, and whether it was reused."""

    component: str
    ref: str
    image_id: str
    platform: str
    reused: bool
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"component": self.component, "ref": self.ref, "image_id": self.image_id,
                "platform": self.platform, "reused": self.reused, "labels": dict(self.labels)}


def work_dir(ws: Workspace) -> Path:
    """The base's scratch space, build contexts and ``images.json`` (which id for which inputs)."""
    return ws.cache / "component-images"


def ensure_component_images(ws: Workspace, release: str, manifest: Manifest,
                            engine: ImageEngine, platform: str = "linux/amd64",
                            repository: str = DEFAULT_REPOSITORY) -> list[ComponentImage]:
    """The four component images of ``release`` for ``platform``, built or reused.

    Reads ``_output/<release>``: a caller that may race a build holds ``output_lock`` (this
    does not take it, so a cluster run that holds it can call this). Two runs share the work
    folder one after the other (the second waits, then finds the images made)."""
    work = work_dir(ws)
    with exclusive_lock(work / ".lock", f"another tkedistro run is making component images "
                        f"(lock {work / '.lock'})", wait=LOCK_WAIT,
                        waiting="another run is making component images; waiting for it"):
        base = ensure_component_base(engine, work, platform)
        return build_component_images(ws.output_dir(release), manifest, engine, base, work,
                                      platform, repository)


def build_component_images(output_dir: Path, manifest: Manifest, engine: ImageEngine,
                           base: DebianBase, work: Path, platform: str = "linux/amd64",
                           repository: str = DEFAULT_REPOSITORY,
                           components: tuple[str, ...] = COMPONENTS) -> list[ComponentImage]:
    """One image per component on ``base`` (any base: tests pass a small one)."""
    recipes = plan_components(output_dir, manifest, base, platform, repository, components)
    return [_ensure_one(recipe, engine, work) for recipe in recipes]


def _ensure_one(recipe: ComponentRecipe, engine: ImageEngine, work: Path) -> ComponentImage:
    labels = recipe.labels()
    digest = labels[INPUTS_LABEL]
    existing = engine.labels(recipe.ref)
    if existing is not None and existing.get(INPUTS_LABEL) == digest:
        image_id = local_id(engine, recipe.ref, digest, work)
        return ComponentImage(recipe.component, recipe.ref, image_id, recipe.platform, True,
                              dict(existing))
    context = work / "context" / recipe.platform.replace("/", "-") / recipe.component
    write_context(context, recipe)
    try:
        with console.step(STEP, f"build {recipe.ref} ({recipe.platform})"):
            built = engine.build(context, recipe.ref, labels)
    finally:
        with suppress(OSError):
            files.remove(context)
    ImageRecord(work / "images.json").remember(recipe.ref, digest, built.id)
    return ComponentImage(recipe.component, recipe.ref, built.id, recipe.platform, False,
                          dict(built.labels or labels))


@dataclass(frozen=True)
class TaggedImage:
    """An existing image given kubeadm's name under the repository."""

    ref: str
    source: str


def kubeadm_extra_refs(repository: str = DEFAULT_REPOSITORY,
                       source_prefix: str = CONFORMANCE_PREFIX) -> list[TaggedImage]:
    return [TaggedImage(f"{repository.rstrip('/')}/{name}:{tag}", f"{source_prefix}/{name}:{tag}")
            for name, tag in KUBEADM_EXTRAS.items()]


def tag_kubeadm_images(engine: ImageEngine, repository: str = DEFAULT_REPOSITORY,
                       source_prefix: str = CONFORMANCE_PREFIX) -> list[TaggedImage]:
    """``<repository>/etcd:3.4.13-0`` and ``<repository>/pause:3.2`` from the upstream
    images; ``BuildError`` naming every one that is missing (nothing tagged then)."""
    wanted = kubeadm_extra_refs(repository, source_prefix)
    missing = [t.source for t in wanted if engine.labels(t.source) is None]
    if missing:
        raise BuildError(f"kubeadm's images need {', '.join(missing)} in the local engine",
                         hint="make the conformance images first: "
                              "tkedistro conformance images RELEASE")
    for tagged in wanted:
        engine.tag(tagged.source, tagged.ref)
    return wanted
