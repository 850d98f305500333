"""``metric-labels``: a kubelet metrics endpoint (through the API server's node proxy) for
the check's own pod: its container's series carry the container, pod, namespace and image
labels, its sandbox's (when the spec names ``sandbox``) that container label with pod and
namespace, and no series of a container cgroup of the pod has an empty container label.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tkedistro.cluster import bootstrap
from tkedistro.cluster.proofkinds.base import Outcome, ProofContext
from tkedistro.cluster.proofkinds.pod import ProofPod
from tkedistro.model.proofspec import MetricLabels

NEEDS_POD = True
WAIT_S = 60  # cAdvisor lists a new container within its housekeeping interval
SHOWN = "container_cpu_usage_seconds_total"  # the series shown for each group, when there

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


def _pick(series: Sequence[Series]) -> Series:
    return next((s for s in series if s.name == SHOWN), series[0])


def runtime_image(info: str) -> str:
    """The image containerd records for a container (``ctr containers info``), which is what
    cAdvisor labels it with: one of the image's references, not always the pod spec's."""
    try:
        return str(json.loads(info).get("Image", ""))
    except ValueError:
        return ""


def _of_pod_cgroup(s: Series, pod: ProofPod) -> bool:
    return s.labels.get("id", "").rstrip("/").endswith(f"pod{pod.uid}")


def _unlabelled(series: Sequence[Series], pod: ProofPod) -> str:
    blank = sum(1 for s in series if s.labels.get("id", "").rstrip("/").rpartition("/")[0]
                .endswith(f"pod{pod.uid}"))
    return (f"no series carries pod={pod.name!r} namespace={pod.namespace!r} "
            f"({blank} series of its container cgroups have empty labels: the "
            "kubelet's cAdvisor did not get them from containerd; is its "
            "--containerd socket the node's?)")


def judge_metrics(series: Sequence[Series], pod: ProofPod, image: str,
                  sandbox: str | None = "POD") -> tuple[bool, str]:
    """The sandbox by its ``sandbox`` container label (when given) and the container by its
    name and ``image`` (containerd's record of it); nothing of the pod with container="" but
    the pod cgroup's own aggregate (id ending in pod<uid>)."""
    mine = [s for s in series if s.labels.get("pod") == pod.name
            and s.labels.get("namespace") == pod.namespace]
    if not mine:
        return False, _unlabelled(series, pod)
    box = [s for s in mine if sandbox is not None and s.labels.get("container") == sandbox]
    app = [s for s in mine if s.labels.get("container") == pod.container
           and s.labels.get("image") == image and image]
    network = [s for s in box if s.name.startswith("container_network_")]
    unlabelled = [s for s in mine if not s.labels.get("container")
                  and not _of_pod_cgroup(s, pod)]
    problems = []
    if sandbox is not None and not box:
        problems.append(f'no series with container="{sandbox}" (the sandbox)')
    if not app:
        problems.append(f'no series with container="{pod.container}" image="{image}" '
                        f"(containerd's image of the container)")
    if unlabelled:
        problems.append(f'{len(unlabelled)} series of a container cgroup with container="": '
                        f"{unlabelled[0].labels.get('id', '')}")
    shown = [_pick(x).show() for x in (box, network, app) if x]
    if image and image != pod.image:
        shown.append(f"containerd records the image as {image} (pod spec: {pod.image})")
    evidence = f"{len(mine)} series of {pod.namespace}/{pod.name} on {pod.node}: " + \
        "; ".join(shown)
    return (not problems), ("; ".join(problems) + " | " + evidence if problems else evidence)


def check_text(spec: MetricLabels, pod: ProofPod) -> str:
    box = (f'the pause sandbox as container="{spec.sandbox}" with pod and namespace, '
           if spec.sandbox is not None else "")
    return (f"{spec.endpoint} of {pod.node} for pod {pod.namespace}/{pod.name}: {box}"
            f'container "{pod.container}" with pod, namespace and image')


def prove(ctx: ProofContext, spec: MetricLabels) -> Outcome:
    pod = ctx.need_pod()
    path = f"/api/v1/nodes/{pod.node}/proxy{spec.endpoint}"
    image = runtime_image(ctx.engine.exec(pod.node, ["ctr", "-n", "k8s.io", "containers",
                                                     "info", pod.container_id]).output)
    deadline = time.monotonic() + WAIT_S
    while True:
        got = bootstrap.kubectl(ctx.engine, ctx.control, "get", "--raw", path)
        passed, evidence = judge_metrics(parse_metrics(got.output), pod, image, spec.sandbox) \
            if got.ok else \
            (False, f"kubectl get --raw {path}: exit {got.exit_code}: {got.output[-300:]}")
        if passed or time.monotonic() > deadline:
            return Outcome(check_text(spec, pod), passed, evidence)
        time.sleep(3)
