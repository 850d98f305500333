"""Push a release's OCI image archives to a registry, byte for byte (skopeo).

The build leaves ``_output/<release>/images/images.json`` naming, for each component, its
archive (``images/<component>.oci.tar``, relative to the output folder; a name relative to
the images folder is found too), the digest of its image index and each platform's manifest
digest. ``push_images`` copies every archive with all its platforms to

    REGISTRY/<component>:<distro version>        when REGISTRY has a path
    REGISTRY/tkedistro/<component>:<distro version>   when it is only host[:port]

(``--push 127.0.0.1:5000`` gives ``127.0.0.1:5000/tkedistro/kube-apiserver:v1.20.2-tke.1``;
``--push registry.example.com/k8s`` gives ``registry.example.com/k8s/kube-apiserver:...``: the
``imageRepository`` for kubeadm is ``PushedImage.repository`` minus the component). After each
push the registry's index is read back: its digest must be the archive's, so what was pushed
is the index the build made, not a conversion of it. Everything is checked (the registry's
shape, images.json, each archive's index) before the first push. Given a signing key, each
pushed image is signed in the registry (its index and each platform's manifest: sigstore
signatures, ``signing/images.py``) once its digest is checked.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tkedistro.core import console
from tkedistro.core.errors import ImageError
from tkedistro.engine import skopeo
from tkedistro.model.refs import parse_image_ref, registry_problem
from tkedistro.signing.images import sign_pushed_image
from tkedistro.signing.keys import SigningKey

STEP = "push_images"
DEFAULT_PATH = "tkedistro"  # the repository path under a registry given without one
IMAGES_JSON = Path("images") / "images.json"
FIELDS = ("component", "ref", "index_digest", "archive", "manifests")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_IPV6_HOST = re.compile(r"\[([0-9A-Fa-f:.]+)\]")


@dataclass(frozen=True)
class ArchivedImage:
    """One entry of images.json: a component's OCI archive and the digests it holds."""

    component: str
    ref: str  # the build's name for it, ``tkedistro.local/k8s/kube-apiserver:v1.20.2-tke.1``
    index_digest: str
    archive: Path  # absolute
    platforms: Mapping[str, str]  # linux/arm64 -> its manifest digest

    @property
    def version(self) -> str:
        return parse_image_ref(self.ref).version or "latest"


@dataclass(frozen=True)
class PushedImage:
    """One pushed component: where it is now, by tag and by digest."""

    component: str
    ref: str  # REGISTRY[/tkedistro]/<component>:<version>
    digest: str  # the image index's, the same as in the archive
    platforms: Mapping[str, str] = field(default_factory=dict)
    signatures: Sequence[str] = ()  # where its sigstore signatures went (signed pushes)

    @property
    def repository(self) -> str:
        return parse_image_ref(self.ref).repository

    @property
    def by_digest(self) -> str:
        return f"{self.repository}@{self.digest}"

    def to_json(self) -> dict[str, object]:
        return {"component": self.component, "ref": self.ref, "digest": self.digest,
                "by_digest": self.by_digest, "manifests": dict(self.platforms),
                **({"signatures": list(self.signatures)} if self.signatures else {})}


def check_registry(registry: str) -> str:
    """``registry`` (host[:port][/path], no scheme) as given; ``ImageError`` when it is not
    one. A bracketed IPv6 host (``[::1]:5000``) is taken too."""
    match = _IPV6_HOST.match(registry)
    shape = "localhost" + registry[match.end():] if match else registry
    problem = registry_problem(shape)
    if problem is None and match and ":" not in match.group(1):
        problem = f"expected an IPv6 address between the brackets, got {registry!r}"
    if problem is not None:
        problem = problem.replace(repr(shape), repr(registry))
        raise ImageError(f"--push: {problem}")
    return registry


def destination(registry: str, component: str, version: str) -> str:
    """Where ``component`` goes: ``REGISTRY/<component>:<version>``, with ``tkedistro/``
    between them when ``registry`` is only host[:port]."""
    base = registry if "/" in registry else f"{registry}/{DEFAULT_PATH}"
    return f"{base}/{component}:{version}"


def load_images(out_dir: Path) -> list[dict[str, Any]]:
    """The entries of ``out_dir/images/images.json`` (a list, or ``{"images": [...]}``)."""
    path = out_dir / IMAGES_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ImageError(f"no images to push: {path} does not exist",
                         hint="build the release first (its images are made with it)") from exc
    except (OSError, ValueError) as exc:
        raise ImageError(f"{path} is not readable JSON: {exc}") from exc
    entries = data.get("images") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ImageError(f"{path}: expected a list of images (or {{\"images\": [...]}})")
    return entries


def archived(out_dir: Path, entry: Mapping[str, Any], where: str) -> ArchivedImage:
    """One images.json entry, checked: every field, digests, and the archive itself."""
    missing = [key for key in FIELDS if key not in entry]
    if missing:
        raise ImageError(f"{where}: missing {', '.join(missing)} (expected {', '.join(FIELDS)})")
    platforms = entry["manifests"]
    digests = [entry["index_digest"], *(platforms.values() if isinstance(platforms, dict)
                                        else [None])]
    if not all(isinstance(d, str) and _DIGEST.fullmatch(d) for d in digests):
        raise ImageError(f"{where}: index_digest and manifests must hold sha256:<64 hex> digests")
    archive = _archive_path(out_dir, Path(str(entry["archive"])))
    image = ArchivedImage(str(entry["component"]), str(entry["ref"]), entry["index_digest"],
                          archive, dict(platforms))
    found = archive_index_digest(archive)
    if found != image.index_digest:
        raise ImageError(f"{where}: {archive} holds the image index {found}, not "
                         f"{image.index_digest}", hint="the archive changed after the build; "
                         "build the release again")
    return image


def _archive_path(out_dir: Path, archive: Path) -> Path:
    """``archive`` as images.json gives it: absolute, relative to the output folder
    (``images/x.oci.tar``) or, failing that, to the images folder (``x.oci.tar``)."""
    if archive.is_absolute():
        return archive
    found = out_dir / archive
    beside = out_dir / IMAGES_JSON.parent / archive
    return beside if not found.exists() and beside.exists() else found


def archive_index_digest(archive: Path) -> str:
    """The digest of the one image index an OCI archive's ``index.json`` names (besides
    its referrers)."""
    try:
        with tarfile.open(archive) as tar:
            member = next((m for m in tar.getmembers()
                           if m.name.removeprefix("./") == "index.json"), None)
            handle = tar.extractfile(member) if member is not None else None
            index = json.loads(handle.read()) if handle is not None else None
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise ImageError(f"{archive} is not a readable OCI archive: {exc}") from exc
    listed = index.get("manifests") if isinstance(index, dict) else None
    # referrers (the attached SBOM) carry an artifactType beside the image index
    manifests = [m for m in listed if isinstance(m, dict) and "artifactType" not in m] \
        if isinstance(listed, list) else None
    if not isinstance(manifests, list) or len(manifests) != 1:
        raise ImageError(f"{archive}: expected an index.json naming one image index, found "
                         f"{'none' if index is None else len(manifests or [])}")
    return str(manifests[0].get("digest"))


def push_images(out_dir: Path, registry: str,
                images: Sequence[Mapping[str, Any]] | None = None,
                signing: SigningKey | None = None) -> list[PushedImage]:
    """Push every image of ``images`` (default: ``out_dir/images/images.json``) to
    ``registry`` with all its platforms; each is read back and must have the archive's
    index digest. Nothing is pushed when a check fails first. With ``signing``, each image
    (its index and every platform's manifest) is then signed with a sigstore signature in
    the registry (``signing/images.py``)."""
    check_registry(registry)
    entries = load_images(out_dir) if images is None else list(images)
    where = str(out_dir / IMAGES_JSON)
    planned = [archived(out_dir, entry, f"{where}: images[{n}]")
               for n, entry in enumerate(entries)]
    skopeo.find_skopeo()
    return [_push(image, destination(registry, image.component, image.version), signing)
            for image in planned]


def _push(image: ArchivedImage, dest: str, signing: SigningKey | None) -> PushedImage:
    with console.step(STEP, f"push {image.component} ({len(image.platforms)} platforms) "
                            f"to {dest}"):
        skopeo.push_archive(image.archive, dest)
        remote = skopeo.remote_digest(dest)
    if remote != image.index_digest:
        raise ImageError(f"the registry serves {dest} with the index {remote}, not the "
                         f"archive's {image.index_digest}: the push changed the image",
                         hint="a registry that rewrites manifests (or another push racing "
                              "this one) cannot hold the release byte for byte")
    signatures: list[str] = []
    if signing is not None:
        with console.step("sign_images", f"sign {dest}"):
            signatures = sign_pushed_image(dest, [remote, *image.platforms.values()], signing)
    return PushedImage(image.component, dest, remote, dict(image.platforms), signatures)
