"""A real single-node cluster from ``_output/<release>/bin/linux/amd64`` on this host.

Every file lives under ``_cluster/<release>/``. ``LocalCluster`` is a context manager: on exit,
failure or Ctrl-C it stops every process and removes mounts, network namespaces and devices it
made (``teardown``). What a killed run left there (processes, mounts) is cleaned at the next
start.
"""

from __future__ import annotations

import json
import shutil
import signal
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tkedistro.conformance import hostcheck, network, pki, teardown
from tkedistro.conformance.processes import Supervisor
from tkedistro.conformance.spec import ClusterSpec
from tkedistro.core import console
from tkedistro.core.errors import ClusterError
from tkedistro.core.runner import run

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl")
SERVICE_CIDR = "10.0.0.0/24"
SERVICE_IP = "10.0.0.1"
DNS_IP = "10.0.0.10"
POD_CIDR = "10.88.0.0/16"
BRIDGE = "tkecni0"


def host_address() -> str:
    """A non-loopback IPv4 address of this machine (the apiserver must not advertise 127.x).

    Bridges of container engines (docker0, our own CNI bridge) are passed over.
    """
    found = json.loads(run(["ip", "-j", "-4", "addr", "show", "scope", "global"]).stdout or "[]")
    for link in found:
        name = str(link.get("ifname", ""))
        if name.startswith(("docker", "br-", "veth", "cni", BRIDGE)):
            continue
        for addr in link.get("addr_info", []):
            if addr.get("family") == "inet":
                return str(addr["local"])
    raise ClusterError("no non-loopback IPv4 address on this machine",
                       hint="the apiserver must advertise a non-loopback address")


@dataclass
class LocalCluster:
    spec: ClusterSpec
    supervisor: Supervisor = field(init=False)
    _netns_before: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor(self.spec.root / "logs")

    def __enter__(self) -> LocalCluster:
        hostcheck.require_host(self.spec.bin_dir, COMPONENTS)
        if len(str(self.spec.sock)) > 100:
            raise ClusterError(f"{self.spec.sock}: path too long for a unix socket (> 100 chars)",
                               hint="use a distro repo at a shorter path")
        self._netns_before = teardown.netns_names()
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        prepare_dir(self.spec)
        etcd_health = f"http://127.0.0.1:{self.spec.etcd_port}/health"
        with console.step("cluster", f"containerd, etcd, control plane, kubelet on "
                          f"{self.spec.address}"):
            network.allow_forwarding(BRIDGE)
            self.supervisor.start("containerd", ["containerd", "--config",
                                                 self.spec.root / "containerd" / "config.toml"])
            self._wait("containerd", lambda: self.spec.sock.exists(), 30)
            self.supervisor.start("etcd", etcd_argv(self.spec))
            self._wait("etcd", lambda: _http_ok(etcd_health), 60)
            self.supervisor.start("kube-apiserver", apiserver_argv(self.spec))
            self._wait("kube-apiserver", lambda: _api_ready(self.spec), 120)
            self.supervisor.start("kube-controller-manager", kcm_argv(self.spec))
            self.supervisor.start("kube-scheduler", scheduler_argv(self.spec))
            self.supervisor.start("kubelet", kubelet_argv(self.spec))
            if self.spec.with_proxy:
                self.supervisor.start("kube-proxy", proxy_argv(self.spec))
            self._wait("node Ready", lambda: node_ready(self.spec), 180)
            self._wait("default service account", lambda: _has_default_sa(self.spec), 60)

    def stop(self) -> list[str]:
        """Stop everything; returns what could not be cleaned (also warned about)."""
        with console.step("cluster_teardown"), _sigint_ignored():
            leftovers = teardown.teardown(self.spec, self.supervisor, self._netns_before,
                                          BRIDGE)
        for item in leftovers:
            console.warn(f"left behind: {item}")
        return leftovers

    def _wait(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.supervisor.check_alive()
            if ready():
                console.verbose(f"{what} ready")
                return
            time.sleep(1)
        logs = "\n".join(f"--- {s.name}: {s.log}\n{s.tail(8)}" for s in self.supervisor.services)
        raise ClusterError(f"{what} not ready after {timeout:.0f}s", details=logs)


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """A second Ctrl-C must not cut the teardown short (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def prepare_dir(spec: ClusterSpec) -> None:
    """A fresh cluster folder: certificates, kubeconfigs, containerd/CNI/kubelet configs."""
    if spec.root.exists():  # left by a run that was killed before its teardown
        teardown.stop_stale(spec)
        shutil.rmtree(spec.root)
    for sub in ("containerd", "cni/net.d", "cni/ipam", "kubelet", "etcd", "logs"):
        (spec.root / sub).mkdir(parents=True, exist_ok=True)
    (spec.root / "etcd").chmod(0o700)
    pki.make_pki(spec.pki, pki.cluster_certs(spec.node, spec.address, SERVICE_IP))
    for user in ("admin", "controller-manager", "scheduler", "kubelet-client", "kube-proxy"):
        write_kubeconfig(spec, user)
    _write(spec.root / "containerd" / "config.toml", containerd_config(spec, hostcheck_cni()))
    _write(spec.root / "cni" / "net.d" / "10-tke.conflist", cni_config(spec))
    _write(spec.root / "kubelet-config.json", json.dumps(kubelet_config(spec), indent=2))


def hostcheck_cni() -> Path:
    folder = hostcheck.find_cni_dir()
    if folder is None:
        raise ClusterError("CNI plugins not found",
                           hint="apt-get install -y containernetworking-plugins")
    return folder


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def kubeconfig_path(spec: ClusterSpec, user: str) -> Path:
    return spec.kubeconfig if user == "admin" else spec.root / f"{user}.kubeconfig"


def write_kubeconfig(spec: ClusterSpec, user: str) -> None:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "local",
        "clusters": [{"name": "local", "cluster": {
            "server": spec.server, "certificate-authority": str(spec.pki / "ca.crt")}}],
        "users": [{"name": user, "user": {
            "client-certificate": str(spec.pki / f"{user}.crt"),
            "client-key": str(spec.pki / f"{user}.key")}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
    }
    _write(kubeconfig_path(spec, user), json.dumps(config, indent=2))


def containerd_config(spec: ClusterSpec, cni_bin: Path) -> str:
    c = spec.root / "containerd"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{c / 'root'}"
state = "{c / 'state'}"
[grpc]
  address = "{spec.sock}"
[ttrpc]
  address = "{c / 'containerd.ttrpc.sock'}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{c / 'opt'}"
[{cri}]
  sandbox_image = "{spec.sandbox_image}"
  netns_mounts_under_state_dir = true
  # Pods ask for negative oom_score_adj (sandbox -998); without CAP_SYS_RESOURCE (nested
  # machines) runc then dies with "can't get final child's PID". Clamp to containerd's own.
  restrict_oom_score_adj = true
  enable_selinux = false
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.cni]
  bin_dir = "{cni_bin}"
  conf_dir = "{spec.root / 'cni' / 'net.d'}"
""" + _registry_config(spec)


def _registry_config(spec: ClusterSpec) -> str:
    """The local registry, reached over plain HTTP (it listens on loopback only)."""
    if spec.registry is None:
        return ""
    mirrors = 'plugins."io.containerd.grpc.v1.cri".registry.mirrors'
    return f"""[{mirrors}."{spec.registry}"]
  endpoint = ["http://{spec.registry}"]
"""


def cni_config(spec: ClusterSpec) -> str:
    bridge = {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
              "hairpinMode": True,
              "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR}]],
                       "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(spec.root / "cni/ipam")}}
    conf = {"cniVersion": "0.4.0", "name": "tke-conformance",
            "plugins": [bridge, {"type": "portmap", "capabilities": {"portMappings": True}}]}
    return json.dumps(conf, indent=2)


def kubelet_config(spec: ClusterSpec) -> dict[str, object]:
    return {
        "kind": "KubeletConfiguration", "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(spec.pki / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs", "clusterDNS": [DNS_IP], "clusterDomain": "cluster.local",
        "failSwapOn": False, "address": spec.address, "healthzBindAddress": "127.0.0.1",
        "tlsCertFile": str(spec.pki / "kubelet.crt"),
        "tlsPrivateKeyFile": str(spec.pki / "kubelet.key"),
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "2%",
                         "imagefs.available": "2%"},
        "imageGCHighThresholdPercent": 100, "resolvConf": "/etc/resolv.conf",
    }


def etcd_argv(spec: ClusterSpec) -> list[str]:
    url = f"http://127.0.0.1:{spec.etcd_port}"
    return ["etcd", "--data-dir", str(spec.root / "etcd"), "--listen-client-urls", url,
            "--advertise-client-urls", url,
            "--listen-peer-urls", f"http://127.0.0.1:{spec.etcd_port + 1}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{spec.etcd_port + 1}",
            "--initial-cluster", f"default=http://127.0.0.1:{spec.etcd_port + 1}",
            "--unsafe-no-fsync"]


def apiserver_argv(spec: ClusterSpec) -> list[str]:
    p = spec.pki
    return [str(spec.bin_dir / "kube-apiserver"),
            f"--advertise-address={spec.address}", f"--secure-port={spec.api_port}",
            f"--etcd-servers=http://127.0.0.1:{spec.etcd_port}", "--insecure-port=0",
            f"--service-cluster-ip-range={SERVICE_CIDR}", f"--client-ca-file={p / 'ca.crt'}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--authorization-mode=Node,RBAC", "--allow-privileged=true",
            "--enable-aggregator-routing=true",
            # the node name is not in DNS: reach the kubelet (logs, exec) by its address
            "--kubelet-preferred-address-types=InternalIP,Hostname,ExternalIP",
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
            f"--requestheader-client-ca-file={p / 'ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={p / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={p / 'front-proxy-client.key'}"]


def kcm_argv(spec: ClusterSpec) -> list[str]:
    p, kc = spec.pki, kubeconfig_path(spec, "controller-manager")
    return [str(spec.bin_dir / "kube-controller-manager"), f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            f"--service-account-private-key-file={p / 'sa.key'}", f"--root-ca-file={p / 'ca.crt'}",
            f"--cluster-signing-cert-file={p / 'ca.crt'}",
            f"--cluster-signing-key-file={p / 'ca.key'}",
            "--use-service-account-credentials=true", "--leader-elect=false",
            "--bind-address=127.0.0.1", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*,bootstrapsigner,tokencleaner"]


def scheduler_argv(spec: ClusterSpec) -> list[str]:
    kc = kubeconfig_path(spec, "scheduler")
    return [str(spec.bin_dir / "kube-scheduler"), f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--leader-elect=false", "--bind-address=127.0.0.1"]


def kubelet_argv(spec: ClusterSpec) -> list[str]:
    return [str(spec.bin_dir / "kubelet"), f"--config={spec.root / 'kubelet-config.json'}",
            f"--kubeconfig={kubeconfig_path(spec, 'kubelet-client')}",
            "--container-runtime=remote", f"--container-runtime-endpoint=unix://{spec.sock}",
            f"--root-dir={spec.root / 'kubelet'}", f"--hostname-override={spec.node}",
            f"--node-ip={spec.address}", f"--cert-dir={spec.root / 'kubelet' / 'pki'}",
            f"--pod-infra-container-image={spec.sandbox_image}", "--v=1"]


def proxy_argv(spec: ClusterSpec) -> list[str]:
    return [str(spec.bin_dir / "kube-proxy"),
            f"--kubeconfig={kubeconfig_path(spec, 'kube-proxy')}", "--proxy-mode=iptables",
            f"--cluster-cidr={POD_CIDR}", f"--hostname-override={spec.node}",
            "--conntrack-max-per-core=0", "--metrics-bind-address=127.0.0.1:10249",
            "--healthz-bind-address=127.0.0.1:10256"]


def kubectl(spec: ClusterSpec, *args: str) -> str:
    argv = [str(spec.bin_dir / "kubectl"), f"--kubeconfig={spec.kubeconfig}", *args]
    return run(argv, check=False).stdout


def node_ready(spec: ClusterSpec) -> bool:
    path = '{.status.conditions[?(@.type=="Ready")].status}'
    return kubectl(spec, "get", "node", spec.node, "-o", f"jsonpath={path}").strip() == "True"


def _has_default_sa(spec: ClusterSpec) -> bool:
    return bool(kubectl(spec, "get", "serviceaccount", "default", "-o", "name").strip())


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3, context=context) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


def _api_ready(spec: ClusterSpec) -> bool:
    ctx = ssl.create_default_context(cafile=str(spec.pki / "ca.crt"))
    ctx.load_cert_chain(str(spec.pki / "admin.crt"), str(spec.pki / "admin.key"))
    return _http_ok(f"{spec.server}/readyz", ctx)
