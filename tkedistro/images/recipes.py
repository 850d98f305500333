"""The names a component image is given: its ref, where its binary goes, its labels.

Upstream's layout: the binary at ``/usr/local/bin/<component>`` and no entrypoint (kubeadm's
static pod manifests run ``kube-apiserver ...`` by name and its kube-proxy DaemonSet runs
``/usr/local/bin/kube-proxy``). The ref is ``<repository>/<component>:<distro version>``, the
name kubeadm derives from ``imageRepository`` and ``kubernetesVersion``. The shipped images
(``ociplan.py``, ``shipped.py``) are made with them.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from tkedistro.core.workspace import output_bin

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
DEFAULT_REPOSITORY = "tkedistro.local/k8s"
BIN_DIR = PurePosixPath("/usr/local/bin")
# Every file of an image's root gets this mtime and a fixed mode, so the layer does not
# depend on when or how the binary was written (1980-01-01, the zip epoch).
FIXED_MTIME = 315532800

TITLE_LABEL = "org.opencontainers.image.title"
VERSION_LABEL = "org.opencontainers.image.version"
REVISION_LABEL = "org.opencontainers.image.revision"
BASE_NAME_LABEL = "org.opencontainers.image.base.name"
BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"
BASE_LABEL = "org.tkedistro.base"
BINARY_LABEL = "org.tkedistro.binary.sha256"


def component_ref(component: str, version: str, repository: str = DEFAULT_REPOSITORY) -> str:
    return f"{repository.rstrip('/')}/{component}:{version}"


def binary_path(output_dir: Path, component: str, platform: str) -> Path:
    """Where ``tkedistro build`` leaves ``component`` for ``platform`` (``os/arch``)."""
    return output_dir / output_bin(platform) / component
