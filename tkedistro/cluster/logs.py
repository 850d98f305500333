"""``tkedistro cluster logs RELEASE [DIR]``: what it takes to see why a local cluster failed,
as one folder and a gzip'd tarball beside it (what kind's ``export logs`` gives a kind user).

The nodes are found by the cluster's label, so this works when ``cluster.json`` is missing or
damaged; each item comes from the engine (the node's record, its own output, files copied out
of it, commands run in it), so a stopped node or a dead control plane costs only the items
that need them. An item that cannot be collected is named in ``errors.txt`` with why; the
rest is collected all the same.

The folder::

    cluster.txt            the cluster, its nodes, when the logs were taken
    errors.txt             what could not be collected and why (only when something could not)
    kubernetes/            ``kubectl`` through the control-plane node's admin kubeconfig:
                           nodes, every namespaced resource but Secrets (wide and YAML),
                           events sorted by time
    <node>/inspect.json    the engine's record of the node container
    <node>/entrypoint.log  the node container's own output (its entrypoint's)
    <node>/var/log/        kubelet.log, containerd.log, registry.log, pods/ (every static pod's
                           and pod's container logs); containers-links.txt: /var/log/containers
    <node>/*.txt           ctr listings (crictl's too when a node has it), processes, kernel
                           log, addresses, routes, iptables, mounts (the node has no journal:
                           these stand for it)

Credentials stay out: neither the host's kubeconfig nor the node's ``/etc/kubernetes`` is
read, and every text written is passed through ``redact`` (URL user-info, private keys, and
the values of ``client-key-data``, ``token`` and ``password`` keys).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath

from tkedistro.cluster.bootstrap import ADMIN
from tkedistro.cluster.config import ROLE_LABEL, ClusterConfig
from tkedistro.core import console, files
from tkedistro.core.errors import ClusterError, TkedistroError, UnsafePathError
from tkedistro.engine.protocols import NodeEngine, NodeInfo, RunResult
from tkedistro.model.url import redact_urls

ERRORS_FILE = "errors.txt"
COMMAND_TIMEOUT_S = 60
COPIED = tuple(PurePosixPath("/var/log") / name for name in (
    "kubelet.log", "containerd.log", "registry.log", "pods", "containers"))
# the node has no journal: what ran, what the kernel said, and the node's network and mounts
NODE_COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ctr-containers.txt", ("ctr", "--namespace", "k8s.io", "containers", "list")),
    ("ctr-tasks.txt", ("ctr", "--namespace", "k8s.io", "tasks", "list")),
    ("ctr-images.txt", ("ctr", "--namespace", "k8s.io", "images", "list")),
    ("crictl-pods.txt", ("crictl", "pods")),
    ("crictl-ps.txt", ("crictl", "ps", "--all")),
    ("processes.txt", ("ps", "auxwwf")),
    ("kernel.log", ("dmesg",)),
    ("ip-addr.txt", ("ip", "addr")),
    ("ip-route.txt", ("ip", "route")),
    ("iptables.txt", ("iptables-save",)),
    ("mounts.txt", ("cat", "/proc/self/mountinfo")),
    ("kubelet-version.txt", ("kubelet", "--version")),
)
OPTIONAL_TOOLS = frozenset({"crictl"})  # not in the node image: its absence is no error
SORT_BY_TIME = "--sort-by=.metadata.creationTimestamp"
KUBECTL_GETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("nodes.txt", ("get", "nodes", "--output=wide")),
    ("nodes.yaml", ("get", "nodes", "--output=yaml")),
    ("nodes-described.txt", ("describe", "nodes")),
    ("events.txt", ("get", "events", "--all-namespaces", "--output=wide", SORT_BY_TIME)),
)
LEFT_OUT = frozenset({"secrets"})  # credentials: never dumped
_SECRET_VALUE = re.compile(
    r"(?m)^(\s*-?\s*(?:client-key-data|token|password)\s*:\s*)\S.*$")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
                          re.S)
Item = Callable[[], None]


def redact(text: str) -> str:
    """``text`` without URL user-info, private keys, or the value of a ``client-key-data``,
    ``token`` or ``password`` key."""
    text = _PRIVATE_KEY.sub("[private key removed]", redact_urls(text))
    return _SECRET_VALUE.sub(r"\1[removed]", text)


@dataclass(frozen=True)
class CollectedLogs:
    cluster: str
    folder: Path
    tarball: Path
    nodes: tuple[str, ...]
    errors: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"cluster": self.cluster, "folder": str(self.folder),
                "tarball": str(self.tarball), "nodes": list(self.nodes),
                "errors": list(self.errors)}

    def format_text(self) -> str:
        lines = [f"logs of cluster {self.cluster} ({len(self.nodes)} nodes): {self.folder}",
                 f"  tarball: {self.tarball}"]
        if self.errors:
            lines.append(f"  {len(self.errors)} item(s) could not be collected: "
                         f"see {self.folder / ERRORS_FILE}")
        return "\n".join(lines)


@dataclass
class _Collector:
    engine: NodeEngine
    folder: Path
    errors: list[str] = field(default_factory=list)
    absent: set[str] = field(default_factory=set)  # optional tools the nodes lack

    def attempt(self, what: str, item: Item) -> None:
        """Run one item; its failure is recorded, never raised (a symlink refusal is)."""
        try:
            item()
        except UnsafePathError:
            raise
        except (TkedistroError, OSError, tarfile.TarError, ValueError) as exc:
            self.errors.append(f"{what}: {_reason(exc)}")

    def write(self, relative: str, text: str) -> None:
        files.write_text(self.folder / relative, redact(text))


def _reason(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, TkedistroError) else str(exc) or type(exc).__name__
    return " ".join(text.split())


def default_folder(config: ClusterConfig) -> Path:
    """``_cluster/<release>/logs-<UTC time>``."""
    return config.root / time.strftime("logs-%Y%m%dT%H%M%SZ", time.gmtime())


def collect(engine: NodeEngine, config: ClusterConfig, folder: Path | None = None
            ) -> CollectedLogs:
    """Collect every node's logs into ``folder`` (made new; default ``default_folder``) and
    ``<folder>.tar.gz``; ``ClusterError`` when the cluster has no node container."""
    nodes = engine.nodes(config.labels)
    if not nodes:
        raise ClusterError(f"cluster {config.name} has no node containers: no logs to collect",
                           hint=f"see `tkedistro cluster status {config.release}`")
    folder = _new_folder(folder, config)
    collector = _Collector(engine, folder)
    for node in nodes:
        _collect_node(collector, node)
    control = _control_plane(nodes)
    collector.attempt("kubernetes/", lambda: _collect_kubernetes(collector, control))
    collector.write("cluster.txt", _describe(config, nodes, collector.absent))
    if collector.errors:
        files.write_text(folder / ERRORS_FILE, "".join(f"{e}\n" for e in collector.errors))
    tarball = folder.with_name(folder.name + ".tar.gz")
    files.write_tarball(folder, tarball, mode=0o600)
    return CollectedLogs(config.name, folder, tarball, tuple(n.name for n in nodes),
                         tuple(collector.errors))


def _new_folder(folder: Path | None, config: ClusterConfig) -> Path:
    chosen = folder or default_folder(config)
    for attempt in range(1, 10):
        candidate = chosen if attempt == 1 else chosen.with_name(f"{chosen.name}-{attempt}")
        try:
            return files.make_dir(candidate, mode=0o700)  # pod specs, node env: root's own
        except FileExistsError:
            if folder is not None:
                raise ClusterError(f"{folder} already exists; the logs go into a new folder",
                                   hint="name a folder that does not exist yet") from None
    raise ClusterError(f"{chosen}: every name tried exists", hint="remove the old logs folders")


def _describe(config: ClusterConfig, nodes: list[NodeInfo], absent: set[str]) -> str:
    lines = [f"cluster: {config.name}", f"release: {config.release}",
             f"collected: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}", "nodes:"]
    lines += [f"  {n.name}  {n.address or '-'}  {'running' if n.running else 'stopped'}"
              for n in nodes]
    if absent:
        lines.append(f"not in the nodes (their listings left out): {', '.join(sorted(absent))}")
    return "\n".join(lines) + "\n"


def _control_plane(nodes: list[NodeInfo]) -> NodeInfo:
    return next((n for n in nodes if n.labels.get(ROLE_LABEL) == "control-plane"
                 or n.name.endswith("-control-plane")), nodes[0])


def _collect_node(collector: _Collector, node: NodeInfo) -> None:
    name, engine = node.name, collector.engine
    collector.attempt(f"{name}/inspect.json", lambda: collector.write(
        f"{name}/inspect.json", json.dumps(engine.inspect(name), indent=2, default=str) + "\n"))
    collector.attempt(f"{name}/entrypoint.log",
                      lambda: collector.write(f"{name}/entrypoint.log", engine.logs(name)))
    for path in COPIED:
        collector.attempt(f"{name}{path}", partial(_copy_out, collector, name, path))
    for relative, argv in NODE_COMMANDS:
        if not node.running:
            collector.errors.append(f"{name}/{relative}: node {name} is not running")
            continue
        collector.attempt(f"{name}/{relative}",
                          partial(_run_into, collector, name, f"{name}/{relative}", argv))


def _run_into(collector: _Collector, node: str, relative: str, argv: tuple[str, ...]) -> None:
    """Write what ``argv`` prints in the node; a command the node lacks is an error, the
    output of one that fails is kept (and the failure recorded)."""
    result = collector.engine.exec(node, ("timeout", str(COMMAND_TIMEOUT_S), *argv))
    if result.exit_code in (126, 127) and argv[0] in OPTIONAL_TOOLS:
        collector.absent.add(argv[0])
        return
    _keep(collector, relative, argv, result)


def _keep(collector: _Collector, relative: str, argv: tuple[str, ...],
          result: RunResult) -> None:
    if result.exit_code in (126, 127):
        raise ClusterError(f"{argv[0]} is not available in the node (exit {result.exit_code})")
    collector.write(relative, result.output)
    if not result.ok:
        raise ClusterError(_failed(argv, result))


def _failed(argv: tuple[str, ...], result: RunResult) -> str:
    if result.exit_code == 124:
        return f"`{' '.join(argv)}` timed out after {COMMAND_TIMEOUT_S}s (output kept)"
    last = (result.output.strip().splitlines() or [""])[-1]
    return f"`{' '.join(argv)}` exited {result.exit_code} (output kept): {last[:300]}"


class _Chunks(io.RawIOBase):
    """A readable file over an iterator of byte chunks (the engine's tar stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._left = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._left:
            self._left = next(self._chunks, b"")
            if not self._left:
                return 0
        size = min(len(buffer), len(self._left))
        buffer[:size], self._left = self._left[:size], self._left[size:]
        return size


def _copy_out(collector: _Collector, node: str, path: PurePosixPath) -> None:
    """Unpack the node's ``path`` under ``<node>/var/log/``: regular files only (their
    text redacted); a link is listed in ``<name>-links.txt``, never made."""
    into = f"{node}{path.parent}"
    links: list[str] = []
    stream = io.BufferedReader(_Chunks(iter(collector.engine.copy_out(node, path))))
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            relative = _member_path(member.name)
            if member.issym() or member.islnk():
                links.append(f"{relative} -> {member.linkname}")
            elif member.isfile() and (reader := tar.extractfile(member)) is not None:
                data = reader.read().decode("utf-8", "surrogateescape")
                files.write_atomic(collector.folder / into / relative,
                                   redact(data).encode("utf-8", "surrogateescape"))
    if links:
        collector.write(f"{into}/{path.name}-links.txt", "".join(f"{x}\n" for x in links))


def _member_path(name: str) -> str:
    """A tar member's name as a path below the folder: nothing absolute, no ``..``."""
    parts = PurePosixPath(name).parts
    if not parts or parts[0] == "/" or ".." in parts:
        raise ValueError(f"refusing the archive member {name!r}: not a path below the folder")
    return str(PurePosixPath(*parts))


def _collect_kubernetes(collector: _Collector, control: NodeInfo) -> None:
    if not control.running:
        raise ClusterError(f"the control-plane node {control.name} is not running")
    for relative, args in KUBECTL_GETS:
        collector.attempt(f"kubernetes/{relative}",
                          partial(_kubectl_into, collector, control.name, relative, args))
    listed = _kubectl(collector.engine, control.name, "api-resources", "--namespaced=true",
                      "--verbs=list", "--output=name")
    if not listed.ok:
        _keep(collector, "kubernetes/api-resources.txt", ("kubectl", "api-resources"), listed)
    kinds = [k for k in listed.output.split() if k.split(".")[0] not in LEFT_OUT]
    every = ",".join(kinds)
    for relative, output in (("resources.txt", "wide"), ("resources.yaml", "yaml")):
        collector.attempt(f"kubernetes/{relative}", partial(
            _kubectl_into, collector, control.name, relative,
            ("get", every, "--all-namespaces", f"--output={output}")))


def _kubectl(engine: NodeEngine, node: str, *args: str) -> RunResult:
    return engine.exec(node, ("timeout", str(COMMAND_TIMEOUT_S), "kubectl",
                              f"--kubeconfig={ADMIN}", "--request-timeout=30s", *args))


def _kubectl_into(collector: _Collector, node: str, relative: str,
                  args: tuple[str, ...]) -> None:
    _keep(collector, f"kubernetes/{relative}", ("kubectl", *args[:2]),
          _kubectl(collector.engine, node, *args))


# --- after a failure ----------------------------------------------------------------------
def collect_after_failure(engine: NodeEngine, config: ClusterConfig,
                          folder: Path | None = None) -> CollectedLogs | None:
    """``collect`` for a failure path: whatever goes wrong is a warning, never an error that
    would hide the failure being reported."""
    try:
        with console.step("cluster", f"collect the logs of {config.name}"):
            return collect(engine, config, folder)
    except Exception as exc:  # the original error matters more than this one
        console.warn(f"could not collect the logs of cluster {config.name}: {_reason(exc)}")
        return None


def failure_note(release: str, logs: CollectedLogs | None, kept: bool) -> str:
    """What a failure message of ``up`` or a conformance run adds: where the logs are, and
    the commands to inspect and remove the cluster."""
    lines = [f"logs of the failed cluster: {logs.folder} (and {logs.tarball.name})"] \
        if logs else []
    if kept:
        lines.append(f"the cluster is kept: inspect it with `tkedistro cluster logs {release}`, "
                     f"remove it with `tkedistro cluster down {release}`")
    else:
        lines.append(f"the cluster was removed (`tkedistro cluster down {release}` removes "
                     f"anything left); --retain keeps a failed cluster for "
                     f"`tkedistro cluster logs {release}`")
    return "\n".join(lines)


def add_note(exc: BaseException, note: str) -> None:
    """Put ``note`` under the error's hint (an unexpected error gets it printed now)."""
    if isinstance(exc, TkedistroError):
        exc.hint = f"{exc.hint}\n{note}" if exc.hint else note
    else:
        console.error(note)
