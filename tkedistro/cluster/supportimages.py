"""The images the local cluster runs besides the distro's components, made from the tree or
from Debian: pause (the pods' sandbox, from ``build/pause``) and etcd (Debian's), by the same
recipes as the conformance images (``images/upstream/``: a cluster and a conformance run share
them), and the cluster DNS responder (``dns/image.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from tkedistro.cluster.dns.image import ensure_dns_image
from tkedistro.core.errors import ClusterError
from tkedistro.core.workspace import Workspace
from tkedistro.engine.engines import Engines
from tkedistro.images.upstream import imageset
from tkedistro.images.upstream.imageset import images_dir
from tkedistro.model.manifest import Manifest

PAUSE_REF = "k8s.gcr.io/pause:3.2"
ETCD_REF = "k8s.gcr.io/etcd:3.4.13-0"


@dataclass(frozen=True)
class SupportImages:
    """Local refs of the images the cluster runs that are not distro components: etcd and
    pause for kubeadm, and the cluster DNS."""

    etcd: str
    pause: str
    dns: str


def support_images(ws: Workspace, release: str, manifest: Manifest,
                   engines: Engines) -> SupportImages:
    """Build (or reuse) pause, etcd and the DNS responder from the release's prepared tree."""
    from tkedistro.git.repo import Repo

    tree = ws.src_dir(release)
    if not (tree / "build" / "pause").is_dir():
        raise ClusterError(f"{ws.rel(tree)}: no Kubernetes source tree to build pause from",
                           hint=f"prepare it first: tkedistro source {release}")
    tool = imageset.backend_build_tool(engines.containers, manifest.builder.image)
    built = imageset.build_image_set(tree, Repo(tree).head(), [PAUSE_REF, ETCD_REF],
                                     engines.images, tool,
                                     images_dir(ws, release) / "work")
    local = {o.ref: o.local or o.ref for o in built.built}
    if PAUSE_REF not in local or ETCD_REF not in local:
        raise ClusterError("the pause and etcd images could not be made",
                           hint="see `tkedistro conformance images " + release + "`")
    dns = ensure_dns_image(ws, release, manifest, engines)
    return SupportImages(etcd=local[ETCD_REF], pause=local[PAUSE_REF], dns=dns)
