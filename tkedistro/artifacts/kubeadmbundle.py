"""The air-gapped kubeadm install bundle and upstream's image archives in the server tarball.

For each platform of the release, ``bundle/kubeadm-images-linux-<arch>.tar``: one ``docker
load`` archive (``ctr -n k8s.io images import`` reads it too) holding every image ``kubeadm
config images list`` names for the release (``images/kubeadm.py``), under exactly those
names, so ``kubeadm init`` with its default ``imageRepository`` finds each one without a
registry:

- kube-apiserver, kube-controller-manager, kube-scheduler and kube-proxy: that platform's
  image of the shipped ``images/<component>.oci.tar``, as ``k8s.gcr.io/<component>:<tag>``
  (the tag: the distro version, ``+`` made ``_``);
- pause: the shipped ``images/pause.oci.tar`` (same image config, so the same image id) as
  ``k8s.gcr.io/pause:3.2``, the sandbox image kubeadm v1.20 asks for;
- etcd ``k8s.gcr.io/etcd:3.4.13-0``: Debian's etcd, the image the local cluster runs;
- DNS ``k8s.gcr.io/coredns:1.7.0``: NOT CoreDNS. Offline there is no CoreDNS image; the
  name carries the cluster's ``tkedistro-dns`` responder (``cluster/dns/``), which does not
  read kubeadm's CoreDNS add-on configuration (``-conf /etc/coredns/Corefile`` is an unknown
  flag to it: it exits, the pod crash-loops): skip that
  phase (``kubeadm init --skip-phases=addon/coredns``) and deploy the responder with its own
  manifests, as ``tkedistro cluster up`` does.

etcd and the responder are built in the Docker engine for this machine's platform
(``cluster/supportimages.py``); a platform they are not built for gets a bundle without them
and the step says so (``bundle.json`` lists what each bundle lacks).

The per-platform archives of the four components are also what the server tarballs carry as
``kubernetes/server/bin/<component>.tar`` beside ``<component>.docker_tag``, named both
``k8s.gcr.io/<component>-<arch>:<tag>`` (as upstream's ``build/lib/release.sh`` saves them)
and kubeadm's ``k8s.gcr.io/<component>:<tag>``.

Every archive is made by skopeo from the same inputs the same way and joined with fixed
entries (``images/dockerbundle.py``), so the bytes depend only on the images and the epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tkedistro.artifacts.context import FinishRequest, ReleaseContext
from tkedistro.core import console, files
from tkedistro.core.host import host_platform
from tkedistro.engine import skopeo
from tkedistro.engine.engines import Engines
from tkedistro.images import kubeadm
from tkedistro.images.dockerbundle import archive_names, join_archives
from tkedistro.images.shipped import archive_name

STEP = "kubeadm_bundle"
BUNDLE_DIR = "bundle"
BUNDLE_JSON = "bundle.json"
SERVER_IMAGES = (*kubeadm.CONTROL_PLANE, kubeadm.PROXY)  # upstream's server/bin/<c>.tar
DNS_NOTE = ("k8s.gcr.io/coredns:1.7.0 is the tkedistro-dns responder, not CoreDNS: skip "
            "kubeadm's addon/coredns phase and deploy the responder's own manifests")


@dataclass(frozen=True)
class Bundle:
    """What the step made: the files in the output (relative, sorted) and, per (component,
    platform), the docker archive the server tarball takes (valid inside ``kubeadm_bundle``)."""

    files: list[str] = field(default_factory=list)
    server_images: Mapping[tuple[str, str], Path] = field(default_factory=dict)


def bundle_name(platform: str) -> str:
    return f"{BUNDLE_DIR}/kubeadm-images-{platform.replace('/', '-')}.tar"


def wanted(ctx: ReleaseContext) -> bool:
    """A bundle is made when the release ships kubeadm, pause and every image it installs."""
    return ("kubeadm" in ctx.components and kubeadm.supports(ctx.distro_version)
            and all(c in ctx.image_components for c in (*SERVER_IMAGES, kubeadm.PAUSE)))


@contextmanager
def kubeadm_bundle(request: FinishRequest, ctx: ReleaseContext, engines: Engines,
                   images: bool = True) -> Iterator[Bundle]:
    """Make the bundles of ``ctx`` in ``request.out/bundle`` (nothing when the images were
    not made or not ``wanted``); the server images' archives live in a scratch folder until
    the block ends."""
    if not (images and wanted(ctx)):
        yield Bundle()
        return
    support = _support_images(request, engines)
    work = files.make_temp_dir(files.ensure_dir(request.ws.cache / "kubeadm-bundle"),
                               f"{ctx.release}-")
    try:
        with console.step(STEP, ", ".join(ctx.platforms)):
            parts = {p: _platform_parts(request.out, ctx, p, work) for p in ctx.platforms}
            made = [_bundle(request.out, ctx, p, parts[p], support, work) for p in ctx.platforms]
        names = [bundle_name(p) for p in ctx.platforms]
        files.write_json(request.out / BUNDLE_DIR / BUNDLE_JSON,
                         {"schema": 1, "bundles": dict(zip(names, made, strict=True))})
        yield Bundle(sorted([*names, f"{BUNDLE_DIR}/{BUNDLE_JSON}"]),
                     {(c, p): parts[p][c] for p in ctx.platforms for c in SERVER_IMAGES})
    finally:
        files.remove(work)


def _support_images(request: FinishRequest, engines: Engines) -> dict[str, str]:
    """role -> the Docker engine's ref of etcd and the DNS responder (host platform)."""
    from tkedistro.cluster.supportimages import support_images

    manifest = request.prepared.manifest
    with console.step(STEP, "etcd and the cluster DNS responder"):
        support = support_images(request.ws, manifest.release, manifest, engines)
    return {kubeadm.ETCD: support.etcd, kubeadm.DNS: support.dns}


def _platform_parts(out: Path, ctx: ReleaseContext, platform: str,
                    work: Path) -> dict[str, Path]:
    """component -> its ``platform`` image as a docker archive, named as kubeadm and upstream's
    server tarball name it."""
    arch = platform.split("/")[1]
    refs = {i.role: i.ref for i in kubeadm.kubeadm_images(ctx.distro_version)}
    parts = {}
    for component in (*SERVER_IMAGES, kubeadm.PAUSE):
        names = [refs[component]]
        if component != kubeadm.PAUSE:
            names.append(kubeadm.arch_ref(component, ctx.distro_version, arch))
        dest = files.ensure_dir(work / arch) / f"{component}.tar"
        skopeo.copy_to_docker_archive(skopeo.oci_archive(out / archive_name(component)),
                                      platform, dest, names)
        parts[component] = dest
    return parts


def _bundle(out: Path, ctx: ReleaseContext, platform: str, parts: Mapping[str, Path],
            support: Mapping[str, str], work: Path) -> dict[str, object]:
    """Join the platform's archives into its bundle; returns its entry of ``bundle.json``
    (the names it holds, read back from it, and those of kubeadm's list it lacks)."""
    refs = {i.role: i.ref for i in kubeadm.kubeadm_images(ctx.distro_version)}
    joined: list[Path] = list(parts.values())
    if platform == host_platform():  # etcd and the responder are built for this host only
        for role, local in sorted(support.items()):
            dest = work / platform.split("/")[1] / f"{role}.tar"
            skopeo.copy_to_docker_archive(f"docker-daemon:{local}", platform, dest,
                                          [refs[role]])
            joined.append(dest)
    target = files.ensure_dir(out / BUNDLE_DIR) / bundle_name(platform).split("/")[1]
    join_archives(joined, target, ctx.source_date_epoch, keep=refs.values())
    held = sorted(archive_names(target))
    missing = sorted(set(refs.values()) - set(held))
    console.info(f"[{STEP}] {bundle_name(platform)} {console.size(target.stat().st_size)}")
    if missing:
        console.warn(f"{bundle_name(platform)}: without {', '.join(missing)} (etcd and the DNS "
                     f"responder are built for {host_platform()} only); load them on the node "
                     "from another source")
    return {"platform": platform, "images": held, "missing": missing, "dns": DNS_NOTE}
