"""``NodeEngine`` on the Docker engine (docker SDK): node containers, their network, volumes.

With ``engine/docker.py`` and ``engine/docker_images.py`` one of the only modules importing
``docker``. A node is not ``--privileged`` (that asks for ``CAP_SYS_RESOURCE``, which some
VMs cannot grant): it gets every other capability, unconfined seccomp/AppArmor/system paths,
every device and the host cgroup tree read-write, as kind's nodes need, while its network,
PID and mount namespaces stay its own.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from tkedistro.core.errors import ClusterError
from tkedistro.engine.docker import connect
from tkedistro.engine.protocols import NetworkInfo, NodeInfo, NodeSpec, RunResult

# The 37 capabilities of Linux 5.8's set but SYS_RESOURCE (Docker 20.10 knows no later ones:
# BPF, PERFMON and CHECKPOINT_RESTORE are refused by name; listing beats "ALL" minus one,
# which would also ask for any capability a newer engine adds).
CAPABILITIES = (
    "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "CHOWN", "DAC_OVERRIDE",
    "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
    "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
    "NET_BROADCAST", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYSLOG", "SYS_ADMIN",
    "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO",
    "SYS_TIME", "SYS_TTY_CONFIG", "WAKE_ALARM",
)
SECURITY_OPT = ("seccomp=unconfined", "apparmor=unconfined")


def _filters(labels: Mapping[str, str]) -> dict[str, list[str]]:
    return {"label": [f"{k}={v}" for k, v in labels.items()]}


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

        binds = {"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                 "/lib/modules": {"bind": "/lib/modules", "mode": "ro"},
                 spec.volume: {"bind": "/var", "mode": "rw"}}
        for m in spec.mounts:
            binds[str(m.source)] = {"bind": str(m.target), "mode": "ro" if m.read_only else "rw"}
        api = self._docker.api
        host = api.create_host_config(
            cap_add=list(CAPABILITIES), security_opt=list(SECURITY_OPT),
            device_cgroup_rules=["a *:* rwm"], cgroup_parent=spec.cgroup_parent,
            tmpfs={"/run": "rw,exec", "/tmp": "rw,exec"}, binds=binds, init=True,
            sysctls={"net.ipv4.ip_forward": "1"}, network_mode=spec.network)
        # docker's ``--security-opt systempaths=unconfined``: /proc/sys writable (the kubelet
        # and kube-proxy set sysctls of the node), nothing masked
        host["MaskedPaths"], host["ReadonlyPaths"] = [], []
        try:
            self._docker.volumes.create(spec.volume, labels=dict(spec.labels))
            created = api.create_container(
                spec.image, command=list(spec.command) or None, name=spec.name,
                hostname=spec.name, labels=dict(spec.labels),
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
                        dict(container.labels), address)

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
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for parent in reversed(path.relative_to("/").parents[:-1]):
                folder = tarfile.TarInfo(str(parent))
                folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, now
                tar.addfile(folder)
            info = tarfile.TarInfo(str(path.relative_to("/")))
            info.size, info.mode, info.mtime = len(data), mode, now
            tar.addfile(info, io.BytesIO(data))
        if not self._docker.containers.get(name).put_archive("/", buf.getvalue()):
            raise ClusterError(f"could not write {path} into node {name}")
