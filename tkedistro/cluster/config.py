"""What one local cluster is: its names, labels, addresses, and the kubeadm configuration.

Everything the cluster makes on the engine carries ``LABEL=<name>``; the name is derived from
the release and the distro root, so two checkouts never share (or remove) each other's nodes.

The kubelet's cgroups follow the node's reality, which is the same on every host layout
(``cluster/cgroups.py``): no systemd runs in a node, so its driver is ``cgroupfs`` (and
containerd's runc ``SystemdCgroup = false``) whatever driver the host's Docker uses, and its
cgroup root is the one the node's entrypoint made inside the node's own cgroup and wrote to
``/run/tkedistro-cgroup-root`` (passed as ``--cgroup-root``): on cgroup v1 the node's cgroup
by its host path plus ``/kubelet`` (host cgroup namespace), on cgroup v2 ``/kubelet`` in the
node's own cgroup namespace, with every controller the node has delegated to it (v1.20's
kubelet needs cpu, cpuset, memory, pids and hugetlb there when the host has them). kubeadm's
preflight (and its ``SystemVerification``) is skipped by ``bootstrap``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tkedistro.core.render import yaml_documents
from tkedistro.core.workspace import CLUSTER_STATE

LABEL = "org.tkedistro.cluster"
RELEASE_LABEL = "org.tkedistro.release"
ROLE_LABEL = "org.tkedistro.role"
NODE_REGISTRY = "127.0.0.1:5000"  # each node serves the registry's storage read-only here
# kubeadm's images: NODE_REGISTRY/tkedistro/<component>:<version>, the release's shipped
# images (``shippedimages.py``), pause among them (the sandbox), and etcd
IMAGE_PATH = "tkedistro"
REGISTRY_ROOT = PurePosixPath("/srv/registry")
POD_SUBNET = "10.244.0.0/16"
SERVICE_SUBNET = "10.96.0.0/16"
DNS_IP = "10.96.0.10"
DOMAIN = "cluster.local"
CRI_SOCKET = "unix:///run/containerd/containerd.sock"
ETCD_TAG = "3.4.13-0"
PAUSE_TAG = "3.2"  # kubeadm v1.20's name for pause: the shipped pause is pushed under it too
MAX_NODES = 5


TIMEOUT_FACTOR_ENV = "TKEDISTRO_CLUSTER_TIMEOUT_FACTOR"
CONTROL_PLANE_TIMEOUT_S = 240  # kubeadm's own default for timeoutForControlPlane
DISCOVERY_TIMEOUT_S = 300  # kubeadm's own default for a join's discovery


def timeout_factor() -> float:
    """How much longer every wait of the cluster may take (``TKEDISTRO_CLUSTER_TIMEOUT_FACTOR``,
    1 to 100; default 1): for a machine known to be slow, such as the software-emulated cgroup
    v2 guest, where the same steps take 5 to 20 times as long."""
    from tkedistro.core.errors import ClusterError

    text = os.environ.get(TIMEOUT_FACTOR_ENV, "").strip()
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 1.0 <= value <= 100.0:
        raise ClusterError(f"{TIMEOUT_FACTOR_ENV}={text!r}: not a number from 1 to 100",
                           hint=f"unset {TIMEOUT_FACTOR_ENV}, or set it to e.g. 4 on a slow "
                                "machine")
    return value


def scaled(seconds: float) -> float:
    """``seconds`` times ``timeout_factor()``."""
    return seconds * timeout_factor()


def cluster_name(release: str, root: Path) -> str:
    """``tke-1-20-<8 hex>``: a readable part of the release and a digest of the exact release
    name and the distro root, so ``1.0-tke``, ``1.0-TKE`` and ``1.0.tke`` (one readable part)
    and two checkouts never share, or remove, each other's nodes. At most 33 characters: a
    valid hostname even with ``-control-plane`` after it."""
    key = f"{root.resolve()}\0{release}".encode()
    digest = hashlib.sha256(key).hexdigest()[:8]
    readable = re.sub(r"[^a-z0-9]+", "-", release.lower())[:20].strip("-")
    return f"tke-{readable}-{digest}" if readable else f"tke-{digest}"


def legacy_cluster_name(release: str, root: Path) -> str:
    """The name tkedistro gave the cluster before names held the exact release (only for
    finding such a cluster again, together with its exact release label)."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:6]
    return f"tke-{re.sub(r'[^a-z0-9]+', '-', release.lower())}-{digest}"


@dataclass(frozen=True)
class ClusterConfig:
    release: str
    name: str
    nodes: int
    version: str  # the distro version the components report, e.g. v1.20.2-tke.1
    root: Path  # _cluster/<release>: state and kubeconfig

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL: self.name}

    @property
    def node_names(self) -> list[str]:
        workers = [f"{self.name}-worker{'' if i == 1 else i}" for i in range(1, self.nodes)]
        return [f"{self.name}-control-plane", *workers]

    @property
    def network(self) -> str:
        return self.name

    @property
    def cgroup_parent(self) -> str:
        return f"/{self.name}"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.root / CLUSTER_STATE

    @property
    def image_repository(self) -> str:
        return f"{NODE_REGISTRY}/{IMAGE_PATH}"

    def shipped_image(self, component: str) -> str:
        """The name the nodes pull a shipped image by (kubeadm's for the components)."""
        return f"{self.image_repository}/{component}:{image_tag(self.version)}"

    @property
    def sandbox_image(self) -> str:
        """The pods' sandbox: the release's shipped pause image."""
        return self.shipped_image("pause")

    def volume(self, node: str) -> str:
        return f"{node}-var"


def image_tag(version: str) -> str:
    """The tag kubeadm gives the control plane's images for ``kubernetesVersion: version``
    (an image tag has no ``+``: kubeadm writes ``_``)."""
    return version.replace("+", "_")


def new_token() -> str:
    """A kubeadm bootstrap token ``[a-z0-9]{6}.[a-z0-9]{16}``."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    pick = "".join(secrets.choice(alphabet) for _ in range(22))
    return f"{pick[:6]}.{pick[6:]}"


def _address(value: str) -> str:
    return str(ipaddress.IPv4Address(value))  # an engine answer, checked before it reaches YAML


def _kubelet_args(address: str) -> dict[str, str]:
    return {"node-ip": _address(address), "fail-swap-on": "false"}


def init_config(config: ClusterConfig, node: str, address: str, token: str) -> str:
    """kubeadm's init configuration: control plane on ``address``, untainted (2 nodes must be
    schedulable for conformance), CoreDNS skipped (``bootstrap`` deploys the cluster DNS)."""
    addr = _address(address)
    docs: list[dict[str, Any]] = [
        {"apiVersion": "kubeadm.k8s.io/v1beta2", "kind": "InitConfiguration",
         "bootstrapTokens": [{"token": token, "ttl": "2h"}],
         "localAPIEndpoint": {"advertiseAddress": addr, "bindPort": 6443},
         "nodeRegistration": {"name": node, "criSocket": CRI_SOCKET, "taints": [],
                              "kubeletExtraArgs": _kubelet_args(addr)}},
        {"apiVersion": "kubeadm.k8s.io/v1beta2", "kind": "ClusterConfiguration",
         "kubernetesVersion": config.version, "clusterName": config.name,
         "imageRepository": config.image_repository,
         "controlPlaneEndpoint": f"{addr}:6443",
         "networking": {"podSubnet": POD_SUBNET, "serviceSubnet": SERVICE_SUBNET,
                        "dnsDomain": DOMAIN},
         "apiServer": {"certSANs": ["127.0.0.1", "localhost", addr],
                       "timeoutForControlPlane": f"{scaled(CONTROL_PLANE_TIMEOUT_S):.0f}s"},
         "etcd": {"local": {"imageTag": ETCD_TAG}}},
        {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
         # no systemd in a node: cgroupfs on cgroup v1 and v2, whatever the host's driver;
         # the cgroup root comes from the node's entrypoint (--cgroup-root)
         "cgroupDriver": "cgroupfs", "failSwapOn": False,
         "clusterDNS": [DNS_IP], "clusterDomain": DOMAIN,
         "resolvConf": "/etc/tkedistro/resolv.conf",  # written by the node's entrypoint
         # the nodes share the host's disk: never evict for disk pressure (kind does the same)
         "evictionHard": {"nodefs.available": "0%", "nodefs.inodesFree": "0%",
                          "imagefs.available": "0%"}},
        {"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
         "mode": "iptables",
         # nf_conntrack_max is not writable from a node's network namespace
         "conntrack": {"maxPerCore": 0}},
    ]
    return yaml_documents(*docs)


def join_config(node: str, address: str, endpoint: str, token: str, ca_hash: str) -> str:
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", ca_hash):
        raise ValueError(f"not a CA public key hash: {ca_hash!r}")
    doc = {"apiVersion": "kubeadm.k8s.io/v1beta2", "kind": "JoinConfiguration",
           "discovery": {"timeout": f"{scaled(DISCOVERY_TIMEOUT_S):.0f}s",
                         "bootstrapToken": {"apiServerEndpoint": endpoint, "token": token,
                                            "caCertHashes": [ca_hash]}},
           "nodeRegistration": {"name": node, "criSocket": CRI_SOCKET, "taints": [],
                                "kubeletExtraArgs": _kubelet_args(address)}}
    return yaml_documents(doc)


def cni_config(pod_cidr: str) -> str:
    """The node's CNI chain: a bridge with host-local addresses from the node's pod CIDR
    (routes between nodes are added by ``bootstrap``), hairpin for Services, hostPort."""
    import json

    subnet = str(ipaddress.IPv4Network(pod_cidr))
    conf = {"cniVersion": "0.4.0", "name": "tkedistro", "plugins": [
        {"type": "bridge", "bridge": "tke0", "isGateway": True, "ipMasq": False,
         "hairpinMode": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]}
    return json.dumps(conf, indent=2) + "\n"
