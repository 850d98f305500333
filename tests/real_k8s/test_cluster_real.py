"""``tkedistro cluster up|down`` on the host, with the really built v1.20 binaries: the nodes
come up Ready, and afterwards the host is exactly as before, also when the tool was killed
with ``kill -9`` in the middle of ``up`` (``down``, or the next ``up``, clears what it left).

"The host" is what ``tests/helpers/host.py`` snapshots: iptables/ip6tables rules, mount
points, cgroup folders two levels deep in every hierarchy, network devices, docker's
containers, networks and volumes, global kernel settings, and the host's daemons. To make that
mean something on a machine that is not itself a node, the host is first made to look like
one (``node_like_host``): processes named kubelet, kube-proxy, containerd..., a ``kubepods``
cgroup tree and ``KUBE-*`` iptables chains, all of which must survive.

Runs as root on the persistent distro of the build tier (``conftest.PERSIST``); its cluster
(``tke-1-20-<hex>``) is removed first, whatever started it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import host
from tests.real_k8s.conftest import (
    SHIPPED_IMAGES,
    Tool,
    build_persistent_distro,
    cgroup_parents,
    cluster_objects,
    cluster_skip_reason,
    shipped_digests,
)
from tkedistro.cluster.config import cluster_name
from tkedistro.core.workspace import Workspace

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(1800)]

SENTINEL_PROCESSES = ("kubelet", "kube-proxy", "containerd", "kube-apiserver", "etcd")
SENTINEL_CHAINS = (("nat", "KUBE-SERVICES"), ("filter", "KUBE-FIREWALL"),
                   ("nat", "KUBE-TKEDISTRO-TEST"))


@pytest.fixture
def ws(monkeypatch: pytest.MonkeyPatch) -> Workspace:
    if reason := cluster_skip_reason():
        pytest.skip(reason)
    return build_persistent_distro(monkeypatch)


@pytest.fixture
def tool(ws: Workspace, tmp_path: Path) -> Iterator[Tool]:
    """The CLI on ``ws``, after removing the distro's cluster (a kept or killed one)."""
    t = Tool(ws, tmp_path)
    t.run("cluster", "down", "1.20").ok()
    yield t
    t.run("cluster", "down", "1.20")  # whatever a failed test left


@pytest.fixture
def node_like_host() -> Iterator[list[subprocess.Popen[bytes]]]:
    """What a host that is itself a Kubernetes node has, and a teardown by name would hit."""
    procs = [subprocess.Popen(["bash", "-c", f"exec -a {name} sleep 86400"],
                              start_new_session=True) for name in SENTINEL_PROCESSES]
    made_cgroups = []
    for hierarchy in sorted(host.CGROUP.iterdir()):
        top = hierarchy / "kubepods"
        if hierarchy.is_dir() and not hierarchy.is_symlink() and not top.exists():
            (top / "besteffort").mkdir(parents=True)
            made_cgroups.append(top)
    made_chains = [(table, chain) for table, chain in SENTINEL_CHAINS
                   if subprocess.run(["iptables", "-t", table, "-N", chain],
                                     capture_output=True).returncode == 0]
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()
    for top in made_cgroups:
        (top / "besteffort").rmdir()
        top.rmdir()
    for table, chain in made_chains:
        subprocess.run(["iptables", "-t", table, "-X", chain], check=False)


def _still_running(procs: list[subprocess.Popen[bytes]]) -> list[str]:
    return [f"{name} (pid {p.pid}) was killed" for name, p in zip(SENTINEL_PROCESSES, procs,
                                                                  strict=True)
            if p.poll() is not None]


def _container_ids(name: str) -> set[str]:
    out = subprocess.run(["docker", "ps", "-aq", "--no-trunc", "--filter",
                          f"label=org.tkedistro.cluster={name}"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def _kube_rules(snap: host.Snapshot) -> dict[str, list[str]]:
    return {cmd: [r for r in rules if "KUBE-" in r] for cmd, rules in snap.firewall.items()}


def _top_cgroups(snap: host.Snapshot) -> set[str]:
    return {c.split("/")[1] for c in snap.cgroups}


def _assert_host_as_before(before: host.Snapshot, ws: Workspace, tool: Tool, ids: set[str],
                           sentinels: list[subprocess.Popen[bytes]]) -> None:
    name = cluster_name("1.20", ws.root)
    assert cluster_objects(name) == {"containers": [], "volumes": [], "networks": []}
    assert cgroup_parents(name) == []
    assert host.diff(before, host.snapshot()) == []
    assert host.leftovers(name, ids, tool.sessions,
                          [name, str(ws.root), str(ws.cache)]) == []
    assert _still_running(sentinels) == []
    cluster_dir = ws.cluster_dir("1.20")
    assert not (cluster_dir / "kubeconfig").exists()
    assert not (cluster_dir / "cluster.json").exists()


def _assert_runs_the_shipped_images(ws: Workspace, kubectl: Path, kubeconfig: Path,
                                    name: str) -> None:
    """The control plane's and kube-proxy's pods run images.json's index (the imageID the
    kubelet reports, seen from the host), and each node's containerd holds that index for
    pause, the sandbox, as well (``ctr`` in the node, not the tool's own reader)."""
    recorded = shipped_digests(ws.output_dir("1.20"))
    deadline = time.monotonic() + 120  # the static pods' mirror pods start Pending
    while True:
        pods = json.loads(subprocess.run(
            [str(kubectl), "--kubeconfig", str(kubeconfig), "-n", "kube-system", "get", "pods",
             "-o", "json"], capture_output=True, text=True, check=True, timeout=60).stdout)["items"]
        ran = {(s["name"], p["spec"]["nodeName"]): s["imageID"].rpartition("@")[2]
               for p in pods for s in p["status"].get("containerStatuses", [])
               if s["name"] in SHIPPED_IMAGES and s.get("imageID")}
        if {c for c, _ in ran} == set(SHIPPED_IMAGES) - {"pause"} or \
                time.monotonic() > deadline:
            break
        time.sleep(2)
    assert {c for c, _ in ran} == set(SHIPPED_IMAGES) - {"pause"}, ran
    assert {k: v for k, v in ran.items() if v != recorded[k[0]]["index_digest"]} == {}, ran
    assert ran[("kube-proxy", f"{name}-worker")] == recorded["kube-proxy"]["index_digest"]
    for node in (f"{name}-control-plane", f"{name}-worker"):
        listed = subprocess.run(["docker", "exec", node, "ctr", "-n", "k8s.io", "images", "ls"],
                                capture_output=True, text=True, check=True).stdout
        pause = [line.split() for line in listed.splitlines()
                 if line.startswith("127.0.0.1:5000/tkedistro/pause:v1.20.2-tke.1 ")]
        assert [row[2] for row in pause] == [recorded["pause"]["index_digest"]], listed


def test_cluster_up_then_down_leaves_the_host_exactly_as_before(
        ws: Workspace, tool: Tool, node_like_host: list[subprocess.Popen[bytes]]) -> None:
    name = cluster_name("1.20", ws.root)
    before = host.snapshot()
    started = time.monotonic()
    up = tool.run("cluster", "up", "1.20").ok()
    up_s = time.monotonic() - started
    kubeconfig = ws.cluster_dir("1.20") / "kubeconfig"
    assert f"cluster {name} is up: 2 nodes in" in up.output, up.output
    assert f"kubeconfig: {kubeconfig}" in up.output

    kubectl = ws.output_dir("1.20") / "bin/linux/amd64/kubectl"
    nodes = json.loads(subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "json"],
        capture_output=True, text=True, check=True, timeout=60).stdout)["items"]
    ready = {n["metadata"]["name"]: any(c["type"] == "Ready" and c["status"] == "True"
                                        for c in n["status"]["conditions"]) for n in nodes}
    assert ready == {f"{name}-control-plane": True, f"{name}-worker": True}
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes} == {"v1.20.2-tke.1"}
    _assert_runs_the_shipped_images(ws, kubectl, kubeconfig, name)
    status = json.loads(tool.run("cluster", "status", "1.20", "--json").ok().stdout)
    assert (status["name"], status["up"]) == (name, True), status
    # while it runs: kube-proxy's rules live in the nodes' network namespaces, not the host's,
    # and every cgroup it made is below /<name>
    inside = subprocess.run(["docker", "exec", f"{name}-worker", "iptables-save"],
                            capture_output=True, text=True, check=True).stdout
    assert "-A KUBE-SERVICES" in inside
    # the kubelet's kernel-wide settings are files of the node's own, not the host kernel's
    # (whatever values this host holds, the kubelet could not change them)
    mounts = subprocess.run(["docker", "exec", f"{name}-worker", "cat", "/proc/1/mountinfo"],
                            capture_output=True, text=True, check=True).stdout
    for key in ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic",
                "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"):
        assert f" /proc/sys/{key} " in mounts, key
    during = host.snapshot()
    assert _kube_rules(during) == _kube_rules(before)
    assert _top_cgroups(during) - _top_cgroups(before) == {name}
    ids = _container_ids(name)
    assert len(ids) == 2

    started = time.monotonic()
    down = tool.run("cluster", "down", "1.20").ok()
    down_s = time.monotonic() - started
    assert f"container {name}-control-plane" in down.output
    assert f"network {name}" in down.output
    _assert_host_as_before(before, ws, tool, ids, node_like_host)
    print(f"cluster up {up_s:.0f}s, down {down_s:.0f}s")


def _up_killed_once_nodes_exist(tool: Tool, name: str, nodes: int, linger_s: float) -> set[str]:
    """``cluster up``, ``kill -9`` of its whole session ``linger_s`` after ``nodes`` node
    containers exist; returns the containers' ids."""
    proc, log = tool.start("cluster", "up", "1.20")
    deadline = time.monotonic() + 600
    while len(ids := _container_ids(name)) < nodes:
        progress = log.with_suffix(".err")
        assert proc.poll() is None, f"cluster up ended first:\n{progress.read_text()[-4000:]}"
        assert time.monotonic() < deadline, progress.read_text()[-4000:]
        time.sleep(0.5)
    time.sleep(linger_s)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return ids | _container_ids(name)


def test_kill_9_mid_up_leaves_nothing_after_down_or_the_next_up(
        ws: Workspace, tool: Tool, node_like_host: list[subprocess.Popen[bytes]]) -> None:
    name = cluster_name("1.20", ws.root)
    before = host.snapshot()

    # killed while kubeadm init runs: down removes everything
    ids = _up_killed_once_nodes_exist(tool, name, nodes=2, linger_s=10)
    left = cluster_objects(name)
    assert len(left["containers"]) == 2 and left["networks"] == [name], left
    status = tool.run("cluster", "status", "1.20").ok()
    assert f"cluster {name}: not healthy" in status.output
    tool.run("cluster", "down", "1.20").ok()
    _assert_host_as_before(before, ws, tool, ids, node_like_host)

    # killed as soon as the first node exists: the next up starts by removing it, and works
    ids |= _up_killed_once_nodes_exist(tool, name, nodes=1, linger_s=0)
    assert cluster_objects(name)["containers"], "the kill left no node container to remove"
    up = tool.run("cluster", "up", "1.20").ok()
    assert f"removed leftover container {name}-control-plane of cluster {name}" in up.output
    assert f"removed leftover network {name} of cluster {name}" in up.output
    assert f"cluster {name} is up: 2 nodes" in up.output
    ids |= _container_ids(name)
    tool.run("cluster", "down", "1.20").ok()
    _assert_host_as_before(before, ws, tool, ids, node_like_host)


KUBE_USER = "tkedistro-kubetest"


@pytest.fixture
def invoking_user() -> Iterator[str]:
    """A non-root user as ``sudo`` would name it (made for the test when missing, removed
    afterwards with its home)."""
    made = subprocess.run(["id", "-u", KUBE_USER], capture_output=True).returncode != 0
    if made:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", KUBE_USER],
                       check=True)
    yield KUBE_USER
    if made:
        subprocess.run(["userdel", "--remove", KUBE_USER], check=False, capture_output=True)


def _as_user(user: str, home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``argv`` as ``user`` with a login-like environment (runuser, as root may)."""
    return subprocess.run(["runuser", "-u", user, "--", "env", "-i", f"HOME={home}",
                           "PATH=/usr/bin:/bin", *argv],
                          capture_output=True, text=True, timeout=60)


def test_sudo_cluster_up_gives_the_invoking_user_a_working_context_that_down_removes(
        ws: Workspace, tool: Tool, invoking_user: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sudo tkedistro cluster up 1.20``: root runs it, ``SUDO_UID``/``SUDO_GID`` name the
    user; ``kubectl --context tkedistro-1.20 get nodes`` then works as that user, from the
    host, through the published port; ``cluster down`` takes the context out again."""
    import pwd

    entry = pwd.getpwnam(invoking_user)
    home = Path(entry.pw_dir)
    monkeypatch.setenv("SUDO_UID", str(entry.pw_uid))
    monkeypatch.setenv("SUDO_GID", str(entry.pw_gid))
    monkeypatch.setenv("SUDO_USER", invoking_user)
    monkeypatch.delenv("KUBECONFIG", raising=False)  # HOME stays the test's: not the user's
    name = cluster_name("1.20", ws.root)
    up = tool.run("cluster", "up", "1.20").ok()
    config = home / ".kube" / "config"
    assert f"context tkedistro-1.20 merged into {config}" in up.output, up.output
    for path, mode in ((config.parent, 0o700), (config, 0o600)):
        st = path.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (entry.pw_uid, entry.pw_gid, mode)
    state = json.loads((ws.cluster_dir("1.20") / "cluster.json").read_text())
    assert f"server: https://127.0.0.1:{state['api_port']}" in config.read_text()

    kubectl = ws.output_dir("1.20") / "bin/linux/amd64/kubectl"
    local = home / "kubectl"  # the user's own copy: the distro folders may be root's alone
    local.write_bytes(kubectl.read_bytes())
    local.chmod(0o755)
    got = _as_user(invoking_user, home, str(local), "--context", "tkedistro-1.20", "get",
                   "nodes", "-o", "name")
    assert got.returncode == 0, got.stderr
    assert got.stdout.split() == [f"node/{name}-control-plane", f"node/{name}-worker"]

    down = tool.run("cluster", "down", "1.20").ok()
    assert f"kubeconfig context tkedistro-1.20 from {config}" in down.output
    contexts = _as_user(invoking_user, home, str(local), "config", "get-contexts", "-o",
                        "name")
    assert contexts.returncode == 0 and contexts.stdout.split() == [], contexts
    assert config.stat().st_uid == entry.pw_uid


def _logs_folder(ran: str) -> Path:
    """The folder a failed ``up`` named in its message."""
    line = next(x for x in ran.splitlines() if x.startswith("logs of the failed cluster: "))
    return Path(line.removeprefix("logs of the failed cluster: ").split(" (and ")[0])


def _secret_of(kubeconfig: Path) -> str:
    import yaml

    secret = str(yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["client-key-data"])
    assert len(secret) > 100, kubeconfig
    return secret


def test_cluster_logs_of_a_live_cluster(ws: Workspace, tool: Tool) -> None:
    """kind's ``export logs`` on a running cluster: every node's kubelet log, the static
    pods' logs, the kubectl dumps, the engine's record of each node, and no credential."""
    name = cluster_name("1.20", ws.root)
    cp = f"{name}-control-plane"
    tool.run("cluster", "up", "1.20").ok()
    data = json.loads(tool.run("cluster", "logs", "1.20", "--json").ok().stdout)
    folder, tarball = Path(data["folder"]), Path(data["tarball"])
    assert folder.parent == ws.cluster_dir("1.20") and tarball.is_file()
    assert data["nodes"] == [cp, f"{name}-worker"]
    for node in data["nodes"]:
        assert "kubelet" in (folder / node / "var/log/kubelet.log").read_text()
        assert (folder / node / "var/log/containerd.log").stat().st_size > 0
        assert json.loads((folder / node / "inspect.json").read_text())["Name"] == f"/{node}"
        assert (folder / node / "entrypoint.log").stat().st_size > 0
    static = sorted((folder / cp / "var/log/pods").glob("kube-system_kube-apiserver-*/"
                                                        "kube-apiserver/*.log"))
    assert static and static[0].stat().st_size > 0, sorted((folder / cp).rglob("*"))
    assert (folder / cp / "var/log/containers-links.txt").read_text().count(" -> ") >= 4
    nodes_txt = (folder / "kubernetes/nodes.txt").read_text()
    assert f"{cp}   Ready" in nodes_txt or f"{cp}  Ready" in nodes_txt, nodes_txt
    assert "kube-apiserver-" in (folder / "kubernetes/resources.txt").read_text()
    assert (folder / "kubernetes/events.txt").stat().st_size > 0
    secret = _secret_of(ws.cluster_dir("1.20") / "kubeconfig")
    for path in folder.rglob("*"):
        assert not path.is_file() or secret not in path.read_text(errors="replace"), path
    print(f"cluster logs: {len(list(folder.rglob('*')))} entries; errors: {data['errors']}")
    tool.run("cluster", "down", "1.20").ok()


def test_cluster_logs_after_a_node_dies_during_up(ws: Workspace, tool: Tool) -> None:
    """A real failure of ``up`` (no hook in the tool): the control-plane node container is
    killed from outside while kubeadm init waits for its control plane, as a crashing node
    would end. ``up`` fails, collects the logs (the dead node's files too), keeps the cluster
    with --retain, and names ``cluster logs``/``cluster down``; both work on the wreck."""
    name = cluster_name("1.20", ws.root)
    cp = f"{name}-control-plane"
    proc, log = tool.start("cluster", "up", "1.20", "--retain")
    deadline = time.monotonic() + 600
    while subprocess.run(["docker", "exec", cp, "test", "-s", "/var/log/kubelet.log"],
                         capture_output=True).returncode != 0:
        assert proc.poll() is None, log.with_suffix(".err").read_text()[-4000:]
        assert time.monotonic() < deadline, log.with_suffix(".err").read_text()[-4000:]
        time.sleep(1)
    subprocess.run(["docker", "kill", cp], capture_output=True, check=True)
    assert proc.wait(timeout=600) == 16, log.with_suffix(".err").read_text()[-4000:]
    err = log.with_suffix(".err").read_text()
    assert f"error: kubeadm init failed on node {cp}" in err or \
        f"in node {cp}" in err, err[-4000:]
    assert ("the cluster is kept: inspect it with `tkedistro cluster logs 1.20`, remove it "
            "with `tkedistro cluster down 1.20`") in err, err[-4000:]
    folder = _logs_folder(err)
    assert "kubelet" in (folder / cp / "var/log/kubelet.log").read_text()
    # the engine's record of the dead node (taken while docker may still be tearing it down)
    assert json.loads((folder / cp / "inspect.json").read_text())["Name"] == f"/{cp}"
    assert folder.with_name(folder.name + ".tar.gz").is_file()
    errors = (folder / "errors.txt").read_text()
    # "is not running", or (when collected while docker was still stopping it) the failed
    # kubectl in it: either way the dumps are named as not collected, with the node
    assert any(line.startswith("kubernetes/") and cp in line for line in errors.splitlines()), \
        errors
    assert len(cluster_objects(name)["containers"]) == 2  # --retain kept them
    again = json.loads(tool.run("cluster", "logs", "1.20", "--json").ok().stdout)
    assert Path(again["tarball"]).is_file()
    tool.run("cluster", "down", "1.20").ok()
    assert cluster_objects(name) == {"containers": [], "volumes": [], "networks": []}
