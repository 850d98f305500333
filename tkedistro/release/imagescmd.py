"""``tkedistro images RELEASE [--platform P] [--push REGISTRY]``.

The images are part of the release output: this runs the release operation, as ``build`` does
(a no-op when the binaries and images are current; only the artifacts are remade when the
binaries were built with ``--no-images``), then pushes each multi-arch archive with skopeo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tkedistro.build import output
from tkedistro.build.pipeline import BuildOptions
from tkedistro.core.errors import ManifestError
from tkedistro.core.workspace import Workspace, manifest_name
from tkedistro.engine.engines import Engines
from tkedistro.model.manifest import load_release
from tkedistro.release.operation import build_release
from tkedistro.signing.keys import SigningKey


@dataclass
class ImagesReport:
    release: str
    output_dir: Path
    status: str  # the build's: built, finished (artifacts remade) or up_to_date
    images: list[dict[str, Any]]
    pushed: list[dict[str, Any]] = field(default_factory=list)
    registry: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release, "output_dir": str(self.output_dir),
                "build": self.status, "images": self.images, "registry": self.registry,
                "pushed": self.pushed}

    def format_text(self) -> str:
        lines = [f"{self.release}: {len(self.images)} images in {self.output_dir / 'images'}"
                 f" (build {self.status.replace('_', ' ')})"]
        for image in self.images:
            reused = ", reused" if image.get("reused") else ""
            lines.append(f"  {image['ref']}  {image['index_digest']}  "
                         f"{' '.join(sorted(image['manifests']))}  "
                         f"{image['size'] / 1e6:.1f} MB{reused}")
        for pushed in self.pushed:
            signed = ", signed" if pushed.get("signatures") else ""
            lines.append(f"  pushed {pushed['ref']}@{pushed['digest']}{signed}")
        return "\n".join(lines)


def make_and_push(ws: Workspace, release: str, platforms: tuple[str, ...],
                  registry: str | None, upstream: str | None,
                  engines: Engines, signing: SigningKey | None = None) -> ImagesReport:
    from tkedistro.images.push import check_registry, push_images

    manifest = load_release(ws, release)
    if not manifest.images:
        raise ManifestError([f"{manifest_name(release)}: images: no component images listed"],
                            hint="list what the release ships as images, e.g. images: "
                                 "[kube-apiserver, kube-controller-manager, kube-scheduler, "
                                 "kube-proxy, pause] (docs/manifest.md)")
    if registry is not None:
        check_registry(registry)
    # the output's binaries as they are: with the conformance tools when it has them, so
    # that `images` after `build --with-conformance-tools` rebuilds nothing
    built = output.read_build_info(ws.output_dir(release)) or {}
    options = BuildOptions(platforms=platforms, upstream=upstream,
                           conformance_tools=bool(built.get("tools")), signing=signing)
    result = build_release(ws, manifest, options, engines)
    images = list(result.artifacts.get("images") or [])
    report = ImagesReport(release, result.output_dir, result.status, images, registry=registry)
    if registry is not None:
        report.pushed = [p.to_json() for p in push_images(result.output_dir, registry,
                                                              signing=signing)]
    return report
