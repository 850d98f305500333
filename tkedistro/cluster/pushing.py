"""The images the cluster runs, pushed to the local registry the nodes read from.

kubeadm asks for ``127.0.0.1:5000/tkedistro/<name>:<tag>`` (``ClusterConfig.image_repository``);
the host registry stores the same repositories, so pushing ``<host registry>/tkedistro/...``
is all it takes. Which local images those are: the component images of this release, etcd,
pause and the cluster DNS (``supportimages.SupportImages``).
"""

from __future__ import annotations

from dataclasses import dataclass

from tkedistro.cluster.config import ETCD_TAG, IMAGE_PATH, NODE_REGISTRY, PAUSE_TAG, ClusterConfig
from tkedistro.cluster.supportimages import SupportImages
from tkedistro.core import console
from tkedistro.core.workspace import Workspace
from tkedistro.engine.protocols import ImageEngine
from tkedistro.engine.registry import LocalRegistry
from tkedistro.model.manifest import Manifest
from tkedistro.model.refs import parse_image_ref

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")


@dataclass(frozen=True)
class DnsImage:
    manifests: str
    deployment: str
    description: str


def push(engine: ImageEngine, registry: LocalRegistry, local: str, name: str, tag: str) -> str:
    """Push ``local`` as ``tkedistro/<name>:<tag>``; returns the name the nodes pull."""
    target = f"{registry.address}/{IMAGE_PATH}/{name}:{tag}"
    engine.tag(local, target)
    try:
        digest = engine.push(target, registry.login)
    finally:
        engine.remove(target)  # only the tag: the registry's port changes every run
    console.verbose(f"pushed {target} {digest}")
    return f"{NODE_REGISTRY}/{IMAGE_PATH}/{name}:{tag}"


def push_cluster_images(ws: Workspace, manifest: Manifest, config: ClusterConfig,
                        engine: ImageEngine, registry: LocalRegistry,
                        support: SupportImages) -> DnsImage:
    from tkedistro.cluster.config import POD_SUBNET, SERVICE_SUBNET
    from tkedistro.cluster.dns.manifests import NAME, dns_manifests
    from tkedistro.images.components import ensure_component_images

    with console.step("cluster", "component images"):
        built = ensure_component_images(ws, manifest.release, manifest, engine)
    with console.step("cluster", f"push the cluster's images to {registry.address}"):
        for image in built:
            push(engine, registry, image.ref, image.component, config.version)
        push(engine, registry, support.etcd, "etcd", ETCD_TAG)
        push(engine, registry, support.pause, "pause", PAUSE_TAG)
        served = push(engine, registry, support.dns, "dns-responder",
                      parse_image_ref(support.dns).tag)
    manifests = dns_manifests(served, reverse_cidrs=(SERVICE_SUBNET, POD_SUBNET))
    return DnsImage(manifests, NAME,
                    "tkedistro-dns, built from the tree's vendored miekg/dns and client-go")
