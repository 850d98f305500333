"""The builder image of a release, made offline for its ``go.version`` (``builder-image``).

A Debian root filesystem (``debian/rootfs.py``: debootstrap, import, reuse by inputs label) with
the Go line's Debian package, gcc and libc headers (the kubelet needs cgo), the arm64 cross
compiler, git, make, rsync and bash; ``go`` and ``gofmt`` linked into ``/usr/local/bin``,
``ENV PATH``/``HOME``, and labels with the Go version and the inputs digest. The name is the
manifest's ``builder.image``. ``GO_SOURCES`` says where each Go line comes from offline; a
line it does not know is a ``BuilderImageError`` naming the release file, never a wrong Go.

An image made by an older tkedistro (``scripts/make-builder-image.sh``: no inputs label) is
kept when its Go label is the manifest's line and ``go version`` and the command check pass in
it; ``force`` makes it again.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tkedistro.build.plan import builder_commands, check_builder_commands, check_go_version
from tkedistro.core import console
from tkedistro.core.errors import BuilderImageError
from tkedistro.core.locks import exclusive_lock
from tkedistro.core.workspace import Workspace, manifest_name
from tkedistro.debian.rootfs import INPUTS_LABEL, DebianRecipe, ensure_debian_base
from tkedistro.engine import emulation
from tkedistro.engine.engines import Engines
from tkedistro.engine.protocols import ContainerBackend, ContainerSpec, ImageEngine

STEP = "builder_image"
GO_VERSION_LABEL = "org.tkedistro.go-version"
BASE_LABEL = "org.tkedistro.base"
LOCK_WAIT = 1800.0  # seconds: a cold builder image (debootstrap, ~400 packages) takes minutes
# the build's tools besides Go (the same as scripts/make-builder-image.sh always installed)
PACKAGES = ("gcc", "libc6-dev", "make", "git", "rsync", "ca-certificates", "bash",
            "gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross")


@dataclass(frozen=True)
class GoSource:
    """Where one Go line comes from offline: a Debian suite's package and its GOROOT."""

    suite: str
    package: str
    root: PurePosixPath

    def describe(self) -> str:
        return f"Debian {self.suite} {self.package}"


# Go line -> its offline source. Go 1.16 (Kubernetes 1.21) is not here: bullseye never had it,
# and bullseye-backports has left deb.debian.org (404 there, checked December 2026).
GO_SOURCES: Mapping[str, GoSource] = {
    "1.15": GoSource("bullseye", "golang-1.15-go", PurePosixPath("/usr/lib/go-1.15")),
}


@dataclass(frozen=True)
class BuilderRequest:
    """One release's builder image: its name, the pinned Go and what the build runs in it."""

    release: str
    release_file: str  # "releases/1.20.yaml", named in errors
    image: str
    go_version: str
    platforms: tuple[str, ...]
    pause: bool = False


@dataclass(frozen=True)
class BuilderImage:
    """What ``builder-image`` did for one release: made, reused, kept (older) or missing."""

    release: str
    image: str
    go_version: str
    action: str  # "made", "reused", "kept"
    image_id: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return f"{self.release}: {self.image} {self.detail}"


def go_line(version: str) -> str:
    """``1.15.15`` -> ``1.15``."""
    return ".".join(version.split(".")[:2])


def go_source(go_version: str, release_file: str) -> GoSource:
    """The offline source of ``go_version``'s line; ``BuilderImageError`` when none is known."""
    line = go_line(go_version)
    if line in GO_SOURCES:
        return GO_SOURCES[line]
    known = ", ".join(f"Go {k} ({v.describe()})" for k, v in GO_SOURCES.items())
    raise BuilderImageError(
        f"{release_file}: go.version {go_version}: tkedistro knows no offline source for Go "
        f"{line}; known lines: {known}",
        hint=f"make an image with Go {line} elsewhere and name it in builder.image of "
             f"{release_file}, or pass --builder-image IMAGE to the build")


def builder_recipe(image: str, go_version: str, release_file: str) -> DebianRecipe:
    """The Debian recipe of a builder image for ``go_version`` named ``image``."""
    source = go_source(go_version, release_file)
    bin_dir = source.root / "bin"
    links = tuple(("ln", "-sf", str(bin_dir / tool), f"/usr/local/bin/{tool}")
                  for tool in ("go", "gofmt"))
    changes = (f"ENV PATH=/usr/local/bin:{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin",
               "ENV HOME=/tmp",
               f"LABEL {BASE_LABEL}={json.dumps('debian-' + source.suite)}")
    return DebianRecipe(image, (source.package, *PACKAGES), suite=source.suite, setup=links,
                        step=STEP, changes=changes,
                        version_labels=((GO_VERSION_LABEL, source.package),),
                        hint="run as root once (debootstrap); later runs reuse the image")


def go_matches(found: str | None, pinned: str) -> bool:
    return found is not None and (found == pinned or found.startswith(pinned + "."))


def decide(labels: Mapping[str, str] | None, digest: str, go_version: str,
           force: bool = False) -> str:
    """``missing``, ``force``, ``reused`` (inputs match), ``older`` (no inputs label, Go label
    matches: kept once it passes the checks) or ``stale`` (to be made again)."""
    if labels is None:
        return "missing"
    if force:
        return "force"
    if labels.get(INPUTS_LABEL) == digest:
        return "reused"
    if INPUTS_LABEL not in labels and go_matches(labels.get(GO_VERSION_LABEL), go_version):
        return "older"
    return "stale"


def name_warning(image: str, go_version: str) -> str:
    """A warning when the image's name suggests another Go line (``go1.15`` for Go 1.16)."""
    named = re.search(r"go(1\.[0-9]+)", image)
    if named and named.group(1) != go_line(go_version):
        return (f"builder image {image} is named for Go {named.group(1)}, but it is made "
                f"with Go {go_line(go_version)} (go.version {go_version})")
    return ""


def verify(backend: ContainerBackend, request: BuilderRequest) -> str:
    """``go version`` is the pinned one and every command the build runs is there."""
    from tkedistro.build.container import missing_commands

    needed = builder_commands(request.platforms, emulation.host_platform(), pause=request.pause)
    spec = ContainerSpec(image=request.image, user=f"{os.getuid()}:{os.getgid()}")
    with backend.session(spec) as session:
        found = check_go_version(request.go_version, session.run(["go", "version"]).output,
                                 request.image, request.release)
        check_builder_commands({"sh": ("the command check", "dash"), **needed},
                               missing_commands(session, needed), request.image,
                               request.release)
    return found


def ensure_builder_image(engine: ImageEngine, backend: ContainerBackend, work: Path,
                         request: BuilderRequest, force: bool = False) -> BuilderImage:
    """The release's builder image: reused, kept (older, checked) or made (root)."""
    recipe = builder_recipe(request.image, request.go_version, request.release_file)
    warning = name_warning(request.image, request.go_version)
    if warning:
        console.warn(warning)
    labels = engine.labels(request.image)
    state = decide(labels, recipe.inputs_digest(), request.go_version, force)
    if state == "reused":
        return _result(request, backend, "reused", "reused (its inputs label matches)")
    if state == "older":
        try:
            found = verify(backend, request)
            return _result(request, backend, "kept",
                           f"kept (made by an older tkedistro; Go {found}, commands checked)")
        except BuilderImageError as exc:
            console.warn(f"{exc.message}; making it again")
    if os.geteuid() != 0:
        what = "missing" if labels is None else "out of date"
        raise BuilderImageError(
            f"the builder image {request.image} of {request.release_file} is {what}, and "
            "making it needs root (debootstrap)",
            hint=f"run `sudo tkedistro builder-image {request.release}`, or make it elsewhere "
                 "and pass --builder-image IMAGE to the build")
    ensure_debian_base(engine, work, recipe, force=True)
    found = verify(backend, request)
    return _result(request, backend, "made", f"made (Go {found}, {recipe.suite}, debootstrap)")


def _result(request: BuilderRequest, backend: ContainerBackend, action: str,
            detail: str) -> BuilderImage:
    info = backend.image_info(request.image)
    return BuilderImage(request.release, request.image, request.go_version, action,
                        info.id if info else "", detail)


def work_dir(ws: Workspace) -> Path:
    """The scratch root filesystem, debootstrap log and ``images.json`` of builder images."""
    return ws.cache / "builder-images"


def locked(ws: Workspace) -> Any:
    path = work_dir(ws) / ".lock"
    return exclusive_lock(path, f"another tkedistro run is making a builder image (lock {path})",
                          wait=LOCK_WAIT, waiting="another run is making a builder image; waiting")


@dataclass(frozen=True)
class BuilderImagesReport:
    images: tuple[BuilderImage, ...]

    @property
    def changed(self) -> bool:
        return any(image.action == "made" for image in self.images)

    def to_json(self) -> dict[str, Any]:
        return {"changed": self.changed, "images": [image.to_json() for image in self.images]}

    def format_text(self) -> str:
        lines = [image.line() for image in self.images]
        if not self.changed:
            lines.append("nothing to do: every builder image is in place")
        return "\n".join(lines)


def builder_requests(ws: Workspace, releases: Sequence[str],
                     image: str | None = None) -> list[BuilderRequest]:
    """One request per release (default: every release of ``releases/``), checked up front:
    a Go line without an offline source fails before anything is made."""
    from tkedistro.model.manifest import list_release_names, load_release

    found = []
    for name in releases or list_release_names(ws.releases_dir):
        manifest = load_release(ws, name)
        request = BuilderRequest(name, manifest_name(name),
                                 image or manifest.builder.image, manifest.go.version,
                                 tuple(manifest.platforms), pause="pause" in manifest.images)
        go_source(request.go_version, request.release_file)
        found.append(request)
    return found


def make_builder_images(ws: Workspace, releases: Sequence[str], engines: Engines, *,
                        force: bool = False, image: str | None = None) -> BuilderImagesReport:
    """``tkedistro builder-image``: each release's builder image in the engine."""
    requests = builder_requests(ws, releases, image)
    backend, engine = engines.containers, engines.images
    backend.check_available()
    with locked(ws):
        made = [ensure_builder_image(engine, backend, work_dir(ws), request, force)
                for request in requests]
    return BuilderImagesReport(tuple(made))
