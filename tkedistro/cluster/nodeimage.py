"""The node image: Debian with containerd, runc, CNI plugins, iptables (legacy) and a
registry server, plus the distro's own kubelet, kubeadm and kubectl and the node entrypoint.

Two layers, each reused while its inputs are unchanged (``org.tkedistro.inputs`` label):
``tkedistro/node-base:bookworm`` (debootstrap, root only, about a minute) and
``tkedistro.local/node:<distro version>`` (the binaries and files, seconds).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tkedistro.build.backend import ImageEngine
from tkedistro.cluster.config import NODE_REGISTRY, REGISTRY_ROOT, ClusterConfig
from tkedistro.core import console
from tkedistro.core.errors import BuildError, ClusterError
from tkedistro.core.files import write_atomic
from tkedistro.core.render import environment
from tkedistro.core.runner import run

BASE_REF = "tkedistro/node-base:bookworm"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
INPUTS_LABEL = "org.tkedistro.inputs"
PACKAGES = (
    "containerd", "runc", "containernetworking-plugins", "iptables", "conntrack", "ipset",
    "iproute2", "ethtool", "socat", "kmod", "mount", "procps", "ca-certificates", "util-linux",
    "ebtables", "curl", "docker-registry",
)
BINARIES = ("kubelet", "kubeadm", "kubectl")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
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


def _mirror() -> str:
    return os.environ.get("DEBIAN_MIRROR") or DEFAULT_MIRROR


def _digest(data: object) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ensure_base(engine: ImageEngine, work: Path) -> str:
    """The Debian layer's ref, debootstrapped and imported when its inputs changed."""
    digest = _digest({"suite": SUITE, "mirror": _mirror(), "packages": sorted(PACKAGES),
                      "iptables": "legacy"})
    labels = engine.labels(BASE_REF)
    if labels is not None and labels.get(INPUTS_LABEL) == digest:
        return BASE_REF
    if os.geteuid() != 0:
        raise ClusterError(f"making the node base image {BASE_REF} needs root (debootstrap)",
                           hint="run `sudo tkedistro cluster up RELEASE` once")
    rootfs, tar = work / "node-rootfs", work / "node-rootfs.tar"
    shutil.rmtree(rootfs, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    with console.step("cluster", f"debootstrap {SUITE} for the node image"):
        result = run(["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES),
                      SUITE, rootfs, _mirror()], check=False)
        (work / "debootstrap.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise BuildError(f"debootstrap {SUITE} from {_mirror()} failed "
                             f"(log: {work / 'debootstrap.log'})",
                             details=(result.stdout + result.stderr)[-3000:],
                             hint="check that the mirror answers (DEBIAN_MIRROR)")
        for tool in ("iptables", "ip6tables"):
            run(["chroot", rootfs, "update-alternatives", "--set", tool,
                 f"/usr/sbin/{tool}-legacy"])
        for cache in (rootfs / "var/cache/apt/archives", rootfs / "var/lib/apt/lists"):
            for item in cache.glob("*"):
                if item.is_file():
                    item.unlink()
        run(["tar", "--numeric-owner", "-C", rootfs, "-c", "-f", tar, "."])
    try:
        engine.import_rootfs(tar, BASE_REF, (f"ENV {PATH_ENV}", "ENV container=docker",
                                             f"LABEL {INPUTS_LABEL}={json.dumps(digest)}"))
    finally:
        tar.unlink(missing_ok=True)
        shutil.rmtree(rootfs, ignore_errors=True)
    return BASE_REF


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
    base = ensure_base(engine, work)
    base_labels = engine.labels(base) or {}
    files = node_files(config)
    digest = _digest({"base": base_labels.get(INPUTS_LABEL, ""),
                      "binaries": {b: _file_sha(bin_dir / b) for b in BINARIES},
                      "files": {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}})
    ref = node_ref(config.version)
    labels = engine.labels(ref)
    if labels is not None and labels.get(INPUTS_LABEL) == digest:
        return NodeImage(ref, labels.get("org.tkedistro.id", ""), True)
    context = work / "node-context"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    for b in BINARIES:
        shutil.copy2(bin_dir / b, context / b)
    for name, data in files.items():
        write_atomic(context / name, data)
        os.chmod(context / name, 0o755 if name == "tkedistro-node" else 0o644)
    write_atomic(context / "Dockerfile", DOCKERFILE.format(base=base).encode())
    with console.step("cluster", f"node image {ref}"):
        built = engine.build(context, ref, {INPUTS_LABEL: digest,
                                            "org.opencontainers.image.version": config.version})
    shutil.rmtree(context, ignore_errors=True)
    return NodeImage(ref, built.id, False)
