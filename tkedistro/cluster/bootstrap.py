"""Turning started node containers into a cluster: kubeadm init on the first node, kubeadm
join on the others, the pod network (a bridge per node and a route per other node), and
waiting until every node is Ready.

Every command runs inside a node (``NodeEngine.exec``); nothing here touches the host.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath

from tkedistro.cluster import config as cfg
from tkedistro.cluster.config import ClusterConfig
from tkedistro.core import console
from tkedistro.core.errors import ClusterError
from tkedistro.engine.protocols import NodeEngine, NodeInfo, RunResult

KUBEADM_FILE = PurePosixPath("/etc/tkedistro/kubeadm.yaml")
CNI_FILE = PurePosixPath("/etc/cni/net.d/10-tkedistro.conflist")
ADMIN = "/etc/kubernetes/admin.conf"
MASQ_CHAIN = "TKEDISTRO-MASQ"
_CA_HASH = re.compile(r"--discovery-token-ca-cert-hash\s+(sha256:[0-9a-f]{64})")


def _must(result: RunResult, node: str, what: str, hint: str = "") -> str:
    if not result.ok:
        raise ClusterError(f"{what} failed on node {node} (exit {result.exit_code})",
                           details=result.output[-4000:],
                           hint=hint or f"logs: docker exec {node} tail -50 /var/log/kubelet.log")
    return result.output


def wait_for(what: str, check: Callable[[], bool], timeout_s: float, every_s: float = 1.0,
             hint: str = "") -> None:
    """Until ``check()``; ``timeout_s`` is scaled by ``TKEDISTRO_CLUSTER_TIMEOUT_FACTOR``."""
    timeout_s = cfg.scaled(timeout_s)
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout_s:.0f}s waiting for {what}", hint=hint)
        time.sleep(every_s)


def kubectl(engine: NodeEngine, node: str, *args: str) -> RunResult:
    return engine.exec(node, ["kubectl", f"--kubeconfig={ADMIN}", *args])


def wait_node_services(engine: NodeEngine, nodes: Sequence[NodeInfo]) -> None:
    """containerd and the node's registry answer on every node."""
    def answers(node: str, argv: list[str]) -> Callable[[], bool]:
        return lambda: engine.exec(node, argv).ok

    for node in nodes:
        wait_for(f"containerd on {node.name}", answers(node.name, ["ctr", "version"]), 60,
                 hint=f"docker exec {node.name} cat /var/log/containerd.log")
        wait_for(f"the registry view on {node.name}",
                 answers(node.name, ["curl", "-sf", f"http://{cfg.NODE_REGISTRY}/v2/"]), 30,
                 hint=f"docker exec {node.name} cat /var/log/registry.log")


def init_control_plane(engine: NodeEngine, config: ClusterConfig, node: NodeInfo,
                       token: str) -> str:
    """kubeadm init; returns the CA public key hash the joining nodes verify."""
    engine.put_file(node.name, KUBEADM_FILE,
                    cfg.init_config(config, node.name, node.address, token).encode())
    with console.step("cluster", f"kubeadm init on {node.name} ({node.address})"):
        out = _must(engine.exec(node.name, [
            "kubeadm", "init", f"--config={KUBEADM_FILE}",
            "--skip-phases=preflight,addon/coredns", "--v=1"]), node.name, "kubeadm init")
    found = _CA_HASH.search(out)
    if not found:
        raise ClusterError("kubeadm init printed no CA certificate hash for the join command",
                           details=out[-2000:])
    return found.group(1)


def join_workers(engine: NodeEngine, workers: Sequence[NodeInfo], endpoint: str, token: str,
                 ca_hash: str) -> None:
    """kubeadm join on every worker, in parallel (each waits for its own TLS bootstrap)."""
    errors: list[BaseException] = []

    def join(node: NodeInfo) -> None:
        try:
            engine.put_file(node.name, KUBEADM_FILE, cfg.join_config(
                node.name, node.address, endpoint, token, ca_hash).encode())
            _must(engine.exec(node.name, ["kubeadm", "join", f"--config={KUBEADM_FILE}",
                                          "--skip-phases=preflight", "--v=1"]),
                  node.name, "kubeadm join")
        except BaseException as exc:  # reported below, in the caller's thread
            errors.append(exc)

    with console.step("cluster", f"kubeadm join of {len(workers)} node(s)"):
        threads = [threading.Thread(target=join, args=(n,)) for n in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


def pod_cidrs(engine: NodeEngine, control: str) -> dict[str, str]:
    out = _must(kubectl(engine, control, "get", "nodes", "-o", "json"), control, "kubectl get")
    return {i["metadata"]["name"]: i["spec"].get("podCIDR", "")
            for i in json.loads(out)["items"]}


def pod_network(engine: NodeEngine, control: str, nodes: Sequence[NodeInfo]) -> None:
    """A bridge with the node's pod CIDR on each node, a route to every other node's pods,
    and masquerading for pod traffic leaving the pod network (in the node's own iptables)."""
    wait_for("a pod CIDR for every node",
             lambda: all(pod_cidrs(engine, control).get(n.name) for n in nodes), 60,
             hint="kube-controller-manager allocates them (--allocate-node-cidrs)")
    cidrs = pod_cidrs(engine, control)
    for node in nodes:
        for other in nodes:
            if other.name != node.name:
                _must(engine.exec(node.name, ["ip", "route", "replace", cidrs[other.name],
                                              "via", other.address]), node.name, "ip route")
        _masquerade(engine, node.name)
        engine.put_file(node.name, CNI_FILE, cfg.cni_config(cidrs[node.name]).encode())


def _masquerade(engine: NodeEngine, node: str) -> None:
    if engine.exec(node, ["iptables", "-t", "nat", "-N", MASQ_CHAIN]).ok:
        for rule in (["-d", cfg.POD_SUBNET, "-j", "RETURN"], ["-j", "MASQUERADE"]):
            _must(engine.exec(node, ["iptables", "-t", "nat", "-A", MASQ_CHAIN, *rule]),
                  node, "iptables")
        _must(engine.exec(node, ["iptables", "-t", "nat", "-A", "POSTROUTING", "-s",
                                 cfg.POD_SUBNET, "-j", MASQ_CHAIN]), node, "iptables")


def ready_nodes(engine: NodeEngine, control: str) -> set[str]:
    result = kubectl(engine, control, "get", "nodes", "-o", "json")
    if not result.ok:
        return set()
    ready = set()
    for item in json.loads(result.output)["items"]:
        for cond in item.get("status", {}).get("conditions", []):
            if cond.get("type") == "Ready" and cond.get("status") == "True":
                ready.add(item["metadata"]["name"])
    return ready


def wait_ready(engine: NodeEngine, control: str, names: Sequence[str], timeout_s: float) -> None:
    with console.step("cluster", f"waiting for {len(names)} node(s) to be Ready"):
        wait_for(f"nodes Ready ({', '.join(names)})",
                 lambda: set(names) <= ready_nodes(engine, control), timeout_s, every_s=2,
                 hint=f"docker exec {control} kubectl --kubeconfig {ADMIN} describe nodes")


def apply(engine: NodeEngine, control: str, name: str, manifest: str) -> None:
    path = PurePosixPath("/etc/tkedistro/manifests") / f"{name}.yaml"
    engine.put_file(control, path, manifest.encode())
    _must(kubectl(engine, control, "apply", "-f", str(path)), control, f"kubectl apply {name}")


def wait_rollout(engine: NodeEngine, control: str, namespace: str, deployment: str,
                 timeout_s: int) -> None:
    _must(kubectl(engine, control, "-n", namespace, "rollout", "status",
                  f"deployment/{deployment}", f"--timeout={cfg.scaled(timeout_s):.0f}s"),
          control, f"rollout of {namespace}/{deployment}",
          hint=f"docker exec {control} kubectl --kubeconfig {ADMIN} -n {namespace} "
               f"describe deployment {deployment}")


def admin_kubeconfig(engine: NodeEngine, control: str, tries: int = 5) -> str:
    """The admin kubeconfig kubeadm wrote in the control-plane node. Read again when the
    engine hands back nothing for a ``cat`` that succeeded (a busy Docker engine can drop
    the output of a process that exits at once): an empty kubeconfig is never written."""
    for attempt in range(tries):
        text = _must(engine.exec(control, ["cat", ADMIN]), control, "reading admin.conf")
        if "apiVersion" in text:
            return text
        if attempt + 1 < tries:
            time.sleep(1)
    raise ClusterError(f"reading {ADMIN} in node {control} gave no kubeconfig "
                       f"({tries} tries)", hint=f"docker exec {control} cat {ADMIN}")
