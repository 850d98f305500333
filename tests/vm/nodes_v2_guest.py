"""Runs INSIDE the cgroup v2 guest (``test_nodes_v2.py`` starts it there): one node container
made by tkedistro's own code on the guest's Docker (cgroup v2, systemd driver), its entrypoint's
cgroup set-up, containerd and the release's kubelet (standalone: a static pod folder, no API
server), and a static etcd pod with cgroup limits, read back under the node's cgroup.

Prints one JSON object (``checks``: name -> [passed, evidence]; ``seconds``: step -> time) as
its last line and exits 0 only when every check passed. Usage (in the guest)::

    PYTHONPATH=SRC:SITE python3 nodes_v2_guest.py NODE_IMAGE ETCD_IMAGE PAUSE_IMAGE IMAGES_DIR

``IMAGES_DIR/images.tar`` holds etcd and pause (``docker save`` on the host); it is mounted
into the node read-only and imported into its containerd.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from tkedistro.cluster.cgroups import detect_layout
from tkedistro.cluster.config import ClusterConfig, init_config
from tkedistro.cluster.lifecycle import node_spec, remove_cluster
from tkedistro.cluster.nodeimage import node_files
from tkedistro.cluster.proofkinds import cgroupvalue
from tkedistro.engine.docker_nodes import DockerNodes
from tkedistro.engine.protocols import Mount, NodeInfo, NodeSpec
from tkedistro.model.proofspec import CgroupValue, parse_proof

MEMORY = 268435456  # the static pod's memory limit (256 MiB)
CPU_MAX = "20000 100000"  # its cpu limit, 200m
IMAGES_IN_NODE = PurePosixPath("/tkedistro-images")
MANIFESTS = PurePosixPath("/etc/tkedistro-vm/manifests")
KUBELET_CONFIG = PurePosixPath("/etc/tkedistro-vm/kubelet.yaml")
checks: dict[str, tuple[bool, str]] = {}
seconds: dict[str, float] = {}


def timed(step: str, action: Callable[[], object]) -> object:
    start = time.monotonic()
    try:
        return action()
    finally:
        seconds[step] = round(time.monotonic() - start, 1)


def check(name: str, passed: bool, evidence: str) -> None:
    checks[name] = (passed, evidence.strip()[:2000])


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def derived_image(config: ClusterConfig, base: str, work: Path) -> str:
    """The node image with this checkout's entrypoint and containerd config (the cached
    image on the host was built before them)."""
    names = {"tkedistro-node": "/usr/local/bin/tkedistro-node",
             "containerd.toml": "/etc/containerd/config.toml"}
    lines = [f"FROM {base}"]
    for name, data in node_files(config).items():
        if name in names:
            (work / name).write_bytes(data)
            lines.append(f"COPY {name} {names[name]}")
    (work / "Dockerfile").write_text("\n".join(lines) + "\n")
    sh("chmod", "0755", str(work / "tkedistro-node"))
    tag = "tkedistro.vm/node:v2"
    sh("docker", "build", "-q", "-t", tag, str(work))
    return tag


def kubelet_config(config: ClusterConfig) -> str:
    """The cluster's own KubeletConfiguration (``config.init_config``) plus a static pod
    folder, standalone: no API server, anonymous read-only access on the node only."""
    text = init_config(config, config.node_names[0], "10.0.0.1", "abcdef.0123456789abcdef")
    doc = next(d for d in text.split("---\n") if "kind: KubeletConfiguration" in d)
    return doc + (f"staticPodPath: {MANIFESTS}\n"
                  "authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}\n"
                  "authorization: {mode: AlwaysAllow}\n")


ETCD_POD = """apiVersion: v1
kind: Pod
metadata: {{name: etcd-v2, namespace: kube-system}}
spec:
  hostNetwork: true
  containers:
  - name: etcd
    image: {image}
    imagePullPolicy: Never
    command: [etcd, --data-dir=/tmp/etcd, --listen-client-urls=http://127.0.0.1:23790,
              --advertise-client-urls=http://127.0.0.1:23790,
              --listen-peer-urls=http://127.0.0.1:23800]
    resources:
      limits: {{cpu: 200m, memory: "{memory}"}}
      requests: {{cpu: 200m, memory: "{memory}"}}
"""


def wait(what: str, probe: Callable[[], bool], timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if probe():
            return True
        time.sleep(2)
    check(f"waited for {what}", False, f"not within {timeout_s:.0f} s")
    return False


def node_cgroups(engine: DockerNodes, node: str) -> None:
    def cat(path: str) -> str:
        return engine.exec(node, ["cat", path]).output.strip()
    check("entrypoint: cgroup root /kubelet", cat("/run/tkedistro-cgroup-root") == "/kubelet",
          cat("/run/tkedistro-cgroup-root"))
    check("entrypoint: no process left in the node's root cgroup",
          cat("/sys/fs/cgroup/cgroup.procs") == "", cat("/sys/fs/cgroup/cgroup.procs"))
    check("entrypoint: processes moved to /init (pid 1 too)",
          "1" in cat("/sys/fs/cgroup/init/cgroup.procs").split(),
          cat("/sys/fs/cgroup/init/cgroup.procs"))
    available = set(cat("/sys/fs/cgroup/cgroup.controllers").split())
    for folder in ("/sys/fs/cgroup", "/sys/fs/cgroup/kubelet"):
        enabled = set(cat(f"{folder}/cgroup.subtree_control").split())
        check(f"entrypoint: every controller delegated in {folder}",
              available <= enabled and {"cpu", "memory", "pids"} <= enabled,
              f"available {sorted(available)}, enabled {sorted(enabled)}")


def start_kubelet(engine: DockerNodes, node: str, config: ClusterConfig, etcd: str) -> None:
    engine.put_file(node, KUBELET_CONFIG, kubelet_config(config).encode())
    engine.put_file(node, MANIFESTS / "etcd.yaml",
                    ETCD_POD.format(image=etcd, memory=MEMORY).encode())
    flags = ("--container-runtime=remote "
             "--container-runtime-endpoint=unix:///run/containerd/containerd.sock "
             f"--config={KUBELET_CONFIG} --cgroup-root=$(cat /run/tkedistro-cgroup-root)")
    engine.exec(node, ["sh", "-c", f"nohup kubelet {flags} > /var/log/kubelet.log 2>&1 &"])


def kmem_on_v2(engine: DockerNodes, node: str) -> None:
    """What ``cluster prove`` shows for the kmem patch (0003's own trailer) on this node's
    real files: the pod's memory.max and the kernel lines of its memory.stat."""
    spec = parse_proof("cgroup-value controller=memory file=memory.kmem.limit_in_bytes "
                       "equals=unlimited cgroups=kubepods,pod", "0003")
    assert isinstance(spec, CgroupValue)
    pod = engine.exec(node, ["sh", "-c", "ls -d /sys/fs/cgroup/kubelet/kubepods/pod*"]).output
    uid = pod.strip().splitlines()[0].rpartition("/pod")[2]
    folders = {"kubepods": PurePosixPath("/sys/fs/cgroup/kubelet/kubepods"),
               f"kubepods/pod{uid}": PurePosixPath(f"/sys/fs/cgroup/kubelet/kubepods/pod{uid}")}
    wanted, cgroups = cgroupvalue.files_read(spec, v2=True), {}
    for name, folder in folders.items():
        got = engine.exec(node, ["grep", "-H", "", *(str(folder / f) for f in wanted)])
        cgroups[name] = cgroupvalue.parse_cgroup_files(got.output, str(folder), wanted)
    passed, evidence = cgroupvalue.judge_kmem_v2(cgroups, f"kubepods/pod{uid}", MEMORY)
    check("cgroup-value (0003) on the node's real v2 files", passed
          and "memory.stat:kernel" in cgroups[f"kubepods/pod{uid}"], evidence)


def pod_limits(engine: DockerNodes, node: str, container_id: str) -> bool:
    found = engine.exec(node, ["sh", "-c", "grep -H '' /sys/fs/cgroup/kubelet/kubepods/pod*/"
                                           "memory.max /sys/fs/cgroup/kubelet/kubepods/pod*/"
                                           "cpu.max"]).output
    memory = [line for line in found.splitlines() if line.endswith(f":{MEMORY}")]
    cpu = [line for line in found.splitlines() if line.endswith(f":{CPU_MAX}")]
    if not (memory and cpu):
        return False
    check("static pod: memory.max and cpu.max in the node's cgroup", True, found)
    scope = sh("sh", "-c", f"grep -l . /sys/fs/cgroup/system.slice/docker-{container_id}.scope/"
                           "kubelet/kubepods/pod*/memory.max || true")
    check("static pod: its cgroup is under the node's own cgroup on the guest",
          bool(scope.strip()) and f"docker-{container_id}.scope" in scope, scope)
    return True


def main(node_image: str, etcd: str, pause: str, images_dir: str) -> int:
    engine = DockerNodes()
    config = ClusterConfig(release="1.20", name="tke-vm-v2", nodes=1, version="v1.20.2-tke.1",
                           root=Path(tempfile.mkdtemp()))
    layout = detect_layout(engine)
    check("host: cgroup v2 with Docker's systemd driver",
          (layout.version, layout.driver) == (2, "systemd"), layout.describe())
    work = Path(tempfile.mkdtemp())
    image = str(timed("build the derived node image", lambda: derived_image(config, node_image,
                                                                           work)))
    images = Path(images_dir)
    registry = work / "registry"
    registry.mkdir()
    spec = node_spec(config, layout, 0, image, registry)
    spec = dataclasses.replace(spec, mounts=(*spec.mounts, Mount(images, IMAGES_IN_NODE, True)))
    check("node spec: private cgroup namespace, no host tree, no parent",
          spec.private_cgroupns and not spec.host_cgroup_tree and spec.cgroup_parent == "",
          repr(spec))
    try:
        return run_node(engine, config, spec, etcd, pause)
    finally:
        removed = remove_cluster(engine, config, layout)
        check("down: nothing at host level besides the container, volume and network",
              not any(r.startswith("cgroup") for r in removed), ", ".join(removed))


def start_node(engine: DockerNodes, spec: NodeSpec) -> NodeInfo:
    start = time.monotonic()
    try:
        return engine.start_node(spec)
    finally:
        seconds["start the node container"] = round(time.monotonic() - start, 1)


def run_node(engine: DockerNodes, config: ClusterConfig, spec: NodeSpec, etcd: str,
             pause: str) -> int:
    engine.create_network(config.network, config.labels)
    node = start_node(engine, spec)
    name = config.node_names[0]
    inspect = json.loads(sh("docker", "inspect", name))[0]["HostConfig"]
    check("node: not privileged, own cgroup namespace",
          not inspect["Privileged"] and inspect["CgroupnsMode"] == "private",
          f"Privileged={inspect['Privileged']} CgroupnsMode={inspect['CgroupnsMode']}")
    if timed("containerd ready", lambda: wait("containerd", lambda: engine.exec(
            name, ["ctr", "version"]).ok, 300)):
        check("containerd runs", True, engine.exec(name, ["ctr", "version"]).output)
    node_cgroups(engine, name)
    imported = timed("import etcd and pause", lambda: engine.exec(name, [
        "ctr", "-n", "k8s.io", "images", "import", str(IMAGES_IN_NODE / "images.tar")]))
    tagged = engine.exec(name, ["ctr", "-n", "k8s.io", "images", "tag", "--force", pause,
                                config.sandbox_image])  # the sandbox image containerd runs
    check("etcd and pause in the node's containerd", tagged.ok,
          f"{getattr(imported, 'output', '')}{tagged.output}")
    start_kubelet(engine, name, config, etcd)
    timed("static pod running", lambda: wait("the static etcd pod's cgroup limits", lambda:
                                             pod_limits(engine, name, node.id), 600))
    def health() -> str:
        return engine.exec(name, ["curl", "-s", "http://127.0.0.1:23790/health"]).output
    timed("etcd healthy", lambda: wait("etcd's health", lambda: '"health":"true"' in health(),
                                       300))
    check("static pod: etcd answers its health check", '"health":"true"' in health(),
          health())
    kmem_on_v2(engine, name)
    kubelet = engine.exec(name, ["sh", "-c", "ps -o args= -C kubelet; "
                                             "tail -n 5 /var/log/kubelet.log"]).output
    check("the release's kubelet runs", "kubelet" in kubelet and "--cgroup-root=/kubelet"
          in kubelet, kubelet)
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = 1
    try:
        code = main(*sys.argv[1:5])
    except Exception as exc:  # reported with the checks so far
        check("ran to the end", False, f"{type(exc).__name__}: {exc}")
    seconds["total"] = round(time.monotonic() - started, 1)
    ok = code == 0 and all(p for p, _ in checks.values())
    print(json.dumps({"checks": checks, "seconds": seconds, "passed": ok}))
    sys.exit(0 if ok else 1)
