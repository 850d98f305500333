"""The images the cluster runs, pushed to the local registry the nodes read from.

kubeadm asks for ``127.0.0.1:5000/tkedistro/<name>:<tag>`` (``ClusterConfig.image_repository``);
the host registry stores the same repositories, so pushing ``<host registry>/tkedistro/...``
is all it takes. Which images those are: the release's shipped images (the control plane,
kube-proxy and pause, from their OCI archives: ``shippedimages``), etcd and the cluster DNS
(``supportimages.SupportImages``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tkedistro.cluster.config import ETCD_TAG, IMAGE_PATH, NODE_REGISTRY, ClusterConfig
from tkedistro.cluster.shippedimages import ClusterImage, push_release_images
from tkedistro.cluster.supportimages import SupportImages
from tkedistro.core import console
from tkedistro.engine.protocols import ImageEngine
from tkedistro.engine.registry import LocalRegistry
from tkedistro.images.push import ArchivedImage
from tkedistro.model.refs import parse_image_ref


@dataclass(frozen=True)
class DnsImage:
    manifests: str
    deployment: str
    description: str


@dataclass(frozen=True)
class PushedImages:
    """What ``push_cluster_images`` leaves in the registry: the DNS add-on to apply and the
    shipped images the nodes run."""

    dns: DnsImage
    shipped: tuple[ClusterImage, ...]


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


def push_cluster_images(config: ClusterConfig, engine: ImageEngine, registry: LocalRegistry,
                        support: SupportImages,
                        shipped: Sequence[ArchivedImage]) -> PushedImages:
    from tkedistro.cluster.config import POD_SUBNET, SERVICE_SUBNET
    from tkedistro.cluster.dns.manifests import NAME, dns_manifests

    with console.step("cluster", f"push the cluster's images to {registry.address}"):
        ran = push_release_images(shipped, registry, config.version)
        push(engine, registry, support.etcd, "etcd", ETCD_TAG)
        served = push(engine, registry, support.dns, "dns-responder",
                      parse_image_ref(support.dns).tag)
    manifests = dns_manifests(served, reverse_cidrs=(SERVICE_SUBNET, POD_SUBNET))
    dns = DnsImage(manifests, NAME,
                   "tkedistro-dns, built from the tree's vendored miekg/dns and client-go")
    return PushedImages(dns, tuple(ran))
