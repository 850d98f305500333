"""Stop the local cluster and remove what it left on the host: processes (also shims and
containers re-parented to init), mounts under the cluster folder, network namespaces, the CNI
bridge and the kubelet's cgroups. Every step is best effort; ``teardown`` returns leftovers.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from tkedistro.conformance import network
from tkedistro.conformance.processes import Supervisor, kill_pids, pids_matching
from tkedistro.conformance.spec import ClusterSpec
from tkedistro.core.runner import run

NETNS_DIR = Path("/var/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def netns_names() -> set[str]:
    return {p.name for p in NETNS_DIR.iterdir()} if NETNS_DIR.is_dir() else set()


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape")


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below ``root``, deepest first."""
    mountinfo = Path("/proc/self/mountinfo").read_text(encoding="utf-8")
    return parse_mounts_under(mountinfo, str(root.resolve()))


def parse_mounts_under(mountinfo: str, prefix: str) -> list[Path]:
    """Mount points of a ``/proc/<pid>/mountinfo`` text at or below ``prefix``, deepest first."""
    found = []
    for line in mountinfo.splitlines():
        point = _unescape(line.split()[4])
        if point == prefix or point.startswith(prefix + "/"):
            found.append(Path(point))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def unmount_under(root: Path) -> None:
    for point in mounts_under(root):
        if run(["umount", point], check=False).returncode != 0:
            run(["umount", "-l", point], check=False)


def stop_stale(spec: ClusterSpec) -> None:
    """What a killed run left in the cluster folder: its processes, shims and mounts."""
    kill_shims(spec)
    kill_pids([p for p in pids_matching(str(spec.root)) if p != os.getpid()])
    unmount_under(spec.root)


@dataclass(frozen=True)
class ProcStat:
    state: str
    parent: int


def stat_fields(stat: str) -> ProcStat:
    """State and parent pid of a ``/proc/<pid>/stat`` line (the command in parentheses may
    itself hold spaces and parentheses, so fields are counted after the last ``)``)."""
    fields = stat.rsplit(")", 1)[1].split()
    return ProcStat(state=fields[0], parent=int(fields[1]))


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(entry.name)] = stat_fields((entry / "stat").read_text()).parent
    return parents


def with_descendants(pids: list[int]) -> list[int]:
    parents = _parents()
    found, todo = set(pids), list(pids)
    while todo:
        pid = todo.pop()
        children = [c for c, p in parents.items() if p == pid and c not in found]
        found.update(children)
        todo.extend(children)
    return sorted(found)


def kill_shims(spec: ClusterSpec) -> None:
    """containerd shims of our containerd (and the containers under them)."""
    shims = pids_matching(f"-address {spec.sock}")
    kill_pids(with_descendants(shims))


def remove_netns(before: set[str]) -> None:
    for name in sorted(netns_names() - before):
        path = NETNS_DIR / name
        run(["umount", path], check=False)
        with contextlib.suppress(OSError):
            path.unlink()


def remove_pod_cgroups() -> None:
    """The kubelet's ``kubepods`` cgroup trees (cgroupfs driver), deepest first."""
    if not CGROUP_ROOT.is_dir():
        return
    for controller in CGROUP_ROOT.iterdir():
        tree = controller / "kubepods"
        if not tree.is_dir():
            continue
        dirs = sorted((p for p in tree.rglob("*") if p.is_dir()), key=lambda p: len(p.parts))
        for folder in [*reversed(dirs), tree]:
            with contextlib.suppress(OSError):
                folder.rmdir()


def leftovers(spec: ClusterSpec, bridge: str) -> list[str]:
    found = [f"process {pid}" for pid in pids_matching(str(spec.root)) if _alive(pid)]
    found += [f"mount {p}" for p in mounts_under(spec.root)]
    if network.bridge_exists(bridge):
        found.append(f"network device {bridge}")
    if network.forwarding_left(bridge):
        found.append(f"iptables FORWARD rules for {bridge} (comment {network.COMMENT})")
    found += [f"iptables chain {chain}" for chain in network.kube_chains_left()]
    return found


def _alive(pid: int) -> bool:
    try:
        return stat_fields(Path(f"/proc/{pid}/stat").read_text()).state != "Z"
    except (OSError, ValueError, IndexError):
        return False


def teardown(spec: ClusterSpec, supervisor: Supervisor, netns_before: set[str],
             bridge: str) -> list[str]:
    supervisor.stop_all()
    if spec.with_proxy:  # its iptables chains outlive it; it removes them itself
        run([spec.bin_dir / "kube-proxy", "--cleanup"], check=False)
    stop_stale(spec)  # what the supervisor did not start itself: shims, containers, mounts
    remove_netns(netns_before)
    network.delete_bridge(bridge)
    network.remove_forwarding(bridge)
    network.remove_kube_chains()
    remove_pod_cgroups()
    return leftovers(spec, bridge)
