"""Each patch of the 1.20 series seen working on the running local cluster.

``prove_series`` runs one check per patch, every command inside a node
(``NodeEngine.exec``: curl, kubectl with the node's admin.conf, cat of cgroup files), never on
the host. Parsing and the pass/fail decisions are pure functions below the runners, so unit
tests feed them what a node printed.

- 0001: ``PUT /debug/flags/v`` on kube-controller-manager's secure port (127.0.0.1:10257 in
  the control-plane node): refused without credentials, ``5`` accepted and ``loud`` refused
  for a ``system:masters`` client certificate; the verbosity of the static pod's manifest is
  put back afterwards (the endpoint answers GET with 406, so it cannot be read).
- 0002: the kubelet's ``/metrics/cadvisor`` for a pod the check starts: its pause sandbox as
  ``container="POD"`` with pod and namespace, its container with name, pod, namespace, image.
- 0003: the memory cgroups the kubelet made for that pod (it has a memory limit, so the
  kubelet's libcontainer went through ``EnableKernelMemoryAccounting``) carry no kmem limit;
  see ``judge_kmem`` for what else this kernel can and cannot show.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from tkedistro.cluster import bootstrap
from tkedistro.cluster.config import IMAGE_PATH, NODE_REGISTRY, PAUSE_TAG
from tkedistro.cluster.lifecycle import ClusterState
from tkedistro.core.render import yaml_documents
from tkedistro.engine.protocols import NodeEngine, RunResult

KCM_PATCH = "0001-kube-controller-manager-dynamic-log-level.patch"
METRICS_PATCH = "0002-kubelet-containerd-container-metric-labels.patch"
KMEM_PATCH = "0003-kubelet-kmem-accounting-off.patch"

FLAGS_URL = "https://127.0.0.1:10257/debug/flags/v"
PKI = PurePosixPath("/etc/kubernetes/pki")
# kubeadm v1.20 issues this client certificate with O=system:masters (checked before use)
ADMIN_CERT, ADMIN_KEY = PKI / "apiserver-kubelet-client.crt", PKI / "apiserver-kubelet-client.key"
KCM_MANIFEST = PurePosixPath("/etc/kubernetes/manifests/kube-controller-manager.yaml")
SET_OK = "successfully set klog.logging.verbosity to 5"

NAMESPACE, POD, CONTAINER = "tkedistro-proofs", "patch-proof", "app"
IMAGE = f"{NODE_REGISTRY}/{IMAGE_PATH}/pause:{PAUSE_TAG}"  # in every cluster's registry
MEMORY_LIMIT = 32 * 1024 * 1024
CGROUP_ROOT_FILE = PurePosixPath("/run/tkedistro-cgroup-root")  # written by the entrypoint
KMEM_FILES = ("memory.limit_in_bytes", "memory.kmem.limit_in_bytes",
              "memory.kmem.usage_in_bytes", "memory.kmem.max_usage_in_bytes")
KMEM_ALWAYS_CHARGED = (4, 6)  # since Linux 4.6 every v1 memory cgroup is charged for kmem
METRICS_WAIT_S = 60


@dataclass(frozen=True)
class Proof:
    patch: str  # the patch file name
    check: str  # what was checked, in a sentence
    passed: bool
    evidence: str  # what the cluster answered, short

    def to_json(self) -> dict[str, object]:
        return {"patch": self.patch, "check": self.check, "passed": self.passed,
                "evidence": self.evidence}


@dataclass(frozen=True)
class ProofPod:
    namespace: str
    name: str
    uid: str
    node: str
    container: str
    image: str  # as the pod spec names it
    container_id: str  # containerd's id of the container


def prove_series(engine: NodeEngine, state: ClusterState,
                 patches: Sequence[str] | None = None) -> list[Proof]:
    """One ``Proof`` per patch of ``patches`` (default: all three) that has a check here."""
    wanted = set(patches) if patches is not None else {KCM_PATCH, METRICS_PATCH, KMEM_PATCH}
    control = state.nodes[0]
    proofs = []
    if KCM_PATCH in wanted:
        proofs.append(prove_kcm_log_level(engine, control))
    if wanted & {METRICS_PATCH, KMEM_PATCH}:
        with proof_pod(engine, control) as pod:
            if METRICS_PATCH in wanted:
                proofs.append(prove_metric_labels(engine, control, pod))
            if KMEM_PATCH in wanted:
                proofs.append(prove_kmem_off(engine, pod))
    return proofs


# --- 0001: kube-controller-manager /debug/flags/v -------------------------------------------

@dataclass(frozen=True)
class HttpAnswer:
    status: int  # 0: no HTTP answer at all
    body: str

    def show(self) -> str:
        """The code and the body, or the message of a Kubernetes ``Status`` body."""
        try:
            text = str(json.loads(self.body)["message"])
        except (ValueError, KeyError, TypeError):
            text = " ".join(self.body.split())
        return f"{self.status or 'no answer'} {text[:140]}".strip()


def put_flag(engine: NodeEngine, node: str, body: str, admin: bool) -> HttpAnswer:
    """curl inside the node. ``-k``: kcm serves a self-signed certificate it made at start
    (kubeadm gives it none), so there is no CA to check it against."""
    creds = ["--cert", str(ADMIN_CERT), "--key", str(ADMIN_KEY)] if admin else []
    return parse_curl(engine.exec(node, [
        "curl", "-sSk", "--max-time", "10", "-X", "PUT", "--data", body, *creds,
        "-w", "\n%{http_code}", FLAGS_URL]))


def parse_curl(result: RunResult) -> HttpAnswer:
    """curl's output with ``-w '\\n%{http_code}'`` appended: body, then the code line."""
    body, _, code = result.output.rstrip("\n").rpartition("\n")
    if not code.strip().isdigit():
        return HttpAnswer(0, result.output.strip())
    return HttpAnswer(int(code), body if result.ok else result.output.strip())


def manifest_verbosity(manifest: str) -> int:
    """The ``--v``/``-v`` of the static pod's command; klog's default 0 without one."""
    found = re.search(r"^\s*-\s*--?v=(\d+)\s*$", manifest, re.MULTILINE)
    return int(found.group(1)) if found else 0


def subject_groups(subject: str) -> list[str]:
    """The O= values of ``openssl x509 -noout -subject`` (1.1/3.x and 1.0 formats)."""
    return [g.strip() for g in re.findall(r"(?:^|[,/=]\s*|\s)O\s*=\s*([^,/\n]+)", subject)]


def judge_kcm(anonymous: HttpAnswer, admin_set: HttpAnswer, admin_bad: HttpAnswer,
              groups: Sequence[str], restore: HttpAnswer, original: int) -> tuple[bool, str]:
    """401 or 403 without credentials (kcm's delegated authentication lets an anonymous request
    through as system:anonymous and RBAC refuses it: 403; 401 if anonymous requests are off),
    200 with the verbosity message for ``5`` and 400 for ``loud`` as an admin, restored.
    Only the admin's answers tell the patch: kcm authorizes before it routes, so an unpatched
    kcm refuses the anonymous PUT the same way and answers the admin 404."""
    problems = []
    if anonymous.status not in (401, 403):
        problems.append(f"without credentials: {anonymous.show()} (expected 401 or 403)")
    if "system:masters" not in groups:
        problems.append(f"client certificate groups {list(groups)}: not in system:masters")
    if admin_set.status != 200 or SET_OK not in admin_set.body:
        problems.append(f"admin PUT 5: {admin_set.show()} (expected 200 {SET_OK!r})")
    if admin_bad.status != 400:
        problems.append(f"admin PUT loud: {admin_bad.show()} (expected 400)")
    if restore.status != 200:
        problems.append(f"restoring verbosity {original}: {restore.show()}")
    why = {403: " [403: anonymous is authenticated as system:anonymous, RBAC refuses]",
           401: " [401: anonymous requests are not authenticated]"}.get(anonymous.status, "")
    evidence = "; ".join([
        f"no credentials -> {anonymous.show()}{why}",
        f"system:masters cert, PUT 5 -> {admin_set.show()}",
        f"PUT loud -> {admin_bad.show()}",
        f"restored to {original} -> {restore.status or 'no answer'}"])
    if problems:
        return False, "; ".join(problems) + " | " + evidence
    return True, evidence


def prove_kcm_log_level(engine: NodeEngine, control: str) -> Proof:
    check = (f"PUT {FLAGS_URL} in {control}: refused without credentials, 200 for 5 and 400 "
             "for 'loud' as system:masters, then the manifest's verbosity put back")
    subject = engine.exec(control, ["openssl", "x509", "-noout", "-subject", "-in",
                                    str(ADMIN_CERT)])
    manifest = engine.exec(control, ["cat", str(KCM_MANIFEST)])
    original = manifest_verbosity(manifest.output) if manifest.ok else 0
    try:
        anonymous = put_flag(engine, control, "5", admin=False)
        admin_set = put_flag(engine, control, "5", admin=True)
        admin_bad = put_flag(engine, control, "loud", admin=True)
    finally:
        restore = put_flag(engine, control, str(original), admin=True)
    passed, evidence = judge_kcm(anonymous, admin_set, admin_bad,
                                 subject_groups(subject.output), restore, original)
    return Proof(KCM_PATCH, check, passed, evidence)


# --- the pod 0002 and 0003 look at ------------------------------------------------------------

def pod_manifest() -> str:
    limits = {"cpu": "50m", "memory": str(MEMORY_LIMIT)}  # Guaranteed: kubepods/pod<uid>
    return yaml_documents(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD, "namespace": NAMESPACE},
         "spec": {"terminationGracePeriodSeconds": 1, "containers": [
             {"name": CONTAINER, "image": IMAGE, "imagePullPolicy": "IfNotPresent",
              "resources": {"requests": limits, "limits": limits}}]}})


def read_pod(data: Mapping[str, Any]) -> ProofPod:
    """The pod as ``kubectl get -o json`` shows it once it is Ready."""
    meta, spec = data["metadata"], data["spec"]
    container = spec["containers"][0]
    status = data["status"]["containerStatuses"][0]
    return ProofPod(meta["namespace"], meta["name"], meta["uid"], spec["nodeName"],
                    container["name"], container["image"],
                    str(status.get("containerID", "")).removeprefix("containerd://"))


def _delete_namespace(engine: NodeEngine, control: str) -> None:
    bootstrap.kubectl(engine, control, "delete", "namespace", NAMESPACE, "--ignore-not-found",
                      "--timeout=120s")


@contextmanager
def proof_pod(engine: NodeEngine, control: str) -> Iterator[ProofPod]:
    """The check's own pod in its own namespace (a killed run's is removed first); deleted
    after."""
    _delete_namespace(engine, control)
    try:
        bootstrap.apply(engine, control, "tkedistro-proofs", pod_manifest())
        bootstrap.wait_for(f"pod {NAMESPACE}/{POD} Ready", lambda: bootstrap.kubectl(
            engine, control, "-n", NAMESPACE, "wait", "--for=condition=Ready", f"pod/{POD}",
            "--timeout=5s").ok, 120, every_s=1,
            hint=f"docker exec {control} kubectl --kubeconfig {bootstrap.ADMIN} -n {NAMESPACE} "
                 f"describe pod {POD}")
        got = bootstrap.kubectl(engine, control, "-n", NAMESPACE, "get", "pod", POD, "-o", "json")
        yield read_pod(json.loads(got.output))
    finally:
        _delete_namespace(engine, control)


# --- 0002: cAdvisor metric labels ------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}\s")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Series:
    name: str
    labels: Mapping[str, str]

    def show(self, keys: Sequence[str] = ("container", "pod", "namespace", "image")) -> str:
        inner = ",".join(f'{k}="{self.labels.get(k, "")}"' for k in keys)
        return f"{self.name}{{{inner}}}"


def parse_metrics(text: str) -> list[Series]:
    """The labelled samples of Prometheus text format (comments and bare samples skipped)."""
    found = []
    for line in text.splitlines():
        if m := _SAMPLE.match(line):
            labels = {k: v.replace('\\"', '"').replace("\\\\", "\\")
                      for k, v in _LABEL.findall(m.group(2))}
            found.append(Series(m.group(1), labels))
    return found


def _pick(series: Sequence[Series], prefer: str = "container_cpu_usage_seconds_total") -> Series:
    return next((s for s in series if s.name == prefer), series[0])


def runtime_image(info: str) -> str:
    """The image containerd records for a container (``ctr containers info``), which is what
    cAdvisor labels it with: one of the image's references, not always the pod spec's."""
    try:
        return str(json.loads(info).get("Image", ""))
    except ValueError:
        return ""


def judge_metrics(series: Sequence[Series], pod: ProofPod, image: str) -> tuple[bool, str]:
    """The sandbox as container="POD" and the container by its name and ``image`` (containerd's
    record of it); nothing of the pod with container="" but the pod cgroup's own aggregate
    (id ending in pod<uid>)."""
    mine = [s for s in series if s.labels.get("pod") == pod.name
            and s.labels.get("namespace") == pod.namespace]
    if not mine:
        blank = sum(1 for s in series if s.labels.get("id", "").rstrip("/").rpartition("/")[0]
                    .endswith(f"pod{pod.uid}"))
        return False, (f"no series carries pod={pod.name!r} namespace={pod.namespace!r} "
                       f"({blank} series of its container cgroups have empty labels: the "
                       "kubelet's cAdvisor did not get them from containerd; is its "
                       "--containerd socket the node's?)")
    sandbox = [s for s in mine if s.labels.get("container") == "POD"]
    app = [s for s in mine if s.labels.get("container") == pod.container
           and s.labels.get("image") == image and image]
    network = [s for s in sandbox if s.name.startswith("container_network_")]
    unlabelled = [s for s in mine if not s.labels.get("container")
                  and not s.labels.get("id", "").rstrip("/").endswith(f"pod{pod.uid}")]
    problems = []
    if not sandbox:
        problems.append('no series with container="POD" (the sandbox)')
    if not app:
        problems.append(f'no series with container="{pod.container}" image="{image}" '
                        f"(containerd's image of the container)")
    if unlabelled:
        problems.append(f'{len(unlabelled)} series of a container cgroup with container="": '
                        f"{unlabelled[0].labels.get('id', '')}")
    shown = [_pick(x).show() for x in (sandbox, network, app) if x]
    if image and image != pod.image:
        shown.append(f"containerd records the image as {image} (pod spec: {pod.image})")
    evidence = f"{len(mine)} series of {pod.namespace}/{pod.name} on {pod.node}: " + \
        "; ".join(shown)
    return (not problems), ("; ".join(problems) + " | " + evidence if problems else evidence)


def prove_metric_labels(engine: NodeEngine, control: str, pod: ProofPod) -> Proof:
    check = (f"/metrics/cadvisor of {pod.node} for pod {pod.namespace}/{pod.name}: the pause "
             f'sandbox as container="POD" with pod and namespace, container '
             f'"{pod.container}" with pod, namespace and image')
    path = f"/api/v1/nodes/{pod.node}/proxy/metrics/cadvisor"
    image = runtime_image(engine.exec(pod.node, ["ctr", "-n", "k8s.io", "containers", "info",
                                                 pod.container_id]).output)
    deadline = time.monotonic() + METRICS_WAIT_S
    while True:  # cAdvisor lists a new container within its housekeeping interval
        got = bootstrap.kubectl(engine, control, "get", "--raw", path)
        passed, evidence = judge_metrics(parse_metrics(got.output), pod, image) if got.ok else \
            (False, f"kubectl get --raw {path}: exit {got.exit_code}: {got.output[-300:]}")
        if passed or time.monotonic() > deadline:
            return Proof(METRICS_PATCH, check, passed, evidence)
        time.sleep(3)


# --- 0003: kernel-memory accounting ----------------------------------------------------------

def kernel_version(uname: str) -> tuple[int, int]:
    m = re.match(r"\s*(\d+)\.(\d+)", uname)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _unlimited(value: str) -> bool:
    return value.isdigit() and int(value) >= 2**62  # PAGE_COUNTER_MAX pages, any page size


def judge_kmem(kernel: tuple[int, int], cgroups: Mapping[str, Mapping[str, str]],
               pod_cgroup: str, memory_limit: int) -> tuple[bool, str]:
    """What "kmem accounting left off" can show on this kernel, decided from the files.

    Always: the kubelet applied the pod's memory limit (so its libcontainer created the cgroup
    through ``MemoryGroup.Apply``, where the unpatched code enables kmem accounting) and no
    cgroup carries a kernel-memory limit. Before Linux 4.6 accounting starts only with that
    write, so kmem usage must also read 0. Since 4.6 the kernel charges kernel memory to every
    v1 memory cgroup whatever is written (and recent kernels ignore the write), so usage is
    shown, not judged: there the patched and the unpatched kubelet leave the same files.
    """
    problems = []
    shown = "; ".join(f"{name}: " + " ".join(f"{f.removeprefix('memory.')}={v}"
                                             for f, v in files.items())
                      for name, files in cgroups.items())
    if cgroups.get(pod_cgroup, {}).get("memory.limit_in_bytes") != str(memory_limit):
        problems.append(f"{pod_cgroup}: memory.limit_in_bytes is not the pod's limit "
                        f"{memory_limit}")
    if not any("memory.kmem.limit_in_bytes" in f for f in cgroups.values()):
        return (not problems), "; ".join([*problems, "this kernel has no "
                                          "memory.kmem.* files: nothing can enable kmem", shown])
    for name, files in cgroups.items():
        if not _unlimited(files.get("memory.kmem.limit_in_bytes", "")):
            problems.append(f"{name}: a kernel-memory limit is set")
        if kernel < KMEM_ALWAYS_CHARGED and files.get("memory.kmem.usage_in_bytes") != "0":
            problems.append(f"{name}: kernel memory is being accounted")
    note = ("kernel {}.{} < 4.6: kmem accounted only after a limit write; usage 0 = off"
            if kernel < KMEM_ALWAYS_CHARGED else
            "kernel {}.{} >= 4.6 charges kmem to every v1 memory cgroup, so usage is not 0 and "
            "cannot show the patch; no kmem limit is all that is left to see")
    evidence = "; ".join([*problems, note.format(*kernel), shown])
    return (not problems), evidence


def parse_cgroup_files(output: str, folder: str) -> dict[str, str]:
    """``grep -H '' FILES`` output (``path:value`` lines) as {file name: value}."""
    found = {}
    for line in output.splitlines():
        path, sep, value = line.partition(":")
        if sep and path.startswith(folder + "/"):
            found[path.rpartition("/")[2]] = value.strip()
    return {f: found[f] for f in KMEM_FILES if f in found}


def prove_kmem_off(engine: NodeEngine, pod: ProofPod) -> Proof:
    check = (f"memory cgroups the kubelet on {pod.node} made for pod {pod.namespace}/{pod.name} "
             f"(memory limit {MEMORY_LIMIT}) and for kubepods: no kernel-memory limit; kmem "
             "usage judged where the kernel only accounts after a limit write (< 4.6)")
    root = engine.exec(pod.node, ["cat", str(CGROUP_ROOT_FILE)]).output.strip()
    uname = engine.exec(pod.node, ["uname", "-r"]).output.strip()
    base = PurePosixPath("/sys/fs/cgroup/memory") / root.lstrip("/")
    names = {"kubepods": base / "kubepods", f"kubepods/pod{pod.uid}": base / "kubepods" /
             f"pod{pod.uid}"}
    cgroups = {}
    for name, folder in names.items():
        got = engine.exec(pod.node, ["grep", "-H", "", *(str(folder / f) for f in KMEM_FILES)])
        cgroups[name] = parse_cgroup_files(got.output, str(folder))
    passed, evidence = judge_kmem(kernel_version(uname), cgroups, f"kubepods/pod{pod.uid}",
                                  MEMORY_LIMIT)
    return Proof(KMEM_PATCH, check, passed, f"{pod.node} {root} (uname {uname}): {evidence}")
