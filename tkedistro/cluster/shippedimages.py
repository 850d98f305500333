"""The release's shipped images, the ones the cluster's nodes run.

The control plane (kube-apiserver, kube-controller-manager, kube-scheduler), kube-proxy and
the pods' sandbox (pause) run from the multi-arch OCI archives ``tkedistro build`` ships in
``_output/<release>/images/`` (``images/shipped.py``; ``images.json`` names them), so a
conformance run and ``cluster prove`` test what a site installs. ``release_images`` finds and
checks them (a missing archive is refused, naming it and the command that makes it);
``push_release_images`` copies each, every platform and every digest unchanged (``skopeo copy
--all --preserve-digests``), into the local registry whose storage the nodes serve at
``127.0.0.1:5000``, under ``tkedistro/<component>:<distro version>``, the name kubeadm derives
from ``imageRepository`` and ``kubernetesVersion`` (a retag that keeps the index digest).
Each node's containerd then pulls the index and unpacks its own platform.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tkedistro.cluster.config import IMAGE_PATH, NODE_REGISTRY, PAUSE_TAG, image_tag
from tkedistro.core import console
from tkedistro.core.errors import ClusterError, ImageError
from tkedistro.core.workspace import Workspace
from tkedistro.engine import skopeo
from tkedistro.engine.registry import LocalRegistry
from tkedistro.images.push import IMAGES_JSON, ArchivedImage, archived, load_images
from tkedistro.model.manifest import Manifest

CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
PAUSE = "pause"
SHIPPED = (*CONTROL_PLANE, "kube-proxy", PAUSE)


@dataclass(frozen=True)
class ClusterImage:
    """One shipped image as the nodes pull it, and the digests images.json records."""

    component: str
    ref: str  # 127.0.0.1:5000/tkedistro/<component>:<distro version>
    index_digest: str
    manifests: Mapping[str, str]  # platform -> manifest digest

    def to_json(self) -> dict[str, object]:
        return {"component": self.component, "ref": self.ref,
                "index_digest": self.index_digest, "manifests": dict(self.manifests)}


def make_hint(release: str) -> str:
    return f"make them: tkedistro build {release} (or tkedistro images {release})"


def release_images(ws: Workspace, manifest: Manifest) -> list[ArchivedImage]:
    """The archives of ``SHIPPED`` in ``_output/<release>``, each checked against
    images.json; ``ClusterError`` naming every missing file and the command that makes it."""
    release = manifest.release
    out = ws.output_dir(release)
    unlisted = [c for c in SHIPPED if c not in manifest.images]
    if unlisted:
        raise ClusterError(
            f"{ws.rel(manifest.path)}: images: the cluster runs the shipped images of "
            f"{', '.join(SHIPPED)}; {', '.join(unlisted)} not listed",
            hint=f"add them to images:, then {make_hint(release).removeprefix('make them: ')}")
    index = out / IMAGES_JSON
    if not index.is_file():
        raise ClusterError(f"{ws.rel(index)} is missing: the cluster runs the release's "
                           "shipped images", hint=make_hint(release))
    entries = {str(e.get("component")): (n, e) for n, e in enumerate(_entries(out, release))}
    missing = [ws.rel(_archive_of(out, c, entries)) for c in SHIPPED
               if c not in entries or not _archive_of(out, c, entries).is_file()]
    if missing:
        raise ClusterError(f"the cluster runs the release's shipped images; missing: "
                           f"{', '.join(missing)}", hint=make_hint(release))
    return [_checked(ws, out, release, entries[c]) for c in SHIPPED]


def _entries(out: Path, release: str) -> list[dict[str, object]]:
    try:
        return load_images(out)
    except ImageError as exc:
        raise ClusterError(exc.message, hint=make_hint(release)) from None


def _archive_of(out: Path, component: str,
                entries: Mapping[str, tuple[int, Mapping[str, object]]]) -> Path:
    entry = entries.get(component, (0, {}))[1]
    name = str(entry.get("archive") or f"images/{component}.oci.tar")
    found, beside = out / name, out / IMAGES_JSON.parent / name
    return beside if not found.exists() and beside.exists() else found


def _checked(ws: Workspace, out: Path, release: str,
             numbered: tuple[int, Mapping[str, object]]) -> ArchivedImage:
    where = f"{ws.rel(out / IMAGES_JSON)}: images[{numbered[0]}]"
    try:
        return archived(out, numbered[1], where)
    except ImageError as exc:
        raise ClusterError(exc.message, hint=make_hint(release)) from None


def push_release_images(images: Sequence[ArchivedImage], registry: LocalRegistry,
                        version: str) -> list[ClusterImage]:
    """Each archive into ``registry`` as ``tkedistro/<component>:<version>``, all platforms,
    digests unchanged (read back: the registry must serve the archive's index digest); an
    image already there with that digest is not copied again. pause is also tagged
    ``PAUSE_TAG``, kubeadm's name for it (the same index)."""
    tag = image_tag(version)
    auth = registry.write_auth_file()
    pushed = []
    for image in images:
        name = f"{IMAGE_PATH}/{image.component}"
        for each in (tag, PAUSE_TAG) if image.component == PAUSE else (tag,):
            _push_one(image, registry, name, each, auth)
        pushed.append(ClusterImage(image.component, f"{NODE_REGISTRY}/{name}:{tag}",
                                   image.index_digest, dict(image.platforms)))
    return pushed


def _push_one(image: ArchivedImage, registry: LocalRegistry, name: str, tag: str,
              auth: Path) -> None:
    if registry.manifest_digest(name, tag) != image.index_digest:
        with console.step("cluster", f"{name}:{tag} from {image.archive.name} "
                                     f"({len(image.platforms)} platforms)"):
            skopeo.push_archive(image.archive, registry.ref(f"{name}:{tag}"), auth)
    served = registry.manifest_digest(name, tag)
    if served != image.index_digest:
        raise ClusterError(f"the local registry serves {name}:{tag} with the index {served}, "
                           f"not {image.archive}'s {image.index_digest}",
                           hint=f"its log: {registry.log}")
