"""``Engines``: the container, image, node and OCI engines of one run, made once by the CLI.

Features take the bundle (or the one engine they use) as an argument and never pick an
adapter themselves, as kind's commands make one ``cluster.NewProvider(...)`` and pass it down.
``docker_engines`` is the bundle on the local (or ``DOCKER_HOST``) Docker engine with buildah
for OCI images; making it connects to nothing (each adapter connects on first use) and imports
no SDK, so commands that never touch an engine stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tkedistro.engine.protocols import ContainerBackend, ImageEngine, NodeEngine, OciBuilder

# an OCI builder whose own storage (never the host's) is the given folder
OciBuilderFactory = Callable[[Path], OciBuilder]


@dataclass(frozen=True)
class Engines:
    containers: ContainerBackend  # build containers (the builder image)
    images: ImageEngine  # images in the engine: bases, node and support images
    nodes: NodeEngine  # the local cluster's node containers and network
    oci: OciBuilderFactory  # release images as OCI archives


def buildah_builder(storage: Path) -> OciBuilder:
    from tkedistro.engine.buildah import Buildah

    return Buildah(storage)


def docker_engines() -> Engines:
    """The Docker engine for containers, images and nodes; buildah for OCI images."""
    from tkedistro.engine.docker import DockerBackend
    from tkedistro.engine.docker_images import DockerImages
    from tkedistro.engine.docker_nodes import DockerNodes

    return Engines(containers=DockerBackend(), images=DockerImages(), nodes=DockerNodes(),
                   oci=buildah_builder)
