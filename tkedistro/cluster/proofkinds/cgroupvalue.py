"""``cgroup-value``: a cgroup file of the cgroups the kubelet made for the check's own pod
(``kubepods``, ``kubepods/pod<uid>``, the container's) equals or contains a value.

Read with ``grep -H`` inside the pod's node, under the node's cgroup root (the entrypoint
writes it to ``CGROUP_ROOT_FILE``). For the memory controller the pod's memory limit must be
in its cgroup first: that shows the kubelet made the cgroup with memory settings.
``memory.kmem.limit_in_bytes=unlimited`` (kernel-memory accounting left off) is judged with
what this kernel can and cannot show (``judge_kmem``). On a cgroup v2 node (``/sys/fs/cgroup``
is ``cgroup2fs``: one tree, no controller folders) the pod's limit is ``memory.max``, and the
kmem check says what v2 shows instead (``judge_kmem_v2``): v2 has no separate kernel-memory
limit, so the pod's ``memory.max`` and the kernel lines of its ``memory.stat`` are shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

from tkedistro.cluster.proofkinds.base import Outcome, ProofContext
from tkedistro.cluster.proofkinds.pod import MEMORY_LIMIT, ProofPod
from tkedistro.model.proofspec import CgroupValue

NEEDS_POD = True
CGROUP_ROOT_FILE = PurePosixPath("/run/tkedistro-cgroup-root")  # written by the entrypoint
V1_ROOT = PurePosixPath("/sys/fs/cgroup")
MEMORY_LIMIT_FILE = "memory.limit_in_bytes"
KMEM_LIMIT_FILE = "memory.kmem.limit_in_bytes"
KMEM_FILES = (MEMORY_LIMIT_FILE, KMEM_LIMIT_FILE,
              "memory.kmem.usage_in_bytes", "memory.kmem.max_usage_in_bytes")
KMEM_ALWAYS_CHARGED = (4, 6)  # since Linux 4.6 every v1 memory cgroup is charged for kmem
KMEM_EXPECTED = ("no kernel-memory limit; kmem usage judged where the kernel only accounts "
                 "after a limit write (< 4.6)")
V2_FS = "cgroup2fs"  # ``stat -fc %T /sys/fs/cgroup`` on a cgroup v2 node
V2_LIMIT_FILE = "memory.max"
V2_STAT_FILE = "memory.stat"
V2_KERNEL_LINES = ("kernel", "kernel_stack", "slab")  # of memory.stat, those the kernel has
V2_KMEM_NOTE = ("cgroup v2 has no separate kernel-memory limit (kernel memory is charged to "
                "memory.max with the rest), so there is no kmem limit the kubelet could set "
                "or leave off; shown: the pod's memory.max and the kernel lines of memory.stat")


def kernel_version(uname: str) -> tuple[int, int]:
    m = re.match(r"\s*([0-9]+)\.([0-9]+)", uname)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _unlimited(value: str) -> bool:
    return value.isdigit() and int(value) >= 2**62  # PAGE_COUNTER_MAX pages, any page size


def _is_kmem_off(spec: CgroupValue) -> bool:
    return spec.file == KMEM_LIMIT_FILE and spec.equals == "unlimited"


def _shown(cgroups: Mapping[str, Mapping[str, str]], controller: str) -> str:
    return "; ".join(f"{name}: " + " ".join(f"{f.removeprefix(controller + '.')}={v}"
                                            for f, v in files.items())
                     for name, files in cgroups.items())


def _limit_problem(cgroups: Mapping[str, Mapping[str, str]], pod_cgroup: str,
                   memory_limit: int, limit_file: str = MEMORY_LIMIT_FILE) -> list[str]:
    if cgroups.get(pod_cgroup, {}).get(limit_file) != str(memory_limit):
        return [f"{pod_cgroup}: {limit_file} is not the pod's limit {memory_limit}"]
    return []


def judge_kmem_v2(cgroups: Mapping[str, Mapping[str, str]], pod_cgroup: str,
                  memory_limit: int) -> tuple[bool, str]:
    """What a cgroup v2 node shows for "kmem accounting left off": the pod's ``memory.max``
    must be its limit (the kubelet made the cgroup with memory settings); there is no
    kernel-memory limit in v2 to judge, so the kernel memory lines are shown, not judged."""
    problems = _limit_problem(cgroups, pod_cgroup, memory_limit, V2_LIMIT_FILE)
    return (not problems), "; ".join([*problems, V2_KMEM_NOTE, _shown(cgroups, "memory")])


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
    problems = _limit_problem(cgroups, pod_cgroup, memory_limit)
    shown = _shown(cgroups, "memory")
    if not any(KMEM_LIMIT_FILE in f for f in cgroups.values()):
        return (not problems), "; ".join([*problems, "this kernel has no "
                                          "memory.kmem.* files: nothing can enable kmem", shown])
    for name, files in cgroups.items():
        if not _unlimited(files.get(KMEM_LIMIT_FILE, "")):
            problems.append(f"{name}: a kernel-memory limit is set")
        if kernel < KMEM_ALWAYS_CHARGED and files.get("memory.kmem.usage_in_bytes") != "0":
            problems.append(f"{name}: kernel memory is being accounted")
    note = ("kernel {}.{} < 4.6: kmem accounted only after a limit write; usage 0 = off"
            if kernel < KMEM_ALWAYS_CHARGED else
            "kernel {}.{} >= 4.6 charges kmem to every v1 memory cgroup, so usage is not 0 and "
            "cannot show the patch; no kmem limit is all that is left to see")
    evidence = "; ".join([*problems, note.format(*kernel), shown])
    return (not problems), evidence


def _wanted(spec: CgroupValue) -> str:
    return spec.equals if spec.equals is not None else f"a value containing {spec.contains!r}"


def expected_text(spec: CgroupValue) -> str:
    return KMEM_EXPECTED if _is_kmem_off(spec) else f"{spec.file} is {_wanted(spec)}"


def _holds(spec: CgroupValue, value: str) -> bool:
    if spec.equals == "unlimited":
        return _unlimited(value)
    return value == spec.equals if spec.equals is not None else (spec.contains or "") in value


def judge_value(spec: CgroupValue, cgroups: Mapping[str, Mapping[str, str]],
                pod_cgroup: str, memory_limit: int, v2: bool = False) -> tuple[bool, str]:
    """``spec.file`` in each cgroup against ``equals``/``contains``."""
    limit_file = V2_LIMIT_FILE if v2 else MEMORY_LIMIT_FILE
    problems = _limit_problem(cgroups, pod_cgroup, memory_limit, limit_file) \
        if spec.controller == "memory" and pod_cgroup in cgroups else []
    for name, files in cgroups.items():
        value = files.get(spec.file)
        if value is None:
            problems.append(f"{name}: no {spec.file}")
        elif not _holds(spec, value):
            problems.append(f"{name}: {spec.file} is {value!r}, expected {_wanted(spec)}")
    return (not problems), "; ".join([*problems, _shown(cgroups, spec.controller)])


def files_read(spec: CgroupValue, v2: bool = False) -> tuple[str, ...]:
    if _is_kmem_off(spec):
        return (V2_LIMIT_FILE, V2_STAT_FILE) if v2 else KMEM_FILES
    first = ((V2_LIMIT_FILE if v2 else MEMORY_LIMIT_FILE),) if spec.controller == "memory" \
        else ()
    return tuple(dict.fromkeys((*first, spec.file)))


def parse_cgroup_files(output: str, folder: str, files: Sequence[str] = KMEM_FILES
                       ) -> dict[str, str]:
    """``grep -H '' FILES`` output (``path:value`` lines) as {file name: value}."""
    found = {}
    for line in output.splitlines():
        path, sep, value = line.partition(":")
        if sep and path.startswith(folder + "/"):
            name = path.rpartition("/")[2]
            if name == V2_STAT_FILE:  # ``key value`` lines: the kernel memory ones, by key
                key, _, number = value.strip().partition(" ")
                if key in V2_KERNEL_LINES:
                    found[f"{name}:{key}"] = number
            else:
                found[name] = value.strip()
    stat = [f"{V2_STAT_FILE}:{key}" for key in V2_KERNEL_LINES] * (V2_STAT_FILE in files)
    return {f: found[f] for f in [*files, *stat] if f in found}


def cgroup_folders(spec: CgroupValue, root: str, pod: ProofPod,
                   v2: bool = False) -> dict[str, PurePosixPath]:
    """{name shown: folder} of the cgroups the spec names, in its order (v1: under the
    controller's hierarchy; v2: in the node's one tree)."""
    hierarchy = V1_ROOT if v2 else V1_ROOT / spec.controller
    base = hierarchy / root.lstrip("/") / "kubepods"
    names = {"kubepods": ("kubepods", base), "pod": (f"kubepods/pod{pod.uid}",
                                                     base / f"pod{pod.uid}"),
             "container": (f"kubepods/pod{pod.uid}/{pod.container_id}",
                           base / f"pod{pod.uid}" / pod.container_id)}
    return dict(names[c] for c in spec.cgroups)


def check_text(spec: CgroupValue, pod: ProofPod) -> str:
    made = [f"pod {pod.namespace}/{pod.name} (memory limit {MEMORY_LIMIT})"] * \
        ("pod" in spec.cgroups or "container" in spec.cgroups)
    made += ["kubepods"] * ("kubepods" in spec.cgroups)
    return (f"{spec.controller} cgroups the kubelet on {pod.node} made for "
            f"{' and for '.join(made)}: {expected_text(spec)}")


def prove(ctx: ProofContext, spec: CgroupValue) -> Outcome:
    pod = ctx.need_pod()
    root = ctx.engine.exec(pod.node, ["cat", str(CGROUP_ROOT_FILE)]).output.strip()
    uname = ctx.engine.exec(pod.node, ["uname", "-r"]).output.strip()
    v2 = ctx.engine.exec(pod.node, ["stat", "-fc", "%T", str(V1_ROOT)]).output.strip() == V2_FS
    files, cgroups = files_read(spec, v2), {}
    for name, folder in cgroup_folders(spec, root, pod, v2).items():
        got = ctx.engine.exec(pod.node, ["grep", "-H", "", *(str(folder / f) for f in files)])
        cgroups[name] = parse_cgroup_files(got.output, str(folder), files)
    pod_cgroup = f"kubepods/pod{pod.uid}"
    if _is_kmem_off(spec):
        passed, evidence = judge_kmem_v2(cgroups, pod_cgroup, MEMORY_LIMIT) if v2 else \
            judge_kmem(kernel_version(uname), cgroups, pod_cgroup, MEMORY_LIMIT)
    else:
        passed, evidence = judge_value(spec, cgroups, pod_cgroup, MEMORY_LIMIT, v2)
    version = ", cgroup v2" if v2 else ""
    return Outcome(check_text(spec, pod), passed,
                   f"{pod.node} {root} (uname {uname}{version}): {evidence}")
