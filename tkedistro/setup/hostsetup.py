"""``tkedistro host-setup``: make this host ready for the releases, or (``--check``) say what is
missing and the fix for each.

In order: the Debian packages (``setup/packages.py``, one list), qemu-user registered with
binfmt_misc for a release's foreign platform, each release's builder image
(``build/builderimage.py``) and, for a release whose ``images:`` has a server component, the
component base of each of its platforms (``images/base.py``). What is in place is left alone,
so a second run changes nothing and says so. Making anything needs root.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tkedistro.build import builderimage
from tkedistro.core import console
from tkedistro.core.errors import HostNotReadyError, TkedistroError
from tkedistro.core.locks import exclusive_lock
from tkedistro.core.workspace import Workspace
from tkedistro.debian.rootfs import reusable
from tkedistro.engine import emulation
from tkedistro.engine.engines import Engines
from tkedistro.engine.protocols import ContainerBackend, ImageEngine
from tkedistro.images.base import LOCK_WAIT, base_recipe, ensure_component_base, work_dir
from tkedistro.model.manifest import Manifest, list_release_names, load_release
from tkedistro.setup import packages
from tkedistro.setup.doctor import ENGINE_FIX, Check

# One thing the host needs: in place or not, what was found, and the fix (doctor's check).
Item = Check


@dataclass(frozen=True)
class HostReport:
    items: tuple[Item, ...]
    done: tuple[str, ...] = ()  # what this run changed, in order

    @property
    def ready(self) -> bool:
        return all(item.ok for item in self.items)

    def to_json(self) -> dict[str, Any]:
        return {"ready": self.ready, "done": list(self.done),
                "items": [asdict(item) for item in self.items]}

    def format_text(self) -> str:
        lines = [f"done: {what}" for what in self.done]
        for item in self.items:
            lines.append(f"{'ok ' if item.ok else 'BAD'}  {item.name:<30} {item.detail}")
            if not item.ok and item.fix:
                lines.append(f"     {'':<30} fix: {item.fix}")
        if self.ready and not self.done:
            lines.append("nothing to do: this host is ready")
        return "\n".join(lines)

    def raise_if_not_ready(self) -> None:
        bad = [item.name for item in self.items if not item.ok]
        if bad:
            root = "" if os.geteuid() == 0 else " (as root: sudo tkedistro host-setup)"
            raise HostNotReadyError(f"host not ready: {', '.join(bad)}",
                                    hint=f"see the fix lines above{root}")


@dataclass(frozen=True)
class HostNeeds:
    """What the releases ask of this host."""

    releases: tuple[tuple[str, Manifest], ...]
    foreign: tuple[str, ...]
    base_platforms: tuple[str, ...]  # component bases: platforms of releases with images


def host_needs(ws: Workspace, releases: Sequence[str]) -> HostNeeds:
    loaded = tuple((name, load_release(ws, name))
                   for name in (releases or list_release_names(ws.releases_dir)))
    platforms = [p for _, m in loaded for p in m.platforms]
    bases = sorted({p for _, m in loaded if any(c != "pause" for c in m.images)
                    for p in m.platforms})
    return HostNeeds(loaded, tuple(packages.foreign_platforms(platforms)), tuple(bases))


def check_host(ws: Workspace, needs: HostNeeds, engine: ImageEngine,
               backend: ContainerBackend,
               binfmt_dir: Path = emulation.BINFMT_DIR) -> list[Item]:
    """Every item, checked without changing anything."""
    missing = packages.missing_packages(needs.foreign)
    items = [Item("host packages", not missing,
                  "missing " + " ".join(missing) if missing else "installed",
                  "sudo tkedistro host-setup" if missing else "")]
    problems = packages.binfmt_problems(needs.foreign, binfmt_dir)
    for platform in needs.foreign:
        why = problems.get(platform, "")
        items.append(Item(f"emulation {platform}", not why,
                          why.split("; ")[0] if why else emulation.can_run(platform,
                                                                           binfmt_dir)[1],
                          "sudo tkedistro host-setup" if why else ""))
    try:
        backend.check_available()
    except TkedistroError as exc:
        return [*items, Item("docker engine", False, exc.message.splitlines()[0], ENGINE_FIX)]
    items.append(Item("docker engine", True, f"{backend.name} engine answers"))
    return items + _builder_items(ws, needs, engine) + _base_items(needs, engine)


def _builder_items(ws: Workspace, needs: HostNeeds, engine: ImageEngine) -> list[Item]:
    items = []
    for name, manifest in needs.releases:
        image, go = manifest.builder.image, manifest.go.version
        label = f"builder image {name}"
        try:
            recipe = builderimage.builder_recipe(image, go, f"releases/"
                                                 f"{ws.manifest_path(name).name}")
        except TkedistroError as exc:
            items.append(Item(label, False, exc.message, exc.hint or ""))
            continue
        state = builderimage.decide(engine.labels(image), recipe.inputs_digest(), go)
        detail = {"reused": f"{image} (inputs match)",
                  "older": f"{image} (made by an older tkedistro, Go {go} label)",
                  "missing": f"{image} missing",
                  "stale": f"{image} out of date (its inputs changed)"}[state]
        items.append(Item(label, state in ("reused", "older"), detail,
                          f"sudo tkedistro builder-image {name}"))
    return items


def _base_items(needs: HostNeeds, engine: ImageEngine) -> list[Item]:
    items = []
    for platform in needs.base_platforms:
        recipe = base_recipe(platform)
        ok = reusable(engine.labels(recipe.ref), recipe.inputs_digest())
        items.append(Item(f"component base {platform}", ok,
                          f"{recipe.ref} {'(inputs match)' if ok else 'missing or out of date'}",
                          "sudo tkedistro host-setup"))
    return items


def setup_host(ws: Workspace, releases: Sequence[str], engines: Engines, *,
               check_only: bool = False,
               binfmt_dir: Path = emulation.BINFMT_DIR) -> HostReport:
    """Check (``check_only``) or set up this host for ``releases`` (default: all); the report
    says what is (still) missing, ``raise_if_not_ready`` turns that into exit 19. Not root:
    nothing is changed and the report lists what is missing."""
    needs = host_needs(ws, releases)
    engine, backend = engines.images, engines.containers
    items = check_host(ws, needs, engine, backend, binfmt_dir)
    if check_only or all(item.ok for item in items) or os.geteuid() != 0:
        return HostReport(tuple(items))
    done = _fix(ws, needs, items, engine, backend, binfmt_dir)
    return HostReport(tuple(check_host(ws, needs, engine, backend, binfmt_dir)), tuple(done))


def _fix(ws: Workspace, needs: HostNeeds, items: list[Item], engine: ImageEngine,
         backend: ContainerBackend, binfmt_dir: Path) -> list[str]:
    """Install, register and make what ``items`` found missing; what was done, in order."""
    done = []
    missing = packages.missing_packages(needs.foreign)
    if missing:
        with console.step("host_packages", " ".join(missing)):
            real = packages.install_packages(missing)
        done.append("installed " + " ".join(
            name if name == asked else f"{name} (for {asked})"
            for asked, name in zip(missing, real, strict=True)))
    for platform in packages.binfmt_problems(needs.foreign, binfmt_dir):
        with console.step("emulation", packages.qemu_name(platform)):
            packages.register_binfmt(platform, binfmt_dir)
        done.append(f"registered {packages.qemu_name(platform)} with binfmt_misc")
    bad = {item.name for item in items if not item.ok}
    if "docker engine" in bad:
        return done  # the images need the engine; the re-check reports it
    requests = builderimage.builder_requests(ws, [name for name, _ in needs.releases])
    with builderimage.locked(ws):
        for request in requests:
            if f"builder image {request.release}" in bad:
                made = builderimage.ensure_builder_image(
                    engine, backend, builderimage.work_dir(ws), request)
                done.append(made.line())
    wanted = [p for p in needs.base_platforms if f"component base {p}" in bad]
    if wanted:
        bases = work_dir(ws)
        with exclusive_lock(bases / ".lock", "another tkedistro run is making component bases "
                            f"(lock {bases / '.lock'})", wait=LOCK_WAIT,
                            waiting="another run is making a component base; waiting"):
            for platform in wanted:
                base = ensure_component_base(engine, bases, platform)
                done.append(f"component base {platform}: {base.ref} made")
    return done
