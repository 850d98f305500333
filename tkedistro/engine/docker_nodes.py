"""``NodeEngine`` on the Docker engine (docker SDK): node containers, their network, volumes.

With ``engine/docker.py`` and ``engine/docker_images.py`` one of the only modules importing
``docker``. A node is not ``--privileged`` (that asks for ``CAP_SYS_RESOURCE``, which some
VMs cannot grant, and for every device and capability besides). It gets the capabilities
listed in ``CAPABILITIES``, each with the reason it is kept; the devices docker gives every
container plus ``/dev/kmsg`` read-only; ``/proc`` masked as docker masks it (``/proc/kcore``,
``/proc/keys``, ...) plus ``/proc/sysrq-trigger``, and the kernel-wide sysctls read-only
(only the node's own network namespace's ``/proc/sys/net`` is writable). Its seccomp and
AppArmor profiles are unconfined (containerd and runc inside make namespaces and mounts). On
cgroup v1 it shares the host's cgroup namespace and the host cgroup tree is mounted read-write
(the kubelet puts the pods under the node's own cgroup, by its host path); on cgroup v2 it
gets a cgroup namespace of its own and no host cgroup mount (``NodeSpec.private_cgroupns``,
``host_cgroup_tree``). Its network, PID and mount namespaces stay its own.

What that leaves a node able to do to the host is in the README's Security model: root in
a node (a privileged pod, anyone with the admin kubeconfig) is root on the host, through
``CAP_SYS_ADMIN`` in the host's user namespace and the host cgroup tree. The local cluster
therefore keeps other local users out of the nodes (``engine/registry.py``, the 0600
kubeconfig) rather than relying on the node being a sandbox.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from tkedistro.core.errors import ClusterError
from tkedistro.engine.docker import connect
from tkedistro.engine.protocols import EngineCgroups, NetworkInfo, NodeInfo, NodeSpec, RunResult

# Each capability a node keeps, and why; every other one is dropped (SYS_MODULE, SYS_RAWIO,
# SYS_TIME, SYS_BOOT, DAC_READ_SEARCH, MAC_ADMIN, AUDIT_CONTROL, IPC_LOCK, SYS_NICE, ...).
# runc in the node can give a pod only what the node holds, so the first group is exactly
# the set containerd's CRI gives every pod container by default.
KEPT_CAPABILITIES: tuple[tuple[str, str], ...] = (
    ("AUDIT_WRITE", "pods' default set (login tools write the audit log)"),
    ("CHOWN", "pods' default set; containerd unpacks image layers with their owners"),
    ("DAC_OVERRIDE", "pods' default set; root in the node reads and writes its own files"),
    ("FOWNER", "pods' default set; layer unpacking sets modes and times of any file"),
    ("FSETID", "pods' default set; layer unpacking keeps setuid/setgid bits"),
    ("KILL", "pods' default set; the kubelet and containerd stop pod processes"),
    ("MKNOD", "pods' default set; runc makes /dev/null, /dev/zero, ... in every pod "
              "(opening a device is still limited by the node's device cgroup)"),
    ("NET_BIND_SERVICE", "pods' default set (servers on ports below 1024)"),
    ("NET_RAW", "pods' default set (ping); iptables and conntrack in the node"),
    ("SETFCAP", "pods' default set; layer unpacking keeps file capabilities"),
    ("SETGID", "pods' default set; runc starts pod processes as their group"),
    ("SETPCAP", "pods' default set; runc drops capabilities for each pod process"),
    ("SETUID", "pods' default set; runc starts pod processes as their user"),
    ("SYS_CHROOT", "pods' default set; runc's pivot_root into each pod's root"),
    ("SYS_ADMIN", "containerd and runc: mounts (overlayfs snapshots, each pod's /proc, /sys, "
                  "volumes), namespaces, shared mount propagation; on cgroup v2 the entrypoint "
                  "remounts the node's own cgroup tree read-write, and runc loads each pod's "
                  "device-access eBPF program"),
    ("NET_ADMIN", "the pod network: the CNI bridge, veths and routes, kube-proxy's iptables "
                  "rules, all in the node's own network namespace; on cgroup v2 runc attaches "
                  "each pod's device eBPF program to the pod's cgroup"),
    ("SYS_PTRACE", "runc joins a running pod's namespaces (kubectl exec, exec probes), which "
                   "takes ptrace access to processes of other users"),
    ("SYSLOG", "the kubelet's OOM watcher reads /dev/kmsg, which needs it when the host sets "
               "kernel.dmesg_restrict=1"),
)
CAPABILITIES = tuple(name for name, _ in KEPT_CAPABILITIES)
# docker's own masks, plus the SysRq trigger (docker only makes it read-only)
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/proc/sysrq-trigger", "/sys/firmware",
)
# the kernel-wide (not namespaced) sysctls read-only; /proc/sys/net is the node's network
# namespace's own and stays writable (kube-proxy, the CNI bridge, the entrypoint's
# ip_forward). The kubelet's six kernel settings are shown to it by the node's entrypoint.
READONLY_PATHS = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys/kernel", "/proc/sys/vm", "/proc/sys/fs",
    "/proc/sys/dev", "/proc/sys/debug", "/proc/sys/abi", "/proc/sys/user",
)
# beyond docker's defaults (null, zero, full, random, urandom, tty, console, ptmx, pts, tun,
# and mknod of any node without opening it): the kernel log, read-only, for the kubelet
DEVICES = ("/dev/kmsg:/dev/kmsg:r",)
SECURITY_OPT = ("seccomp=unconfined", "apparmor=unconfined")


def _filters(labels: Mapping[str, str]) -> dict[str, list[str]]:
    return {"label": [f"{k}={v}" for k, v in labels.items()]}


def _host_ports(attrs: Mapping[str, Any]) -> dict[int, int]:
    """Which host port of 127.0.0.1 each published TCP port of a container is bound to."""
    bound = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    ports = {}
    for key, bindings in bound.items():
        port, _, proto = str(key).partition("/")
        for binding in bindings or []:
            if proto == "tcp" and binding.get("HostIp") == "127.0.0.1" and binding.get("HostPort"):
                ports[int(port)] = int(binding["HostPort"])
    return ports


class DockerNodes:
    """``NodeEngine`` for the local (or ``DOCKER_HOST``) Docker engine."""

    name = "docker"

    def __init__(self) -> None:
        self._client: Any = None

    @property
    def _docker(self) -> Any:
        if self._client is None:
            self._client = connect()
        return self._client

    def check_available(self) -> None:
        self._docker.ping()

    def cgroups(self) -> EngineCgroups:
        info = self._docker.info()
        return EngineCgroups(str(info.get("CgroupVersion") or ""),
                             str(info.get("CgroupDriver") or ""))

    def create_network(self, name: str, labels: Mapping[str, str]) -> NetworkInfo:
        import docker.errors  # type: ignore[import-untyped]

        try:
            net = self._docker.networks.create(name, driver="bridge", labels=dict(labels),
                                               check_duplicate=True)
        except docker.errors.APIError as exc:
            raise ClusterError(f"could not create the docker network {name}: "
                               f"{exc.explanation or exc}") from exc
        net.reload()
        config = (net.attrs.get("IPAM", {}).get("Config") or [{}])[0]
        return NetworkInfo(name, str(config.get("Subnet", "")), str(config.get("Gateway", "")))

    def networks(self, labels: Mapping[str, str]) -> list[str]:
        return sorted(n.name for n in self._docker.networks.list(filters=_filters(labels)))

    def remove_network(self, name: str) -> None:
        import docker.errors

        try:
            self._docker.networks.get(name).remove()
        except docker.errors.NotFound:
            pass

    def start_node(self, spec: NodeSpec) -> NodeInfo:
        import docker.errors

        binds = {"/lib/modules": {"bind": "/lib/modules", "mode": "ro"},
                 spec.volume: {"bind": "/var", "mode": "rw"}}
        if spec.host_cgroup_tree:
            binds["/sys/fs/cgroup"] = {"bind": "/sys/fs/cgroup", "mode": "rw"}
        for m in spec.mounts:
            binds[str(m.source)] = {"bind": str(m.target), "mode": "ro" if m.read_only else "rw"}
        api = self._docker.api
        host = api.create_host_config(
            cap_drop=["ALL"], cap_add=list(CAPABILITIES), security_opt=list(SECURITY_OPT),
            devices=list(DEVICES), cgroup_parent=spec.cgroup_parent or None,
            cgroupns="private" if spec.private_cgroupns else None,  # None: v1's host default
            tmpfs={"/run": "rw,exec", "/tmp": "rw,exec"}, binds=binds, init=True,
            sysctls={"net.ipv4.ip_forward": "1"}, network_mode=spec.network,
            port_bindings={port: ("127.0.0.1",) for port in spec.published_ports})
        host["MaskedPaths"], host["ReadonlyPaths"] = list(MASKED_PATHS), list(READONLY_PATHS)
        try:
            self._docker.volumes.create(spec.volume, labels=dict(spec.labels))
            created = api.create_container(
                spec.image, command=list(spec.command) or None, name=spec.name,
                hostname=spec.name, labels=dict(spec.labels),
                ports=list(spec.published_ports) or None,
                environment=dict(spec.env), host_config=host, detach=True,
                networking_config=api.create_networking_config(
                    {spec.network: api.create_endpoint_config()}))
            api.start(created["Id"])
            container = self._docker.containers.get(created["Id"])
        except docker.errors.APIError as exc:
            raise ClusterError(f"could not start the node container {spec.name}: "
                               f"{exc.explanation or exc}",
                               hint="see `docker logs " + spec.name + "`") from exc
        return self._info(container)

    def _info(self, container: Any) -> NodeInfo:
        container.reload()
        nets = container.attrs.get("NetworkSettings", {}).get("Networks", {}) or {}
        address = next((str(n.get("IPAddress") or "") for n in nets.values()), "")
        return NodeInfo(container.name, container.id, container.status == "running",
                        dict(container.labels), address, _host_ports(container.attrs))

    def nodes(self, labels: Mapping[str, str]) -> list[NodeInfo]:
        found = self._docker.containers.list(all=True, filters=_filters(labels))
        return sorted((self._info(c) for c in found), key=lambda n: n.name)

    def remove_node(self, name: str) -> None:
        import docker.errors

        for attempt in range(3):
            try:
                self._docker.containers.get(name).remove(force=True)
                return
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:  # "removal already in progress"
                if attempt == 2:
                    raise ClusterError(f"could not remove node container {name}: "
                                       f"{exc.explanation or exc}") from exc
                time.sleep(2)

    def volumes(self, labels: Mapping[str, str]) -> list[str]:
        return sorted(v.name for v in self._docker.volumes.list(filters=_filters(labels)))

    def remove_volume(self, name: str) -> None:
        import docker.errors

        try:
            self._docker.volumes.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass

    def exec(self, name: str, argv: Sequence[str]) -> RunResult:
        import docker.errors

        try:
            code, output = self._docker.containers.get(name).exec_run(list(argv), demux=False)
        except docker.errors.APIError as exc:  # gone, or not running
            raise ClusterError(f"cannot run {argv[0]} in node {name}: "
                               f"{exc.explanation or exc}",
                               hint="see `tkedistro cluster status RELEASE`") from exc
        text = output.decode("utf-8", "replace") if output else ""
        return RunResult(tuple(argv), int(code if code is not None else -1), text)

    def put_file(self, name: str, path: PurePosixPath, data: bytes, mode: int = 0o644) -> None:
        """Write ``path`` (and any missing parent folders) in the node, as root."""
        buf = io.BytesIO()
        now = int(time.time())
        with tarfile.TarFile(fileobj=buf, mode="w") as tar:
            for parent in reversed(path.relative_to("/").parents[:-1]):
                folder = tarfile.TarInfo(str(parent))
                folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, now
                tar.addfile(folder)
            info = tarfile.TarInfo(str(path.relative_to("/")))
            info.size, info.mode, info.mtime = len(data), mode, now
            tar.addfile(info, io.BytesIO(data))
        if not self._docker.containers.get(name).put_archive("/", buf.getvalue()):
            raise ClusterError(f"could not write {path} into node {name}")

    def _container(self, name: str) -> Any:
        import docker.errors

        try:
            return self._docker.containers.get(name)
        except docker.errors.NotFound:
            raise ClusterError(f"no node container {name}",
                               hint="see `tkedistro cluster status RELEASE`") from None

    def inspect(self, name: str) -> Mapping[str, object]:
        return dict(self._container(name).attrs)

    def logs(self, name: str) -> str:
        import docker.errors

        try:
            output = self._container(name).logs(stdout=True, stderr=True, timestamps=True)
        except docker.errors.APIError as exc:
            raise ClusterError(f"cannot read the output of node {name}: "
                               f"{exc.explanation or exc}") from exc
        return bytes(output).decode("utf-8", "replace")

    def copy_out(self, name: str, path: PurePosixPath) -> Iterator[bytes]:
        import docker.errors

        container = self._container(name)
        try:
            stream, _ = container.get_archive(str(path))
        except docker.errors.NotFound:
            raise ClusterError(f"no {path} in node {name}") from None
        except docker.errors.APIError as exc:
            raise ClusterError(f"cannot copy {path} out of node {name}: "
                               f"{exc.explanation or exc}") from exc
        try:
            yield from stream
        except docker.errors.APIError as exc:
            raise ClusterError(f"copying {path} out of node {name} broke off: "
                               f"{exc.explanation or exc}") from exc
