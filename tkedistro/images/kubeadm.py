"""The images ``kubeadm config images list`` names for a release, derived as kubeadm v1.20
derives them (``cmd/kubeadm/app/images/images.go``), so an offline bundle can carry each one
under exactly that name.

The control-plane components and kube-proxy are ``<repository>/<component>:<tag>``, where the
tag is the Kubernetes version with ``+`` made ``_`` (a tag cannot hold ``+``); pause, etcd
and CoreDNS have the fixed tags kubeadm v1.20 was released with (``constants.go``:
``PauseVersion``, ``DefaultEtcdVersion``, ``CoreDNSVersion``). The unit tier checks this
against what the real kubeadm printed (``tests/unit/data/kubeadm-images-*.txt``).
"""

from __future__ import annotations

from dataclasses import dataclass

REPOSITORY = "k8s.gcr.io"  # kubeadm v1.20's default imageRepository
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
PROXY = "kube-proxy"
PAUSE = "pause"
ETCD = "etcd"
DNS = "coredns"
# kubeadm's fixed tags by Kubernetes minor version (only releases tkedistro ships)
FIXED_TAGS = {"1.20": {PAUSE: "3.2", ETCD: "3.4.13-0", DNS: "1.7.0"}}


@dataclass(frozen=True)
class KubeadmImage:
    """One image kubeadm names: its role (a component, ``pause``, ``etcd``, ``coredns``) and
    the reference kubeadm looks for."""

    role: str
    ref: str


def image_tag(version: str) -> str:
    """The tag kubeadm derives from a Kubernetes version: ``v1.20.2+tke.1`` -> ``v1.20.2_tke.1``."""
    return version.replace("+", "_")


def minor(version: str) -> str:
    """``v1.20.2-tke.1`` -> ``1.20``."""
    parts = version.removeprefix("v").split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise ValueError(f"not a Kubernetes version: {version!r}")
    return f"{parts[0]}.{parts[1]}"


def supports(version: str) -> bool:
    """Whether the fixed tags of ``version``'s kubeadm are known here."""
    return minor(version) in FIXED_TAGS


def kubeadm_images(version: str, repository: str = REPOSITORY) -> list[KubeadmImage]:
    """The images in the order ``kubeadm config images list --kubernetes-version VERSION``
    prints them; ``ValueError`` for a minor version whose kubeadm is not known here."""
    fixed = FIXED_TAGS.get(minor(version))
    if fixed is None:
        raise ValueError(f"kubeadm's image list of Kubernetes {minor(version)} is not known "
                         f"(known: {', '.join(sorted(FIXED_TAGS))})")
    tag = image_tag(version)
    images = [KubeadmImage(c, f"{repository}/{c}:{tag}") for c in (*CONTROL_PLANE, PROXY)]
    return images + [KubeadmImage(role, f"{repository}/{role}:{fixed[role]}")
                     for role in (PAUSE, ETCD, DNS)]


def arch_ref(component: str, version: str, arch: str, repository: str = REPOSITORY) -> str:
    """The name upstream's server tarball saves a component image under
    (``build/lib/release.sh``): ``k8s.gcr.io/kube-apiserver-amd64:v1.20.2``."""
    return f"{repository}/{component}-{arch}:{image_tag(version)}"
