"""What one component image is made of, decided without an engine: its ref, Dockerfile,
labels and the inputs digest that says whether a local image of that ref can be reused.

Upstream's layout: the binary at ``/usr/local/bin/<component>`` and no entrypoint (kubeadm's
static pod manifests run ``kube-apiserver ...`` by name and its kube-proxy DaemonSet runs
``/usr/local/bin/kube-proxy``). The ref is ``<repository>/<component>:<distro version>``, the
name kubeadm derives from ``imageRepository`` and ``kubernetesVersion``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tkedistro.core import files
from tkedistro.core.errors import BuildError
from tkedistro.core.files import json_digest, sha256_file, write_atomic
from tkedistro.core.workspace import output_bin
from tkedistro.debian.rootfs import INPUTS_LABEL, SOURCE_LABEL, DebianBase
from tkedistro.model.manifest import Manifest

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
DEFAULT_REPOSITORY = "tkedistro.local/k8s"
BIN_DIR = PurePosixPath("/usr/local/bin")
RECIPE_VERSION = 1  # bump when the Dockerfile or the context layout changes meaning
# Every file of a build context gets this mtime and a fixed mode, so the copied layer does not
# depend on when or how the binary was written (1980-01-01, the zip epoch).
FIXED_MTIME = 315532800
CONTEXT_ROOT = "rootfs"  # the context folder copied onto the image's /

TITLE_LABEL = "org.opencontainers.image.title"
VERSION_LABEL = "org.opencontainers.image.version"
REVISION_LABEL = "org.opencontainers.image.revision"
BASE_NAME_LABEL = "org.opencontainers.image.base.name"
BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"
BASE_LABEL = "org.tkedistro.base"
PLATFORM_LABEL = "org.tkedistro.platform"
BINARY_LABEL = "org.tkedistro.binary.sha256"


def component_ref(component: str, version: str, repository: str = DEFAULT_REPOSITORY) -> str:
    return f"{repository.rstrip('/')}/{component}:{version}"


def binary_path(output_dir: Path, component: str, platform: str) -> Path:
    """Where ``tkedistro build`` leaves ``component`` for ``platform`` (``os/arch``)."""
    return output_dir / output_bin(platform) / component


@dataclass(frozen=True)
class ComponentRecipe:
    """One component image for one platform, from one binary on one base."""

    component: str
    platform: str
    ref: str
    binary: Path
    binary_sha256: str
    base_ref: str
    base_id: str
    version: str  # the distro version (``v1.20.2-tke.1``)
    revision: str  # the upstream commit the manifest pins
    source: str  # the upstream URL

    @property
    def target(self) -> PurePosixPath:
        return BIN_DIR / self.component

    def dockerfile(self) -> str:
        # a folder, not the file: the engine then takes the folders' times from the context
        # too, and the layer is the same bytes for the same binary
        return f"FROM {self.base_ref}\nCOPY {CONTEXT_ROOT}/ /\n"

    def plain_labels(self) -> dict[str, str]:
        """The labels besides the inputs digest."""
        return {TITLE_LABEL: self.component, VERSION_LABEL: self.version,
                REVISION_LABEL: self.revision, SOURCE_LABEL: self.source,
                BASE_NAME_LABEL: self.base_ref, BASE_DIGEST_LABEL: self.base_id,
                BASE_LABEL: self.base_id,
                PLATFORM_LABEL: self.platform, BINARY_LABEL: "sha256:" + self.binary_sha256}

    def inputs_digest(self) -> str:
        doc = {"recipe": RECIPE_VERSION, "ref": self.ref, "dockerfile": self.dockerfile(),
               "labels": self.plain_labels(), "binary": self.binary_sha256,
               "base": self.base_id, "mtime": FIXED_MTIME}
        return json_digest(doc)

    def labels(self) -> dict[str, str]:
        return {**self.plain_labels(), INPUTS_LABEL: self.inputs_digest()}


def plan_components(output_dir: Path, manifest: Manifest, base: DebianBase, platform: str,
                    repository: str = DEFAULT_REPOSITORY,
                    components: tuple[str, ...] = COMPONENTS) -> list[ComponentRecipe]:
    """One recipe per component; ``BuildError`` naming every binary that is not built."""
    missing = [str(binary_path(output_dir, c, platform)) for c in components
               if not binary_path(output_dir, c, platform).is_file()]
    if missing:
        raise BuildError(f"component images for {manifest.release} {platform} need binaries "
                         f"that are not built: {', '.join(missing)}",
                         hint=f"tkedistro build {manifest.release} -p {platform} "
                              + " ".join(f"-c {c}" for c in components))
    return [ComponentRecipe(
        component=c, platform=platform,
        ref=component_ref(c, manifest.distro_version, repository),
        binary=binary_path(output_dir, c, platform),
        binary_sha256=sha256_file(binary_path(output_dir, c, platform)),
        base_ref=base.ref, base_id=base.image_id, version=manifest.distro_version,
        revision=manifest.upstream.commit, source=manifest.upstream.url) for c in components]


def write_context(folder: Path, recipe: ComponentRecipe) -> Path:
    """A fresh context: the Dockerfile and ``rootfs/usr/local/bin/<component>``, every file
    and folder with a fixed mtime and mode.

    A copy, not a hard link: fixing the mtime of a link would touch the build output."""
    files.remove(folder)
    binary = Path(CONTEXT_ROOT) / recipe.target.relative_to("/")
    files.ensure_dir((folder / binary).parent)
    write_atomic(folder / "Dockerfile", recipe.dockerfile().encode())
    files.copy_file(recipe.binary, folder / binary, mode=0o755)
    folders = [parent for parent in binary.parents if parent != Path(".")]  # deepest first
    fixed: list[tuple[Path, int]] = [(Path("Dockerfile"), 0o644), (binary, 0o755)]
    for name, mode in fixed + [(f, 0o755) for f in folders]:
        files.set_mode(folder / name, mode)
        os.utime(folder / name, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
    return folder

