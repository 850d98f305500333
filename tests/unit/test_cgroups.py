"""Nodes on each cgroup layout, from canned ``/proc/self/mountinfo``, ``/proc/self/cgroup`` and
``docker info``: which layout is found (or refused, and why), the node container that results
(cgroup namespace, parent, host binds), the kubelet's configuration, what ``down`` removes, and
the entrypoint's cgroup set-up run on a fake cgroup tree."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.helpers.fake_nodes import FakeNodes
from tkedistro.cluster import lifecycle
from tkedistro.cluster.cgroups import (
    CgroupLayout,
    detect_layout,
    host_layout,
    mounted_version,
    process_version,
)
from tkedistro.cluster.config import ClusterConfig, init_config
from tkedistro.core.errors import ClusterError
from tkedistro.engine import docker_nodes
from tkedistro.engine.protocols import EngineCgroups, NodeSpec

NAME = "tke-1-20-abc123"
REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "tkedistro/templates/cluster/entrypoint.sh"

# this project's own machine: v1 hierarchies, systemd's controller-less cgroup2 at "unified"
V1_MOUNTINFO = """\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V1_CGROUP = """\
9:name=systemd:/
8:pids:/
4:memory:/process_api/931a0d45750f93ba13ea028d6aad70bd
2:cpuacct:/
1:cpu:/
0::/
"""
# Debian 12/13, Ubuntu 24.04+: the unified hierarchy only
V2_MOUNTINFO = """\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 \
rw,nsdelegate,memory_recursiveprot
"""
V2_CGROUP = "0::/user.slice/user-1000.slice/session-3.scope\n"
# systemd's "hybrid" with the memory controller nowhere in v1 (only what an odd boot makes)
NO_MEMORY_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def _docs(text: str) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in YAML(typ="safe", pure=True).load_all(text)}


def _config(tmp_path: Path) -> ClusterConfig:
    return ClusterConfig(release="1.20", name=NAME, nodes=2, version="v1.20.2-tke.1",
                         root=tmp_path / "_cluster" / "1.20")


# --- the layout -------------------------------------------------------------------------
@pytest.mark.parametrize(("mountinfo", "cgroup", "engine", "layout"), [
    (V1_MOUNTINFO, V1_CGROUP, EngineCgroups("1", "cgroupfs"), CgroupLayout(1, "cgroupfs")),
    (V2_MOUNTINFO, V2_CGROUP, EngineCgroups("2", "systemd"), CgroupLayout(2, "systemd")),
    (V2_MOUNTINFO, V2_CGROUP, EngineCgroups("2", "cgroupfs"), CgroupLayout(2, "cgroupfs")),
    (V2_MOUNTINFO, V2_CGROUP, EngineCgroups("", "systemd"), CgroupLayout(2, "systemd")),
], ids=["v1-cgroupfs", "v2-systemd", "v2-cgroupfs", "v2-engine-without-version"])
def test_each_layout_in_practice_is_found(mountinfo: str, cgroup: str, engine: EngineCgroups,
                                          layout: CgroupLayout) -> None:
    assert host_layout(mountinfo, cgroup, engine) == layout


def test_versions_are_read_from_the_mounts_and_the_process() -> None:
    assert [mounted_version(t) for t in (V1_MOUNTINFO, V2_MOUNTINFO, NO_MEMORY_MOUNTINFO, "")] \
        == [1, 2, 0, 0]
    assert [process_version(t) for t in (V1_CGROUP, V2_CGROUP, "1:name=systemd:/\n", "")] \
        == [1, 2, 0, 0]


@pytest.mark.parametrize(("mountinfo", "cgroup", "engine", "message", "hint"), [
    (V1_MOUNTINFO, V1_CGROUP, EngineCgroups("1", "systemd"),
     "no node layout for cgroup v1 with Docker's systemd cgroup driver (found: /sys/fs/cgroup "
     "v1, /proc/self/cgroup v1, the engine reports cgroup version 1 and the systemd driver)",
     "native.cgroupdriver=cgroupfs"),
    (V2_MOUNTINFO, V2_CGROUP, EngineCgroups("2", "none"),
     "no node layout for cgroup v2 with Docker's none cgroup driver", "cgroup v2"),
    (NO_MEMORY_MOUNTINFO, "1:name=systemd:/\n0::/\n", EngineCgroups("1", "cgroupfs"),
     "cannot tell this machine's cgroup layout (found: /sys/fs/cgroup not a cgroup mount, "
     "/proc/self/cgroup no memory cgroup", "systemd.unified_cgroup_hierarchy=1"),
    (V2_MOUNTINFO, V1_CGROUP, EngineCgroups("2", "systemd"),
     "cannot tell this machine's cgroup layout (found: /sys/fs/cgroup v2, /proc/self/cgroup v1",
     "cgroup v2"),
    (V1_MOUNTINFO, V1_CGROUP, EngineCgroups("2", "systemd"),
     "the container engine does not run on this machine's cgroup layout (found: "
     "/sys/fs/cgroup v1, /proc/self/cgroup v1, the engine reports cgroup version 2",
     "remote DOCKER_HOST"),
], ids=["v1-systemd", "v2-no-driver", "hybrid-without-memory", "mounts-and-process-disagree",
        "engine-elsewhere"])
def test_other_layouts_are_refused_saying_what_was_found(
        mountinfo: str, cgroup: str, engine: EngineCgroups, message: str, hint: str) -> None:
    with pytest.raises(ClusterError) as caught:
        host_layout(mountinfo, cgroup, engine)
    assert message in caught.value.message and hint in (caught.value.hint or "")
    assert caught.value.exit_code != 0


def test_detect_reads_the_files_and_asks_the_engine(tmp_path: Path) -> None:
    (tmp_path / "mountinfo").write_text(V2_MOUNTINFO)
    (tmp_path / "cgroup").write_text(V2_CGROUP)
    engine = FakeNodes(engine_cgroups=EngineCgroups("2", "systemd"))
    assert detect_layout(engine, tmp_path / "mountinfo", tmp_path / "cgroup") == \
        CgroupLayout(2, "systemd")


# --- the node containers ------------------------------------------------------------------
@pytest.mark.parametrize(("layout", "private", "host_tree", "parent"), [
    (CgroupLayout(1, "cgroupfs"), False, True, f"/{NAME}"),
    (CgroupLayout(2, "systemd"), True, False, ""),
    (CgroupLayout(2, "cgroupfs"), True, False, f"/{NAME}"),
])
def test_node_spec_per_layout(tmp_path: Path, layout: CgroupLayout, private: bool,
                              host_tree: bool, parent: str) -> None:
    spec = lifecycle.node_spec(_config(tmp_path), layout, 1, "node:1", tmp_path / "data")
    assert (spec.private_cgroupns, spec.host_cgroup_tree, spec.cgroup_parent) == \
        (private, host_tree, parent)
    assert spec.name == f"{NAME}-worker" and spec.volume == f"{NAME}-worker-var"


class _Api:
    """The docker SDK's low-level client as far as ``start_node`` uses it: the real
    ``create_host_config``, and containers recorded instead of made."""

    def __init__(self) -> None:
        import docker  # type: ignore[import-untyped]

        self._real = docker.APIClient(base_url="unix:///nonexistent.sock", version="1.41")
        self.created: list[dict[str, Any]] = []

    def create_host_config(self, **kwargs: Any) -> Any:
        return self._real.create_host_config(**kwargs)

    def create_networking_config(self, *args: Any) -> Any:
        return {}

    def create_endpoint_config(self) -> Any:
        return {}

    def create_container(self, image: str, **kwargs: Any) -> dict[str, str]:
        self.created.append(kwargs["host_config"])
        return {"Id": "c1"}

    def start(self, container: str) -> None:
        return None


class _Container:
    name, id, status, labels = "n", "c1", "running", {}  # noqa: RUF012
    attrs: dict[str, Any] = {}  # noqa: RUF012

    def reload(self) -> None:
        return None


class _Client:
    def __init__(self) -> None:
        self.api = _Api()
        self.volumes = self
        self.containers = self

    def create(self, *args: Any, **kwargs: Any) -> None:
        return None

    def get(self, name: str) -> _Container:
        return _Container()


def _host_config(tmp_path: Path, layout: CgroupLayout) -> dict[str, Any]:
    nodes = docker_nodes.DockerNodes()
    client = _Client()
    nodes._client = client
    spec: NodeSpec = lifecycle.node_spec(_config(tmp_path), layout, 0, "node:1", tmp_path)
    nodes.start_node(spec)
    return client.api.created[0]


def test_a_v1_node_shares_the_host_cgroup_namespace_and_tree(tmp_path: Path) -> None:
    host = _host_config(tmp_path, CgroupLayout(1, "cgroupfs"))
    assert "/sys/fs/cgroup:/sys/fs/cgroup:rw" in host["Binds"]
    assert "CgroupnsMode" not in host  # docker's default on v1: the host's
    assert host["CgroupParent"] == f"/{NAME}"
    assert host.get("Privileged") is not True and host["CapDrop"] == ["ALL"]


@pytest.mark.parametrize(("driver", "parent"), [("systemd", None), ("cgroupfs", f"/{NAME}")])
def test_a_v2_node_has_its_own_cgroup_namespace_and_no_host_tree(
        tmp_path: Path, driver: str, parent: str | None) -> None:
    host = _host_config(tmp_path, CgroupLayout(2, driver))
    assert host["CgroupnsMode"] == "private"
    assert not any(b.startswith("/sys/fs/cgroup:") for b in host["Binds"])
    assert host.get("CgroupParent") == parent
    assert host.get("Privileged") is not True
    assert sorted(host["CapAdd"]) == sorted(docker_nodes.CAPABILITIES)


# --- the kubelet ------------------------------------------------------------------------
def test_the_kubelet_uses_cgroupfs_whatever_the_hosts_driver(tmp_path: Path) -> None:
    kubelet = _docs(init_config(_config(tmp_path), "n", "172.18.0.2", "abcdef.0123456789abcdef"))
    assert kubelet["KubeletConfiguration"]["cgroupDriver"] == "cgroupfs"
    containerd = (REPO / "tkedistro/templates/cluster/containerd.toml.j2").read_text()
    assert re.search(r"runtimes\.runc\.options\]\n(\s*#.*\n)*\s*SystemdCgroup = false",
                     containerd)
    assert '--cgroup-root="$root"' in ENTRYPOINT.read_text()


# --- down ---------------------------------------------------------------------------------
def _v2_tree(root: Path, name: str) -> None:
    (root / "cgroup.controllers").parent.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    for sub in ("c1/init", "c1/kubelet/kubepods/podA", "c2/init"):
        (root / name / sub).mkdir(parents=True)


def test_down_on_v2_cgroupfs_removes_the_clusters_own_tree_deepest_first(tmp_path: Path) -> None:
    _v2_tree(tmp_path, NAME)
    _v2_tree(tmp_path, "tke-1-20-ffffff")
    (tmp_path / "system.slice" / NAME).mkdir(parents=True)  # not ours: not at the top
    removed = lifecycle.remove_cgroup_parent(f"/{NAME}", root=tmp_path)
    assert not (tmp_path / NAME).exists() and removed[-1] == tmp_path / NAME
    assert removed.index(tmp_path / NAME / "c1/kubelet/kubepods/podA") < \
        removed.index(tmp_path / NAME / "c1/kubelet")
    assert (tmp_path / "tke-1-20-ffffff/c1/kubelet/kubepods/podA").is_dir()
    assert (tmp_path / "system.slice" / NAME).is_dir()


@pytest.mark.parametrize(("layout", "removed"), [
    (CgroupLayout(2, "systemd"), []), (CgroupLayout(2, "cgroupfs"), ["c1", ""])])
def test_down_removes_a_cgroup_parent_only_where_docker_made_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: CgroupLayout,
        removed: list[str]) -> None:
    root = tmp_path / "cgroup"
    (root / NAME / "c1").mkdir(parents=True)
    (root / "cgroup.controllers").write_text("memory pids\n")
    real = lifecycle.remove_cgroup_parent
    monkeypatch.setattr(lifecycle, "remove_cgroup_parent",
                        lambda parent: real(parent, root=root))
    config = _config(tmp_path)
    got = lifecycle.remove_cluster(FakeNodes(), config, layout)
    assert got == [f"cgroup {(root / NAME / r).as_posix().rstrip('/')}" for r in removed]
    assert (root / NAME).exists() == (not removed)


# --- the entrypoint's cgroup set-up, on a fake tree --------------------------------------
def _cgroup_section(tree: Path, root_file: Path) -> str:
    """The entrypoint's cgroup part, on ``tree`` instead of /sys/fs/cgroup."""
    text = ENTRYPOINT.read_text()
    start = text.index("# cgroup v1, host cgroup namespace")
    end = text.index('log "cgroup root for pods: $root"\n')
    section = text[start:end].replace("CGROUP_FS=/sys/fs/cgroup", f"CGROUP_FS={tree}")
    section = section.replace("/run/tkedistro-cgroup-root", str(root_file))
    return 'set -eu\nlog() { echo "[tkedistro-node] $*"; }\n' + section


def _run_section(tmp_path: Path, tree: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    root_file = tmp_path / "cgroup-root"
    script = tmp_path / "cgroups.sh"
    script.write_text(_cgroup_section(tree, root_file))
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60,
                          check=False)
    return done, root_file


def test_the_v2_set_up_moves_the_processes_and_delegates_every_controller(
        tmp_path: Path) -> None:
    tree = tmp_path / "cgroup"
    (tree / "kubelet").mkdir(parents=True)
    (tree / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    (tree / "cgroup.procs").write_text("1\n7\n")
    (tree / "kubelet" / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    done, root_file = _run_section(tmp_path, tree)
    assert done.returncode == 0, done.stderr
    assert root_file.read_text() == "/kubelet\n"
    assert set((tree / "init" / "cgroup.procs").read_text().split()) == {"1", "7"}
    wanted = ["+cpuset", "+cpu", "+io", "+memory", "+hugetlb", "+pids"]
    assert (tree / "cgroup.subtree_control").read_text().split() == wanted
    assert (tree / "kubelet" / "cgroup.subtree_control").read_text().split() == wanted


def test_the_v1_set_up_is_unchanged_on_a_fake_tree(tmp_path: Path) -> None:
    own = next((line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text()
                .splitlines() if line.split(":")[1:2] == ["memory"]), None)
    if own is None:
        pytest.skip("this machine has no cgroup v1 memory hierarchy (/proc/self/cgroup)")
    tree = tmp_path / "cgroup"
    for hierarchy in ("memory", "cpuset"):
        (tree / hierarchy / own.lstrip("/")).mkdir(parents=True)
    (tree / "cpuset" / own.lstrip("/") / "cpuset.cpus").write_text("0-1\n")
    (tree / "cpuset" / own.lstrip("/") / "cpuset.mems").write_text("0\n")
    (tree / "pids").mkdir()  # the node is not in it: nothing made there
    (tree / "cpuset" / own.lstrip("/") / "kubelet").mkdir()
    (tree / "cpuset" / own.lstrip("/") / "kubelet" / "cpuset.cpus").write_text("")
    done, root_file = _run_section(tmp_path, tree)
    assert done.returncode == 0, done.stderr
    assert root_file.read_text() == f"{own}/kubelet\n"
    assert (tree / "memory" / own.lstrip("/") / "kubelet").is_dir()
    assert (tree / "cpuset" / own.lstrip("/") / "kubelet" / "cpuset.cpus").read_text() == "0-1\n"
    assert list((tree / "pids").iterdir()) == []


def test_the_entrypoint_passes_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    done = subprocess.run(["shellcheck", "--severity=warning", str(ENTRYPOINT)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout


def test_a_slow_machine_scales_every_cluster_wait_and_kubeadms_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``TKEDISTRO_CLUSTER_TIMEOUT_FACTOR`` (the emulated guest): kubeadm's control-plane and
    discovery timeouts and the tool's own waits grow with it; a bad value names the variable."""
    import yaml

    from tkedistro.cluster import config as cfg
    from tkedistro.core.errors import ClusterError

    conf = cfg.ClusterConfig("1.20", "tke-x", 2, "v1.20.2-tke.1", Path("/r"))
    init = lambda: list(yaml.safe_load_all(cfg.init_config(conf, "n", "172.18.0.2", "t")))  # noqa: E731
    join = lambda: yaml.safe_load(cfg.join_config("n", "172.18.0.3", "172.18.0.2:6443", "t",  # noqa: E731
                                                  "sha256:" + "0" * 64))
    assert init()[1]["apiServer"]["timeoutForControlPlane"] == "240s"
    monkeypatch.setenv(cfg.TIMEOUT_FACTOR_ENV, "6")
    assert init()[1]["apiServer"]["timeoutForControlPlane"] == "1440s"
    assert join()["discovery"]["timeout"] == "1800s"
    assert cfg.scaled(60) == 360
    for bad in ("0.5", "fast", "1000"):
        monkeypatch.setenv(cfg.TIMEOUT_FACTOR_ENV, bad)
        with pytest.raises(ClusterError, match=f"TKEDISTRO_CLUSTER_TIMEOUT_FACTOR='{bad}'"):
            cfg.scaled(1)
