"""Real tier: kubeadm installs the release air-gapped from its bundle alone.

In one fresh node container (the cluster's node image, started as ``cluster up`` starts a
node, named ``i27k-kubeadm-bundle-<hex>``) with NO registry (no ``registry.yml``: the node's
registry view does not start; containerd has no mirror and pause ``k8s.gcr.io/pause:3.2`` as
its sandbox, as on a plain kubeadm host), ``ctr -n k8s.io images import`` of
``bundle/kubeadm-images-linux-<arch>.tar``; then the node's own kubeadm lists nothing the
bundle lacks, ``kubeadm init`` (default ``imageRepository``; skipping only what ``cluster up``
skips: preflight, which fails inside a container on this host, and ``addon/coredns``, whose
CoreDNS configuration the bundle's DNS responder does not read) brings the node Ready and the
control plane Running, the bundle's DNS image (the tkedistro-dns responder under kubeadm's
CoreDNS name) rolls out with the responder's own manifests, and containerd never pulled an
image.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path, PurePosixPath

import pytest

from tests.real_k8s.conftest import cluster_skip_reason
from tkedistro.artifacts.kubeadmbundle import bundle_name
from tkedistro.cluster import bootstrap
from tkedistro.cluster import config as cfg
from tkedistro.cluster.cgroups import detect_layout
from tkedistro.cluster.dns.manifests import NAME as DNS_NAME
from tkedistro.cluster.dns.manifests import dns_manifests
from tkedistro.cluster.lifecycle import node_spec, remove_cluster
from tkedistro.cluster.nodeimage import ensure_node_image, node_files
from tkedistro.core.host import host_platform
from tkedistro.core.render import yaml_documents
from tkedistro.core.workspace import Workspace, output_bin
from tkedistro.engine.engines import docker_engines
from tkedistro.engine.protocols import Mount, NodeEngine, NodeInfo
from tkedistro.images.kubeadm import kubeadm_images
from tkedistro.model.manifest import load_release

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(1800)]

BUNDLE = PurePosixPath("/bundle")
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                 "kube-proxy")


def offline_containerd(config: cfg.ClusterConfig) -> str:
    """The node's containerd configuration without the registry mirror, sandbox pause:3.2."""
    text = node_files(config)["containerd.toml"].decode()
    lines = [line for line in text.splitlines()
             if "registry.mirrors" not in line and "endpoint = " not in line]
    offline = "\n".join(lines).replace(config.sandbox_image, "k8s.gcr.io/pause:3.2") + "\n"
    assert "127.0.0.1:5000" not in offline and 'sandbox_image = "k8s.gcr.io/pause:3.2"' in offline
    return offline


def kubeadm_config(config: cfg.ClusterConfig, node: NodeInfo) -> str:
    """The cluster's kubeadm configuration less its registry and etcd tag: kubeadm's defaults."""
    from ruamel.yaml import YAML

    docs = list(YAML(typ="safe").load_all(StringIO(
        cfg.init_config(config, node.name, node.address, "abcdef.0123456789abcdef"))))
    for doc in docs:
        if doc["kind"] == "ClusterConfiguration":
            del doc["imageRepository"], doc["etcd"]
    return yaml_documents(*docs)


def sh(engine: NodeEngine, node: str, *argv: str) -> str:
    result = engine.exec(node, list(argv))
    assert result.ok, f"{' '.join(argv)} in {node}:\n{result.output[-4000:]}"
    return result.output


@pytest.fixture
def node(built_release: Workspace, tmp_path: Path) -> Iterator[tuple[NodeEngine, NodeInfo,
                                                                      cfg.ClusterConfig]]:
    if reason := cluster_skip_reason():
        pytest.skip(reason)
    ws = built_release
    manifest = load_release(ws, "1.20")
    engines = docker_engines()
    config = cfg.ClusterConfig("1.20", f"i27k-kubeadm-bundle-{secrets.token_hex(3)}", 1,
                               manifest.distro_version, tmp_path / "cluster")
    layout = detect_layout(engines.nodes)
    image = ensure_node_image(engines.images, config, ws.output_dir("1.20") /
                              output_bin(host_platform()), ws.cache / "cluster" / "1.20")
    (tmp_path / "containerd.toml").write_text(offline_containerd(config))
    (tmp_path / "etc").mkdir()  # the node's /etc/tkedistro: no registry.yml in it
    (tmp_path / "empty").mkdir()
    spec = node_spec(config, layout, 0, image.ref, tmp_path / "empty")
    spec = dataclasses.replace(spec, mounts=(
        Mount(tmp_path / "containerd.toml", PurePosixPath("/etc/containerd/config.toml"), True),
        Mount(tmp_path / "etc", PurePosixPath("/etc/tkedistro")),
        Mount(ws.output_dir("1.20") / "bundle", BUNDLE, True)))
    try:
        engines.nodes.create_network(config.network, config.labels)
        started = engines.nodes.start_node(spec)
        yield engines.nodes, started, config
    finally:
        remove_cluster(engines.nodes, config, layout)


def test_kubeadm_init_from_the_bundle_alone_comes_up_ready(
        node: tuple[NodeEngine, NodeInfo, cfg.ClusterConfig]) -> None:
    engine, info, config = node
    name = info.name
    bootstrap.wait_for("containerd", lambda: engine.exec(name, ["ctr", "version"]).ok, 60)
    assert not engine.exec(name, ["curl", "-sf", "http://127.0.0.1:5000/v2/"]).ok  # no registry
    start = time.monotonic()
    sh(engine, name, "ctr", "-n", "k8s.io", "images", "import",
       str(BUNDLE / bundle_name(host_platform()).split("/")[1]))
    imported = set(sh(engine, name, "ctr", "-n", "k8s.io", "images", "ls", "-q").split())
    listed = sh(engine, name, "sh", "-c", "kubeadm config images list --kubernetes-version="
                f"{config.version} 2>/dev/null").split()  # without the kubelet's warnings
    refs = {i.role: i.ref for i in kubeadm_images(config.version)}
    assert listed == list(refs.values())  # what the bundle derives
    assert set(listed) <= imported, sorted(set(listed) - imported)
    loaded = time.monotonic()
    engine.put_file(name, bootstrap.KUBEADM_FILE, kubeadm_config(config, info).encode())
    sh(engine, name, "kubeadm", "init", f"--config={bootstrap.KUBEADM_FILE}",
       "--skip-phases=preflight,addon/coredns", "--v=1")
    bootstrap.pod_network(engine, name, [info])
    bootstrap.wait_ready(engine, name, [name], 300)
    bootstrap.wait_for("the control plane Running", lambda: running(engine, name), 300, 2)
    ready = time.monotonic()
    # the bundle's DNS name holds the responder: it runs with its own manifests
    bootstrap.apply(engine, name, "cluster-dns", dns_manifests(refs["coredns"]))
    bootstrap.wait_rollout(engine, name, "kube-system", DNS_NAME, 180)
    assert set(sh(engine, name, "ctr", "-n", "k8s.io", "images", "ls", "-q").split()) == imported
    log = sh(engine, name, "cat", "/var/log/containerd.log")
    assert "PullImage" not in log, [line for line in log.splitlines() if "PullImage" in line]
    print(f"import {loaded - start:.0f}s, kubeadm init to Ready and Running "
          f"{ready - loaded:.0f}s")


def running(engine: NodeEngine, node: str) -> bool:
    """Every control-plane pod of kube-system is Running."""
    result = bootstrap.kubectl(engine, node, "-n", "kube-system", "get", "pods", "-o", "json")
    if not result.ok:
        return False
    phases = {pod["metadata"]["name"]: pod["status"].get("phase")
              for pod in json.loads(result.output)["items"]}
    return all(any(n.startswith(c) and p == "Running" for n, p in phases.items())
               for c in CONTROL_PLANE)


def test_the_bundles_are_checksummed_and_the_server_tarballs_carry_the_images(
        built_release: Workspace) -> None:
    import tarfile

    out = built_release.output_dir("1.20")
    listed = (out / "SHA256SUMS").read_text()
    version = load_release(built_release, "1.20").distro_version
    for platform in ("linux/amd64", "linux/arm64"):
        assert f"  {bundle_name(platform)}\n" in listed
        tag = platform.replace("/", "-")
        with tarfile.open(out / f"release/kubernetes-server-{tag}.tar.gz") as tar:
            for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler",
                              "kube-proxy"):
                assert tar.getmember(f"kubernetes/server/bin/{component}.tar").size > 0
                handle = tar.extractfile(f"kubernetes/server/bin/{component}.docker_tag")
                assert handle is not None
                assert handle.read().decode() == version.replace("+", "_") + "\n"
    assert "  bundle/bundle.json\n" in listed
