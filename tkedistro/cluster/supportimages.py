"""The images the local cluster runs besides the release's shipped images (``shippedimages``),
made from the tree or from Debian: etcd (Debian's), by the same recipe as the conformance
images (``images/upstream/``: a cluster and a conformance run share it), and the cluster DNS
responder (``dns/image.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from tkedistro.cluster.dns.image import ensure_dns_image
from tkedistro.core.errors import ClusterError
from tkedistro.core.workspace import Workspace
from tkedistro.engine.engines import Engines
from tkedistro.images.upstream import imageset
from tkedistro.images.upstream.imageset import images_dir
from tkedistro.model.manifest import Manifest

ETCD_REF = "k8s.gcr.io/etcd:3.4.13-0"


@dataclass(frozen=True)
class SupportImages:
    """Local refs of the images the cluster runs that the release does not ship: etcd for
    kubeadm, and the cluster DNS."""

    etcd: str
    dns: str


def support_images(ws: Workspace, release: str, manifest: Manifest,
                   engines: Engines) -> SupportImages:
    """Build (or reuse) etcd and the DNS responder from the release's prepared tree."""
    from tkedistro.git.repo import Repo

    tree = ws.src_dir(release)
    if not (tree / "build").is_dir():
        raise ClusterError(f"{ws.rel(tree)}: no Kubernetes source tree to build etcd and "
                           "the cluster DNS from",
                           hint=f"prepare it first: tkedistro source {release}")
    tool = imageset.backend_build_tool(engines.containers, manifest.builder.image)
    built = imageset.build_image_set(tree, Repo(tree).head(), [ETCD_REF], engines.images,
                                     tool, images_dir(ws, release) / "work")
    local = {o.ref: o.local or o.ref for o in built.built}
    if ETCD_REF not in local:
        raise ClusterError("the etcd image could not be made",
                           hint="see `tkedistro conformance images " + release + "`")
    dns = ensure_dns_image(ws, release, manifest, engines)
    return SupportImages(etcd=local[ETCD_REF], dns=dns)
