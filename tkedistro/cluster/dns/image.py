"""The cluster DNS image: the ``tkedistro-dns`` responder built from the release's tree.

Offline there is no CoreDNS image, so the cluster's DNS is a small Go responder shipped with
tkedistro (``cluster/dns/responder/``) and built from the Kubernetes tree's own vendored
``miekg/dns`` and ``client-go``: in the builder container, GOPATH mode, the tree mounted
read-only at ``/src`` and linked in as the responder's ``vendor/`` (``responder/build.sh``
vets, tests and builds it). The binary goes on the upstream images' Debian base
(``images/upstream/debianbase.py``) as ``tkedistro.local/cluster/dns-responder:<inputs
digest>``; nothing is rebuilt while the Go sources, the tree commit, the builder image and the
base stay the same. The add-on that runs it is ``manifests.py``.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from tkedistro.build.plan import check_go_version
from tkedistro.core import console, files
from tkedistro.core.errors import BuildError, ClusterError
from tkedistro.core.files import json_digest
from tkedistro.core.render import environment
from tkedistro.engine.engines import Engines
from tkedistro.engine.protocols import ContainerBackend, ContainerSpec, ImageEngine, Mount
from tkedistro.images.upstream.debianbase import INPUTS_LABEL, SOURCE_LABEL, ensure_base
from tkedistro.images.upstream.imagebuild import (
    BASE_LABEL,
    REVISION_LABEL,
    BuildTool,
    Inputs,
    build_binaries,
    write_context,
)
from tkedistro.images.upstream.recipes import Binary

if TYPE_CHECKING:
    from tkedistro.core.workspace import Workspace
    from tkedistro.model.manifest import Manifest

IMAGE_REPO = "tkedistro.local/cluster/dns-responder"
BINARY = "tkedistro-dns"
BINARY_PATH = PurePosixPath("/usr/local/bin") / BINARY
SOURCES = PurePosixPath("/dns")  # the Go sources in the builder container (read-only)
GOCACHE = PurePosixPath("/cache")
DOCKERFILE = """\
FROM [[ base ]]
COPY [[ binary ]] [[ path ]]
EXPOSE 53/udp 53/tcp 8080/tcp
ENTRYPOINT ["[[ path ]]"]
"""


@dataclass(frozen=True)
class DnsImage:
    ref: str
    image_id: str
    reused: bool
    binary: Path  # the built binary on the host
    seconds: float


def go_sources() -> dict[str, bytes]:
    """The responder's files shipped with tkedistro (``*.go`` and ``build.sh``), by name."""
    folder = resources.files("tkedistro.cluster.dns") / "responder"
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir(), key=lambda f: f.name)
            if f.is_file() and (f.name.endswith(".go") or f.name == "build.sh")}


def inputs_digest(commit: str, sources: Mapping[str, bytes], builder_id: str,
                  base_id: str) -> str:
    """What the binary and the image are made from; equal digests mean nothing to rebuild."""
    doc = {"commit": commit, "builder": builder_id, "base": base_id, "dockerfile": DOCKERFILE,
           "sources": {n: hashlib.sha256(data).hexdigest() for n, data in sources.items()}}
    return json_digest(doc)


def image_ref(digest: str) -> str:
    return f"{IMAGE_REPO}:{digest.removeprefix('sha256:')[:12]}"


def dns_build_tool(backend: ContainerBackend, builder: str, sources: Path, gocache: Path,
                   go_version: str = "") -> BuildTool:
    """A ``BuildTool`` for the responder: the tree read-only at /src, the Go sources read-only
    at /dns, Go's cache at /cache, no network, as the invoking user. With ``go_version`` (the
    manifest's pin) the builder's ``go version`` must match it first."""

    def build(src: Path, out: Path, argv: list[str]) -> None:
        spec = ContainerSpec(
            image=builder, user=f"{os.getuid()}:{os.getgid()}", network="none",
            env={"HOME": "/tmp", "GOCACHE": str(GOCACHE)},
            mounts=(Mount(src.resolve(), PurePosixPath("/src"), read_only=True),
                    Mount(sources.resolve(), SOURCES, read_only=True),
                    Mount(gocache.resolve(), GOCACHE),
                    Mount(out.resolve(), PurePosixPath("/out"))),
            workdir=PurePosixPath("/tmp"))
        with backend.session(spec) as session:
            if go_version:
                check_go_version(go_version, session.run(["go", "version"]).output, builder)
            result = session.run(argv)
        if not result.ok:
            raise BuildError(f"building the cluster DNS responder failed: {' '.join(argv)}",
                             details=result.output[-4000:],
                             hint="the Go vet/test/build output is above")

    return build


def build_dns_image(tree: Path, commit: str, engine: ImageEngine, backend: ContainerBackend,
                    builder: str, work: Path, go_version: str = "") -> DnsImage:
    """Build (or reuse) the responder binary and image for ``tree`` at ``commit``;
    ``go_version``: the manifest's Go pin the builder must have (unchecked when empty)."""
    start = time.monotonic()
    if not (tree / "vendor" / "github.com" / "miekg" / "dns").is_dir():
        raise ClusterError(f"{tree}: no vendor/github.com/miekg/dns to build cluster DNS from")
    info = backend.image_info(builder)
    if info is None:
        raise BuildError(f"the builder image {builder} is missing",
                         hint="make it offline: sudo tkedistro builder-image RELEASE")
    base = ensure_base(engine, work)
    sources = go_sources()
    digest = inputs_digest(commit, sources, info.id, base.image_id)
    ref, short = image_ref(digest), digest.removeprefix("sha256:")[:12]
    existing = engine.labels(ref)
    binary = work / "bin" / short / BINARY
    if existing is not None and existing.get(INPUTS_LABEL) == digest:
        return DnsImage(ref, "", True, binary, time.monotonic() - start)
    src = _write_sources(work / "src" / short, sources)
    files.ensure_dir(work / "gocache")
    tool = dns_build_tool(backend, builder, src, work / "gocache", go_version)
    argv = ("sh", str(SOURCES / "build.sh"), f"/out/{BINARY}", f"tree-{commit[:12]}")
    build_binaries(tree, binary.parent, [Binary(BINARY, argv)], tool)
    dockerfile = environment().from_string(DOCKERFILE).render(
        base=base.ref, binary=BINARY, path=str(BINARY_PATH))
    context = write_context(work / "context" / short,
                            Inputs(ref, dockerfile, {BINARY: binary}, {}, commit, base.image_id))
    labels = {INPUTS_LABEL: digest, REVISION_LABEL: commit, BASE_LABEL: base.image_id,
              SOURCE_LABEL: f"tkedistro cluster DNS responder, Go sources {short}, built with "
                            f"the vendored miekg/dns and client-go of kubernetes {commit[:12]}"}
    with console.step("cluster_dns", f"build {ref}"):
        built = engine.build(context, ref, labels)
    return DnsImage(ref, built.id, False, binary, time.monotonic() - start)


def _write_sources(folder: Path, sources: Mapping[str, bytes]) -> Path:
    files.ensure_dir(folder)
    for name, data in sources.items():
        files.write_atomic(folder / name, data)
    return folder


def dns_work_dir(ws: Workspace, release: str) -> Path:
    """Binaries, sources, Go cache and build contexts of the responder (in the user cache, so
    a rebuild of ``_output`` keeps them)."""
    return ws.cache / "cluster-dns" / release


def ensure_dns_image(ws: Workspace, release: str, manifest: Manifest,
                     engines: Engines) -> str:
    """The ref of the responder image for the release's prepared tree, built when needed."""
    from tkedistro.git.repo import Repo

    tree = ws.src_dir(release)
    if not (tree / "vendor" / "github.com" / "miekg" / "dns").is_dir():
        raise ClusterError(f"{ws.rel(tree)}: no Kubernetes source tree to build cluster DNS from",
                           hint=f"prepare it first: tkedistro source {release}")
    built = build_dns_image(tree, Repo(tree).head(), engines.images, engines.containers,
                            manifest.builder.image, dns_work_dir(ws, release),
                            manifest.go.version)
    console.verbose(f"cluster DNS image {built.ref} ({'reused' if built.reused else 'built'} "
                    f"in {built.seconds:.1f} s)")
    return built.ref
