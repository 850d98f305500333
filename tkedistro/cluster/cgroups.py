"""The host's cgroup layout, and what a node container needs on it.

Three layouts exist in practice, and each gets the node it works with:

- cgroup v1 + Docker's ``cgroupfs`` driver (this project's own machines): the node shares the
  host's cgroup namespace and gets the host's ``/sys/fs/cgroup`` read-write; docker puts it
  under the parent ``/<cluster name>`` in every hierarchy, and the kubelet nests the pods under
  the node's own cgroup by its host path.
- cgroup v2 + the ``systemd`` driver (Docker's default on Debian 12/13 and Ubuntu 24.04+): a
  private cgroup namespace and no host cgroup bind; no parent (docker's own scope; systemd's
  driver only takes a ``*.slice`` and removes the scope with the container), so ``down`` has
  nothing to remove at host level.
- cgroup v2 + ``cgroupfs``: a private cgroup namespace, no host bind, the parent
  ``/<cluster name>`` (removed by ``down``).

Everything else (v1 with the systemd driver, controllers split between v1 and v2, a version
the engine and this machine disagree on) is refused with what was found and what to do.
The functions here are pure over the text of ``/proc/self/mountinfo``, ``/proc/self/cgroup``
and the engine's answer, so every layout is tested on canned text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tkedistro.core.errors import ClusterError
from tkedistro.engine.protocols import EngineCgroups, NodeEngine

MOUNTINFO = Path("/proc/self/mountinfo")
PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_MOUNT = "/sys/fs/cgroup"
HINT = ("tkedistro runs nodes on cgroup v2 (Docker's systemd or cgroupfs driver) or on cgroup "
        "v1 with Docker's cgroupfs driver; on a systemd host boot with cgroup v2 "
        "(systemd.unified_cgroup_hierarchy=1) and keep Docker's default driver")


@dataclass(frozen=True)
class CgroupLayout:
    """The host's cgroup version (1 or 2) and the engine's cgroup driver."""

    version: int
    driver: str

    @property
    def private_namespace(self) -> bool:
        """v2: the node sees its own cgroup as ``/sys/fs/cgroup`` (its own namespace)."""
        return self.version == 2

    @property
    def binds_host_tree(self) -> bool:
        """v1: the node gets the host's ``/sys/fs/cgroup`` read-write (pods by host path)."""
        return self.version == 1

    def parent(self, cluster: str) -> str:
        """The node containers' cgroup parent: ``/<cluster>``, or "" (docker's default) on
        the systemd driver."""
        return "" if self.driver == "systemd" else f"/{cluster}"

    def describe(self) -> str:
        return f"cgroup v{self.version}, Docker's {self.driver} driver"


def _mounts(mountinfo: str) -> dict[str, str]:
    """{mount point: filesystem type} of the cgroup mounts in ``mountinfo`` text."""
    found = {}
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, kind = left.split(), right.split()[:1]
        if sep and len(fields) >= 5 and kind:
            found[fields[4]] = kind[0]
    return {m: t for m, t in found.items()
            if m == CGROUP_MOUNT or m.startswith(CGROUP_MOUNT + "/")}


def mounted_version(mountinfo: str) -> int:
    """2 when ``/sys/fs/cgroup`` is cgroup2, 1 when it holds v1 hierarchies with the memory
    controller (an extra controller-less cgroup2 at ``unified`` is systemd's "hybrid", which
    the kernel, Docker and the kubelet all treat as v1), 0 when neither."""
    mounts = _mounts(mountinfo)
    if mounts.get(CGROUP_MOUNT) == "cgroup2":
        return 2
    v1 = {m.rpartition("/")[2] for m, t in mounts.items() if t == "cgroup"}
    return 1 if any("memory" in name.split(",") for name in v1) else 0


def process_version(proc_cgroup: str) -> int:
    """2 when the process is in the unified hierarchy only (``0::/...``), 1 when it is in
    a v1 memory hierarchy, 0 when neither."""
    lines = [line.split(":", 2) for line in proc_cgroup.splitlines() if line.count(":") >= 2]
    if any("memory" in controllers.split(",") for _, controllers, _ in lines):
        return 1
    return 2 if [h for h, _, _ in lines] == ["0"] else 0


def host_layout(mountinfo: str, proc_cgroup: str, engine: EngineCgroups) -> CgroupLayout:
    """The layout nodes are made for, or a ``ClusterError`` saying what was found."""
    mounted, process = mounted_version(mountinfo), process_version(proc_cgroup)
    found = (f"found: /sys/fs/cgroup {'v' + str(mounted) if mounted else 'not a cgroup mount'}"
             f", /proc/self/cgroup {'v' + str(process) if process else 'no memory cgroup'}, "
             f"the engine reports cgroup version {engine.version or '(none)'} and the "
             f"{engine.driver or '(no)'} driver")
    if not mounted or mounted != process:
        raise ClusterError(f"cannot tell this machine's cgroup layout ({found})", hint=HINT)
    if engine.version not in ("", str(mounted)):
        raise ClusterError(f"the container engine does not run on this machine's cgroup "
                           f"layout ({found})", hint="run tkedistro on the engine's own "
                           "machine (a remote DOCKER_HOST cannot be told apart)")
    layout = CgroupLayout(mounted, engine.driver)
    if engine.driver not in ("cgroupfs", "systemd") or layout == CgroupLayout(1, "systemd"):
        raise ClusterError(f"no node layout for cgroup v{mounted} with Docker's "
                           f"{engine.driver or '(unknown)'} cgroup driver ({found})",
                           hint=HINT + "; on cgroup v1 set Docker's driver to cgroupfs "
                           '("exec-opts": ["native.cgroupdriver=cgroupfs"] in daemon.json)')
    return layout


def detect_layout(engine: NodeEngine, mountinfo: Path = MOUNTINFO,
                  proc_cgroup: Path = PROC_CGROUP) -> CgroupLayout:
    """This machine's layout (its ``/proc/self`` files) and the engine's driver."""
    return host_layout(mountinfo.read_text(encoding="utf-8"),
                       proc_cgroup.read_text(encoding="utf-8"), engine.cgroups())
