"""The node image: Debian with containerd, runc, CNI plugins, iptables (legacy) and a
registry server, plus the distro's own kubelet, kubeadm and kubectl and the node entrypoint.

Two layers, each reused while its inputs are unchanged (``org.tkedistro.inputs`` label):
``tkedistro/node-base:bookworm`` (debootstrap, root only, about a minute) and
``tkedistro.local/node:<distro version>`` (the binaries and files, seconds).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from tkedistro.cluster.config import NODE_REGISTRY, REGISTRY_ROOT, ClusterConfig
from tkedistro.core import console, files
from tkedistro.core.errors import ClusterError
from tkedistro.core.files import json_digest, sha256_file, write_text
from tkedistro.core.render import environment
from tkedistro.debian.rootfs import INPUTS_LABEL, RECORD_NAME, DebianRecipe, ensure_debian_base
from tkedistro.engine.imagerecord import ImageRecord, local_id
from tkedistro.engine.protocols import ImageEngine

BASE_REF = "tkedistro/node-base:bookworm"
SUITE = "bookworm"
PACKAGES = (
    "containerd", "runc", "containernetworking-plugins", "iptables", "conntrack", "ipset",
    "iproute2", "ethtool", "socat", "kmod", "mount", "procps", "ca-certificates", "util-linux",
    "ebtables", "curl", "docker-registry",
)
BINARIES = ("kubelet", "kubeadm", "kubectl")
DOCKERFILE = """FROM {base}
COPY kubelet kubeadm kubectl tkedistro-node /usr/local/bin/
COPY containerd.toml /etc/containerd/config.toml
COPY registry.yml /etc/tkedistro/registry.yml
ENTRYPOINT ["/usr/local/bin/tkedistro-node"]
"""


@dataclass(frozen=True)
class NodeImage:
    ref: str
    id: str
    reused: bool


def node_ref(version: str) -> str:
    return f"tkedistro.local/node:{version}"


BASE_RECIPE = DebianRecipe(
    BASE_REF, PACKAGES, suite=SUITE, step="cluster",
    setup=tuple(("update-alternatives", "--set", tool, f"/usr/sbin/{tool}-legacy")
                for tool in ("iptables", "ip6tables")),
    prune=("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale"),
    hint="run `sudo tkedistro cluster up RELEASE` once (debootstrap); later runs reuse it")


def node_files(config: ClusterConfig) -> dict[str, bytes]:
    """The files the node image adds besides the binaries, by their context name."""
    env = environment()
    return {
        "tkedistro-node": env.get_template("cluster/entrypoint.sh").render().encode(),
        "containerd.toml": env.get_template("cluster/containerd.toml.j2").render(
            sandbox_image=config.sandbox_image, registry=NODE_REGISTRY).encode(),
        "registry.yml": env.get_template("cluster/registry.yml.j2").render(
            root=str(REGISTRY_ROOT), registry=NODE_REGISTRY).encode(),
    }


def ensure_node_image(engine: ImageEngine, config: ClusterConfig, bin_dir: Path,
                      work: Path) -> NodeImage:
    """The node image for the binaries in ``bin_dir``; rebuilt only when they or the node's
    files changed."""
    missing = [b for b in BINARIES if not (bin_dir / b).is_file()]
    if missing:
        raise ClusterError(f"not built in {bin_dir}: {', '.join(missing)}",
                           hint=f"tkedistro build {config.release}")
    base = ensure_debian_base(engine, work, BASE_RECIPE)
    added = node_files(config)
    digest = json_digest({"base": base.image_id,
                      "binaries": {b: sha256_file(bin_dir / b) for b in BINARIES},
                      "files": {k: hashlib.sha256(v).hexdigest() for k, v in added.items()}})
    ref = node_ref(config.version)
    labels = engine.labels(ref)
    if labels is not None and labels.get(INPUTS_LABEL) == digest:
        return NodeImage(ref, local_id(engine, ref, digest, work), True)
    context = work / "node-context"
    files.remove(context)
    for b in BINARIES:
        files.copy_file(bin_dir / b, context / b, mode=0o755)
    for name, data in added.items():
        files.write_atomic(context / name, data, mode=0o755 if name == "tkedistro-node" else 0o644)
    write_text(context / "Dockerfile", DOCKERFILE.format(base=base.ref))
    with console.step("cluster", f"node image {ref}"):
        built = engine.build(context, ref, {INPUTS_LABEL: digest,
                                            "org.opencontainers.image.version": config.version})
    files.remove(context)
    ImageRecord(work / RECORD_NAME).remember(ref, digest, built.id)
    return NodeImage(ref, built.id, False)
