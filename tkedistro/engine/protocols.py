"""The container backend protocol: check availability, inspect an image, run argv in a session.

Nothing here knows about Docker. ``engine/docker.py`` implements the protocol with the docker
SDK; podman, a remote host or a Kubernetes Job would each be one more module like it.
Host paths are ``Path``; paths inside the container are ``PurePosixPath``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

KEEP_CONTAINER_ENV = "TKEDISTRO_KEEP_CONTAINER"

OnLine = Callable[[str], None]  # gets each output line (no newline) as it arrives


@dataclass(frozen=True)
class Mount:
    """A host folder bind-mounted at ``target`` inside the container."""

    source: Path
    target: PurePosixPath
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """Everything that decides how a build container runs (frozen, so it can be logged)."""

    image: str
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    user: str = ""  # "uid:gid"; empty means the image's default
    network: str = "none"
    cpus: float | None = None
    memory: str | None = None  # docker syntax: "8g", "512m"
    workdir: PurePosixPath = PurePosixPath("/")

    def describe(self) -> str:
        limits = f"cpus={self.cpus or 'all'} memory={self.memory or 'unlimited'}"
        mounts = ", ".join(
            f"{m.source}:{m.target}{':ro' if m.read_only else ''}" for m in self.mounts
        )
        return (
            f"image={self.image} user={self.user or 'default'} network={self.network} "
            f"{limits} workdir={self.workdir} mounts=[{mounts}]"
        )


@dataclass(frozen=True)
class ImageInfo:
    """What the backend knows about a local image."""

    name: str
    id: str


@dataclass(frozen=True)
class RunResult:
    """The exit code of one command and its output (all of it, or the tail when logged)."""

    argv: tuple[str, ...]
    exit_code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Session(Protocol):
    """A running container; commands run in it one after another."""

    @property
    def container_id(self) -> str: ...

    def run(
        self,
        argv: Sequence[str],
        *,
        log: Path | None = None,
        on_line: OnLine | None = None,
    ) -> RunResult:
        """Run ``argv`` in the spec's workdir; with ``log`` the output is appended there
        and only its tail kept; ``on_line`` is called with each line of output (without its
        newline) as it arrives, the last one even when it has no newline."""
        ...


class LineFeed:
    """Cuts a stream of text chunks into lines for an ``OnLine`` callback (a line may
    span chunks); ``close`` hands on what is left after the last newline."""

    def __init__(self, on_line: OnLine) -> None:
        self._on_line = on_line
        self._partial = ""

    def feed(self, text: str) -> None:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._on_line(line.removesuffix("\r"))

    def close(self) -> None:
        if self._partial:
            self._on_line(self._partial.removesuffix("\r"))
            self._partial = ""


class ContainerBackend(Protocol):
    name: str

    def check_available(self) -> None:
        """Raise ``BackendUnavailableError`` (saying how to fix it) when no engine answers."""
        ...

    def image_info(self, image: str) -> ImageInfo | None:
        """The local image, or None when it does not exist."""
        ...

    def session(self, spec: ContainerSpec) -> AbstractContextManager[Session]:
        """Start a container for ``spec``; it is stopped and removed on exit
        (kept after a failure when ``TKEDISTRO_KEEP_CONTAINER=1``)."""
        ...


@dataclass(frozen=True)
class BuiltImage:
    """A local image the engine built, imported or pulled."""

    ref: str  # name:tag as given
    id: str  # the engine's image id (sha256:...)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryLogin:
    """A registry user and password (the local registry's, made for one run); the password
    is left out of ``repr`` so it never reaches a log or traceback."""

    username: str
    password: str = field(repr=False)


class ImageEngine(Protocol):
    """Local image operations (build, import, tag, push, pull) on a container engine.

    ``engine/docker.py`` implements it with the Docker SDK. Registries on 127.0.0.0/8 are
    plain HTTP (the engine treats loopback registries as insecure by default).
    """

    def labels(self, ref: str) -> Mapping[str, str] | None:
        """The labels of the local image ``ref``; None when there is no such image."""
        ...

    def build(self, context: Path, tag: str, labels: Mapping[str, str],
              dockerfile: str = "Dockerfile") -> BuiltImage:
        """``docker build`` of the folder ``context`` (no network, ``--rm``), tagged ``tag``
        with ``labels``; raises ``BuildError`` carrying the build log's tail on failure."""
        ...

    def import_rootfs(self, rootfs_tar: Path, tag: str, changes: Sequence[str] = (),
                      platform: str = "") -> BuiltImage:
        """``docker import`` of a root filesystem tar (``changes``: Dockerfile lines such as
        ``ENV PATH=...`` or ``LABEL k=v``); ``platform`` (``linux/arm64``) is written into the
        image's config (os/architecture/variant), else it is the engine's own."""
        ...

    def tag(self, ref: str, new_ref: str) -> None: ...

    def push(self, ref: str, login: RegistryLogin | None = None) -> str:
        """Push ``ref`` (whose name holds the registry), as ``login`` when given (else with
        the engine's own credentials); returns the manifest digest ``sha256:...`` the
        registry answered."""
        ...

    def pull(self, ref: str, login: RegistryLogin | None = None) -> BuiltImage:
        """Pull ``ref`` (``name:tag`` or ``name@sha256:...``), as ``login`` when given."""
        ...

    def remove(self, ref: str) -> None:
        """Untag/remove the local image ``ref``; no error when it does not exist."""
        ...


@dataclass(frozen=True)
class NodeSpec:
    """One long-running cluster node container (a kind-style node: its own containerd,
    kubelet and iptables, isolated from the host's by its namespaces and cgroup parent)."""

    name: str
    image: str
    network: str
    labels: Mapping[str, str]
    cgroup_parent: str  # "/<cluster>": everything the node makes nests under it; "": none
    volume: str  # a named volume for /var (containerd's overlayfs cannot live on overlayfs)
    mounts: tuple[Mount, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ()  # arguments for the image's entrypoint; () keeps its own
    # TCP ports of the node published on the host's 127.0.0.1, each on a free host port the
    # engine picks (the control plane's 6443, so a kubeconfig works from the host)
    published_ports: tuple[int, ...] = ()
    # cgroup v1: the host's cgroup namespace and /sys/fs/cgroup read-write (the kubelet puts
    # pods under the node's cgroup by its host path); v2: the node's own namespace, no bind
    private_cgroupns: bool = False
    host_cgroup_tree: bool = True


@dataclass(frozen=True)
class EngineCgroups:
    """What the engine says of its cgroups: version "1"/"2" ("" unknown), driver
    "cgroupfs"/"systemd"/... ("" unknown)."""

    version: str
    driver: str


@dataclass(frozen=True)
class NodeInfo:
    """A node container the engine knows, found by its labels."""

    name: str
    id: str
    running: bool
    labels: Mapping[str, str]
    address: str  # its IPv4 address on the cluster network ("" when stopped)
    # node TCP port -> the host port it is published on at 127.0.0.1 (``NodeSpec``)
    host_ports: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    subnet: str
    gateway: str


class NodeEngine(Protocol):
    """Node containers, their network and volumes on a container engine.

    A node is not ``--privileged``: it keeps only the capabilities a node uses (the Docker
    adapter lists each with why), the engine's default devices plus the kernel log
    read-only, ``/proc`` masked and the kernel-wide sysctls read-only, unconfined
    seccomp/AppArmor and, on cgroup v1 only, the host's cgroup tree read-write (on v2 its
    own cgroup namespace), but never the host's network, PID or mount namespace. Everything
    made is labelled, so a killed run's leftovers are found again.
    """

    def check_available(self) -> None: ...

    def cgroups(self) -> EngineCgroups:
        """The engine's cgroup version and driver (``docker info``)."""
        ...

    def create_network(self, name: str, labels: Mapping[str, str]) -> NetworkInfo: ...

    def networks(self, labels: Mapping[str, str]) -> list[str]: ...

    def remove_network(self, name: str) -> None: ...

    def start_node(self, spec: NodeSpec) -> NodeInfo: ...

    def nodes(self, labels: Mapping[str, str]) -> list[NodeInfo]: ...

    def remove_node(self, name: str) -> None:
        """Force-remove the container (no error when it is gone)."""
        ...

    def volumes(self, labels: Mapping[str, str]) -> list[str]: ...

    def remove_volume(self, name: str) -> None: ...

    def exec(self, name: str, argv: Sequence[str]) -> RunResult:
        """Run argv in the node; never raises on a non-zero exit (see ``RunResult.ok``)."""
        ...

    def put_file(self, name: str, path: PurePosixPath, data: bytes, mode: int = 0o644) -> None:
        ...

    def inspect(self, name: str) -> Mapping[str, object]:
        """The engine's whole record of the node container (``docker inspect``), running or
        stopped; ``ClusterError`` when there is no such container."""
        ...

    def logs(self, name: str) -> str:
        """The node container's own output (its entrypoint's stdout and stderr, each line
        timestamped), running or stopped; ``ClusterError`` when there is no such container."""
        ...

    def copy_out(self, name: str, path: PurePosixPath) -> Iterator[bytes]:
        """A tar stream of ``path`` (a file or a folder) in the node, in chunks; works on a
        stopped node. ``ClusterError`` when the node or the path is not there."""
        ...


@dataclass(frozen=True)
class ImageConfig:
    """The config a committed OCI image gets (what a Dockerfile's LABEL/ENTRYPOINT/USER set)
    and the annotations of its OCI manifest."""

    os: str
    arch: str
    labels: Mapping[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] = ()  # () keeps the base's
    user: str = ""  # "uid:gid"; "" keeps the base's
    annotations: Mapping[str, str] = field(default_factory=dict)  # the image manifest's


class OciBuilder(Protocol):
    """Daemonless OCI image building and multi-arch indexes (``engine/buildah.py``).

    Images go from a working container to an OCI layout folder (``layout``, ``tag``); an
    index is made in the builder's own storage, pushed with its images into a layout and
    removed. Every method raises ``ImageError`` naming the command that failed.
    """

    def version(self) -> str:
        """The tool's version (part of an image's inputs: it writes the layers and config)."""
        ...

    def pull(self, source: str) -> str:
        """Bring ``source`` (e.g. ``docker-daemon:name:tag``) into the builder's storage;
        its image id. ``scratch`` is the empty image (id ``scratch``)."""
        ...

    def image_labels(self, image: str) -> Mapping[str, str]:
        """The labels of ``image`` (an id from ``pull``) in the builder's storage."""
        ...

    def from_image(self, image: str) -> str:
        """A working container on ``image`` (an id from ``pull``, or ``scratch``); its name."""
        ...

    def copy(self, container: str, source: Path, dest: PurePosixPath) -> None:
        """Copy the host folder's contents (owned by 0:0) to ``dest`` in the container."""
        ...

    def config(self, container: str, config: ImageConfig) -> None: ...

    def commit(self, container: str, layout: Path, tag: str, timestamp: int) -> None:
        """Commit the container as an OCI image tagged ``tag`` in the layout folder, every
        time in it (created, history, file times) set to ``timestamp``."""
        ...

    def remove(self, container: str) -> None:
        """Remove the working container (no error when it is gone)."""
        ...

    def manifest_create(self, name: str) -> None: ...

    def manifest_add(self, name: str, layout: Path, tag: str) -> None: ...

    def manifest_push_all(self, name: str, layout: Path, tag: str) -> None:
        """Push the index and all of its images as OCI into the layout folder."""
        ...

    def manifest_remove(self, name: str) -> None:
        """Remove the index from the builder's storage (no error when it is gone)."""
        ...
