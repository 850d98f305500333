"""The images conformance needs, made available without the internet.

From the release's source tree: which images the conformance specs pull (``catalog``), each
built by ``images/upstream/imageset.py`` (from the tree or from Debian packages), pushed to a
registry (the local one, ``engine/registry.py``, or any given with ``--push``) under the names
the suite's own ``KUBE_TEST_REPO_LIST`` redirect gives them (``repolist``). What could not be
made is reported with the specs that need it, so the suite can skip those specs instead of
letting each wait out its timeout for an image that will never come.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tkedistro.conformance import catalog as catalog_mod
from tkedistro.conformance import repolist
from tkedistro.core import console
from tkedistro.core.errors import ClusterError
from tkedistro.core.workspace import Workspace
from tkedistro.engine.engines import Engines
from tkedistro.engine.protocols import ImageEngine, RegistryLogin
from tkedistro.images.upstream import imageset
from tkedistro.images.upstream.imageset import images_dir
from tkedistro.model.manifest import Manifest


@dataclass(frozen=True)
class ImageRecord:
    ref: str  # the name the suite asks for by default (k8s.gcr.io/pause:3.2)
    pushed: str  # the name in the registry, as the redirect gives it
    digest: str
    source: str
    reused: bool

    def to_json(self) -> dict[str, object]:
        return {"ref": self.ref, "pushed": self.pushed, "digest": self.digest,
                "source": self.source, "reused": self.reused}


@dataclass(frozen=True)
class MissingImage:
    ref: str
    specs: tuple[str, ...]
    why: str

    def to_json(self) -> dict[str, object]:
        return {"ref": self.ref, "why": self.why, "specs": list(self.specs)}


@dataclass(frozen=True)
class OfflineImages:
    registry: str
    repo_list: Path
    images: tuple[ImageRecord, ...] = ()
    missing: tuple[MissingImage, ...] = ()
    expected_to_fail: tuple[str, ...] = ()
    untraced: tuple[str, ...] = ()  # no recipe, and no conformance spec traced to them
    seconds: float = 0.0
    catalog: tuple[str, ...] = field(default=())  # what the registry lists afterwards

    @property
    def skipped_specs(self) -> tuple[str, ...]:
        return tuple(sorted({s for m in self.missing for s in m.specs}))

    def to_json(self) -> dict[str, object]:
        return {
            "registry": self.registry, "repo_list": str(self.repo_list),
            "images": [i.to_json() for i in self.images],
            "missing": [m.to_json() for m in self.missing],
            "expected_to_fail": list(self.expected_to_fail),
            "not_built_untraced": list(self.untraced),
            "rebuilt": sum(1 for i in self.images if not i.reused),
            "seconds": round(self.seconds, 1), "registry_catalog": list(self.catalog),
        }

    def format_text(self) -> str:
        rebuilt = sum(1 for i in self.images if not i.reused)
        lines = [f"{len(self.images)} conformance images in {self.registry} "
                 f"({rebuilt} built, {len(self.images) - rebuilt} reused) "
                 f"in {self.seconds:.0f}s"]
        lines += [f"  {i.pushed}  {i.digest[:19]}  {i.source}" for i in self.images]
        if self.expected_to_fail:
            lines.append("  left unreachable on purpose (specs expect these pulls to fail): "
                         + ", ".join(self.expected_to_fail))
        if self.untraced:
            lines.append("  not built, and no conformance spec traced to them (only shared e2e "
                         "framework code names them): " + ", ".join(self.untraced))
        for m in self.missing:
            lines.append(f"  MISSING {m.ref}: {m.why}; needed by {len(m.specs)} spec(s)")
        lines.append(f"  KUBE_TEST_REPO_LIST file: {self.repo_list}")
        return "\n".join(lines)


NO_RECIPE = "no recipe: nothing in the tree or in Debian builds it"


def repo_list_path(ws: Workspace, release: str, registry: str) -> Path:
    safe = registry.replace(":", "_").replace("/", "_")
    return images_dir(ws, release) / f"repo-list-{safe}.yaml"


def prepare_images(ws: Workspace, release: str, manifest: Manifest, registry: str,
                   has: Callable[[str], bool] | None = None,
                   served_as: str | None = None, *, engines: Engines,
                   login: RegistryLogin | None = None) -> OfflineImages:
    """Build (or reuse) every image the conformance specs need, push it to ``registry`` and
    write the repo list; raises ``ClusterError`` when the source tree is missing.

    ``served_as``: the address the cluster's nodes pull the same storage from, when not
    ``registry`` itself (the repo list names that one); ``login``: the local registry's
    (else the engine's own credentials for ``registry``).
    """
    from tkedistro.git.repo import Repo

    start = time.monotonic()
    tree = ws.src_dir(release)
    if not (tree / "test" / "utils" / "image" / "manifest.go").is_file():
        raise ClusterError(f"{ws.rel(tree)}: no Kubernetes source tree to build the images from",
                           hint=f"prepare it first: tkedistro source {release}")
    found = catalog_mod.load_catalog(tree)
    wanted = [n.ref for n in found.needs if not n.expect_failure]
    engine = engines.images
    tool = imageset.backend_build_tool(engines.containers, manifest.builder.image)
    with console.step("conformance_images", f"build {len(wanted)} images"):
        built = imageset.build_image_set(tree, Repo(tree).head(), wanted, engine, tool,
                                         images_dir(ws, release) / "work")
    records = _push(built.built, found, registry, engine, login)
    missing = _missing(found, {r.ref for r in records}, set(built.no_recipe), records, has)
    untraced = tuple(m.ref for m in missing if not m.specs and m.ref in built.no_recipe)
    missing = [m for m in missing if m.ref not in untraced]
    path = repo_list_path(ws, release, served_as or registry)
    repolist.write_repo_list(path, repolist.repo_list(found, served_as or registry))
    return OfflineImages(
        registry=registry, repo_list=path, images=tuple(records), missing=tuple(missing),
        expected_to_fail=tuple(n.ref for n in found.needs if n.expect_failure),
        untraced=untraced, seconds=time.monotonic() - start)


def _push(built: Sequence[imageset.ImageOutcome], found: catalog_mod.Catalog, registry: str,
          engine: ImageEngine, login: RegistryLogin | None) -> list[ImageRecord]:
    records = []
    with console.step("conformance_images", f"push {len(built)} images to {registry}"):
        for outcome in built:
            target = repolist.redirect(outcome.ref, found, registry)
            engine.tag(outcome.local or outcome.ref, target)
            try:
                digest = engine.push(target, login)
            finally:
                engine.remove(target)  # only the tag (the local one stays); ports change
            console.verbose(f"pushed {target} {digest}")
            records.append(ImageRecord(outcome.ref, target, digest, outcome.source,
                                       outcome.reused))
    return records


def _missing(found: catalog_mod.Catalog, pushed: set[str], no_recipe: set[str],
             records: Sequence[ImageRecord],
             has: Callable[[str], bool] | None) -> list[MissingImage]:
    absent = {r.ref for r in records if has is not None and not has(r.pushed)}
    missing = []
    for need in found.needs:
        if need.expect_failure or (need.ref in pushed and need.ref not in absent):
            continue
        why = (NO_RECIPE if need.ref in no_recipe
               else "pushed but the registry does not serve it" if need.ref in absent
               else "not built")
        missing.append(MissingImage(need.ref, tuple(need.specs), why))
    return missing


def skip_regex(specs: Sequence[str]) -> str:
    """A ginkgo skip regex matching exactly these spec names."""
    return "|".join(re.escape(s) for s in specs)
