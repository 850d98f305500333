"""What a local cluster must leave exactly as it found it on the host: firewall rules, mounts,
cgroups, network devices, the engine's objects, global kernel settings and processes.

``snapshot()`` reads them; ``diff(before, after)`` names every difference. Processes are
compared with care, because the host keeps living while a test runs:

- left out everywhere: kernel threads, the processes inside containers (below a docker shim:
  the containers themselves are compared through the engine), the test's own process tree,
  and the other sessions of whatever started this test (processes under a top-level process
  with the same executable as the test's own top-level ancestor, and orphaned shells).
- *gone*: a host daemon (parent PID 1) that ran before and no longer does. Commands of other
  users come and go; daemons do not, and they are what a teardown killing by name would hit.
- *new*: ``leftovers()`` finds a process that outlived a run, by what ties it to the run: its
  cgroup, its session, its command line, or being a shim of one of the run's containers.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
SAVE_COMMANDS = ("iptables-save", "ip6tables-save", "iptables-legacy-save",
                 "ip6tables-legacy-save", "iptables-nft-save", "ip6tables-nft-save")
# global (not per network namespace) settings a kubelet or kube-proxy changes on its host
SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
           "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/ipv4/ip_forward",
           "net/bridge/bridge-nf-call-iptables", "net/netfilter/nf_conntrack_max")
SHELLS = {"bash", "sh", "dash", "zsh"}
_COUNTERS = re.compile(r"\[\d+:\d+\]")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    sid: int
    start: int  # clock ticks after boot: (pid, start) names one process
    argv: tuple[str, ...]

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.start)

    @property
    def exe(self) -> str:
        return os.path.basename(self.argv[0]) if self.argv else ""

    def text(self) -> str:
        return f"{self.pid} (ppid {self.ppid}): {' '.join(self.argv)[:200]}"


def processes() -> dict[int, Proc]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # exited meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        proc = Proc(int(entry.name), int(fields[1]), int(fields[3]), int(fields[19]),
                    tuple(a.decode(errors="replace") for a in argv if a))
        if proc.argv and proc.ppid != 2:  # kernel threads have no command line
            found[proc.pid] = proc
    return found


def _ancestors(procs: dict[int, Proc], pid: int) -> list[Proc]:
    chain, seen = [], set()
    while pid in procs and pid not in seen and pid != 1:
        seen.add(pid)
        chain.append(procs[pid])
        pid = procs[pid].ppid
    return chain


def _machinery(procs: dict[int, Proc]) -> str:
    """The executable of the test's top-level ancestor (below PID 1)."""
    chain = _ancestors(procs, os.getpid())
    return chain[-1].exe if chain else ""


def host_processes(procs: dict[int, Proc]) -> dict[tuple[int, int], Proc]:
    """The processes a cluster must leave alone, by ``Proc.key`` (see the module text)."""
    top_exe = _machinery(procs)
    kept = {}
    for proc in procs.values():
        chain = _ancestors(procs, proc.pid)
        if any(p.exe.startswith("containerd-shim") for p in chain):
            continue  # a container's shim, or inside a container
        if any(p.pid == os.getpid() for p in chain):
            continue  # the test and what it started
        top = chain[-1] if chain else proc
        if (top.exe == top_exe and top.pid != 1) or top.exe in SHELLS:
            continue  # another session of the machinery running this test, or its orphans
        kept[proc.key] = proc
    return kept


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def firewall() -> dict[str, list[str]]:
    rules = {}
    for command in SAVE_COMMANDS:
        try:
            out = _run([command])
        except (OSError, subprocess.CalledProcessError):
            continue
        rules[command] = [_COUNTERS.sub("", line).rstrip() for line in out.splitlines()
                          if line and not line.startswith("#")]
    return rules


def mount_points() -> Counter[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return Counter(line.split()[4] for line in lines)


def cgroup_folders(root: Path = CGROUP, depth: int = 2) -> set[str]:
    """``hierarchy/a`` and ``hierarchy/a/b`` for every real hierarchy (not its symlinks),
    but not the folders beside the test's own cgroup below its top one (``memory/x/<each
    session>``: where the machinery running this test puts each of its sessions)."""
    found = set()
    for hierarchy in sorted(root.iterdir()):
        if hierarchy.is_symlink() or not hierarchy.is_dir():
            continue
        level = [hierarchy]
        for _ in range(depth):
            level = [d for folder in level for d in _subdirs(folder)]
            found |= {str(d.relative_to(root)) for d in level}
    sessions = _own_cgroup_tops()
    return {f for f in found if "/".join(f.split("/")[:2]) not in sessions or f.count("/") < 2}


def _own_cgroup_tops() -> set[str]:
    """``hierarchy/top`` of this process's cgroups that are not the root."""
    tops = set()
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        parts = path.strip("/").split("/")
        if len(parts) >= 2 and controllers:
            for c in controllers.split(","):
                tops.add(f"{c.removeprefix('name=')}/{parts[0]}")
    return tops


def _subdirs(folder: Path) -> list[Path]:
    try:
        return [d for d in folder.iterdir() if d.is_dir()]
    except OSError:  # removed meanwhile
        return []


def link_names() -> set[str]:
    out = _run(["ip", "-o", "link"])
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def docker_objects() -> dict[str, set[str]]:
    return {
        "containers": set(_run(["docker", "ps", "-a", "--no-trunc", "--format",
                                "{{.ID}} {{.Names}}"]).split("\n")) - {""},
        "networks": set(_run(["docker", "network", "ls", "--no-trunc", "--format",
                              "{{.ID}} {{.Name}}"]).split("\n")) - {""},
        "volumes": set(_run(["docker", "volume", "ls", "--format", "{{.Name}}"]).split("\n"))
        - {""},
    }


def sysctls() -> dict[str, str]:
    found = {}
    for name in SYSCTLS:
        path = Path("/proc/sys") / name
        if path.is_file():
            found[name] = path.read_text().strip()
    return found


@dataclass(frozen=True)
class Snapshot:
    firewall: dict[str, list[str]]
    mounts: Counter[str]
    cgroups: set[str]
    links: set[str]
    docker: dict[str, set[str]]
    sysctls: dict[str, str]
    processes: dict[tuple[int, int], Proc] = field(repr=False)


def snapshot() -> Snapshot:
    return Snapshot(firewall(), mount_points(), cgroup_folders(), link_names(),
                    docker_objects(), sysctls(), host_processes(processes()))


def _set_diff(what: str, before: Iterable[str], after: Iterable[str]) -> list[str]:
    b, a = set(before), set(after)
    return [f"{what}: gone {x}" for x in sorted(b - a)] + \
        [f"{what}: new {x}" for x in sorted(a - b)]


def diff(before: Snapshot, after: Snapshot) -> list[str]:
    """Every difference a user of the host would notice, one line each ([] when none)."""
    problems = []
    for command in sorted(set(before.firewall) | set(after.firewall)):
        old, new = before.firewall.get(command, []), after.firewall.get(command, [])
        if old != new:
            problems += _set_diff(command, old, new) or [f"{command}: rules reordered"]
    for point in sorted(set(before.mounts) | set(after.mounts)):
        if n := after.mounts[point] - before.mounts[point]:
            problems.append(f"mount: {'new' if n > 0 else 'gone'} {point} ({abs(n)}x)")
    problems += _set_diff("cgroup", before.cgroups, after.cgroups)
    problems += _set_diff("link", before.links, after.links)
    for kind in sorted(before.docker):
        problems += _set_diff(f"docker {kind}", before.docker[kind], after.docker[kind])
    problems += [f"sysctl {k}: {before.sysctls.get(k)} -> {after.sysctls.get(k)}"
                 for k in sorted(set(before.sysctls) | set(after.sysctls))
                 if before.sysctls.get(k) != after.sysctls.get(k)]
    problems += [f"process gone: {p.text()}" for k, p in sorted(before.processes.items())
                 if p.ppid == 1 and k not in after.processes]
    return problems


def leftovers(cluster: str, container_ids: Iterable[str], sessions: Iterable[int],
              words: Iterable[str]) -> list[str]:
    """Processes still running that belong to a cluster run: in the cluster's cgroup parent,
    in the session of one of the run's ``tkedistro`` processes, a shim of one of its
    containers, or mentioning one of ``words`` (its folders, its name) on the command line."""
    ids, sids, needles = set(container_ids), set(sessions), [w for w in words if w]
    found, procs = [], processes()
    for proc in procs.values():
        if any(p.pid == os.getpid() for p in _ancestors(procs, proc.pid)):
            continue
        line = " ".join(proc.argv)
        why = ""
        if proc.sid in sids:
            why = "in a tkedistro run's session"
        elif proc.exe.startswith("containerd-shim") and any(i in line for i in ids):
            why = "shim of a cluster container"
        elif any(w in line for w in needles):
            why = "names the cluster or its folders"
        elif _in_cgroup(proc.pid, cluster):
            why = f"in cgroup /{cluster}"
        if why:
            found.append(f"{why}: {proc.text()}")
    return found


def _in_cgroup(pid: int, cluster: str) -> bool:
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False
    return any(line.split(":", 2)[2].startswith(f"/{cluster}/") or
               line.split(":", 2)[2] == f"/{cluster}" for line in text.splitlines())
