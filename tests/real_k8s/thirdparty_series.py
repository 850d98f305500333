"""A third-party patch series on the real Kubernetes v1.20.2 tree, as another distro ships it.

Twenty plain ``git diff`` files named the tke-k8s-distro way (``NNNN-TKE-FIX-….patch``), each
made on top of the ones before in a clone of the real tree: a comment or a small function in
a real kubelet file each, and among them the cases a maintainer meets when importing one
(issue 28): two with a binary diff that ``git diff`` wrote without full index lines (only
``--text-only`` imports them), a revert of an upstream pull request, a patch that changes a
function an earlier one added (it needs that one), and a patch changing the licence header of
a file, which the ``v1.20.3-flow`` tag made by ``tag_conflicting_upstream`` changes too.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

SIZE = 20
BINARY = (9, 13)  # binary diffs without full index lines
REVERT = 7  # 0007-TKE-revert-pr63066.patch
NEEDED, NEEDS = 11, 16  # 0016 changes the function 0011 adds
CONFLICT = 5  # changes the licence header the upstream tag changes too
HEADER = "Copyright 2015 The Kubernetes Authors."
DATES = {"GIT_AUTHOR_DATE": "2021-02-02T10:00:00+0800",
         "GIT_COMMITTER_DATE": "2021-02-02T10:00:00+0800"}


@dataclass(frozen=True)
class ThirdParty:
    folder: Path  # the 20 plain diffs
    names: list[str]  # their file names, in series order
    conflict_file: str  # the file 0005 and the upstream tag both change

    def name(self, number: int) -> str:
        return self.names[number - 1]


def git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(DATES, GIT_AUTHOR_NAME="tke", GIT_AUTHOR_EMAIL="tke@example.invalid",
               GIT_COMMITTER_NAME="tke", GIT_COMMITTER_EMAIL="tke@example.invalid",
               GIT_CONFIG_NOSYSTEM="1")
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=True).stdout


def _targets(work: Path) -> list[str]:
    listed = git(work, "ls-files", "pkg/kubelet/cm/*.go", "pkg/kubelet/*.go").split()
    return sorted(p for p in listed if not p.endswith("_test.go")
                  and HEADER in (work / p).read_text(encoding="utf-8").split("\n", 3)[1])


def make_series(work: Path, out: Path) -> ThirdParty:
    """The series as plain diffs in ``out``, made in ``work`` (a clone at v1.20.2; its branch
    ``third-party`` ends with the whole series committed)."""
    git(work, "checkout", "-q", "-B", "third-party")
    out.mkdir(parents=True, exist_ok=True)
    targets = _targets(work)
    conflict = targets[0]
    names = []
    for n in range(1, SIZE + 1):
        slug = _edit(work, n, targets, conflict)
        git(work, "add", "-A")
        diff = git(work, "diff", "--cached", "--no-color")
        name = f"{n:04d}-{slug}.patch"
        (out / name).write_text(diff, encoding="utf-8")
        git(work, "commit", "-q", "-m", slug)
        names.append(name)
    return ThirdParty(out, names, conflict)


def _edit(work: Path, n: int, targets: list[str], conflict: str) -> str:
    """Patch ``n``'s change in ``work``; its file-name slug."""
    if n == CONFLICT:
        _replace(work / conflict, HEADER, "Copyright 2015 The Kubernetes Authors, TKE.")
        return "TKE-FIX-licence-header"
    if n == REVERT:
        path = work / targets[3]
        _append(path, "\n// revert of kubernetes/kubernetes#63066 kept by TKE\n")
        return "TKE-revert-pr63066"
    if n == NEEDED:
        _append(work / targets[1], f"\nfunc tkeQuotaStep{NEEDED}() int {{\n\treturn {NEEDED}\n}}\n")
        return "TKE-FEATURE-quota-step"
    if n == NEEDS:
        _replace(work / targets[1], f"\treturn {NEEDED}\n}}\n", f"\treturn {NEEDED} * 2\n}}\n")
        return "TKE-FIX-quota-step-doubled"
    if n in BINARY:
        data = bytes(range(256)) * 4 + n.to_bytes(2, "big")
        target = work / "pkg" / "kubelet" / "cm" / "testdata" / f"tke-{n}.bin"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    carries = targets[4:]  # never the files the special patches change
    path = work / carries[(n * 7) % len(carries)]
    _append(path, f"\n// TKE carry {n}: kept until upstream takes it\n")
    return f"TKE-FIX-carry-{n}"


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{path}: {old!r} found {text.count(old)} times"
    path.write_text(text.replace(old, new), encoding="utf-8")


def tag_conflicting_upstream(work: Path, upstream: Path, series: ThirdParty, base: str) -> str:
    """``v1.20.3-flow`` in ``upstream``: ``base`` plus an upstream change to the licence header
    patch 0005 changes; its commit SHA."""
    git(work, "checkout", "-q", "-B", "release-flow", base)
    _replace(work / series.conflict_file, HEADER,
             "Copyright 2015 The Kubernetes Authors (upstream).")
    git(work, "commit", "-q", "-am", "header: upstream wording")
    git(work, "tag", "-a", "v1.20.3-flow", "-m", "v1.20.3-flow")
    git(work, "push", "-q", str(upstream), "v1.20.3-flow")
    return git(work, "rev-parse", "HEAD").strip()
