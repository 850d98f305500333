"""The 5-patch series of the real-tier bisect test and its bench (bench/bench_bisect.py).

A new distro (never the persistent one: its 1.20 series stays untouched) pinned to the local
v1.20.2 fixture, whose series is the project's three 1.20 patches with two more: at position 2
an injected patch that halves ``MilliCPUToQuota``'s result in pkg/kubelet/cm/helpers_linux.go
(it compiles; ``TestMilliCPUToQuota`` fails: 200 milli-CPU must give a quota of 20000), at 5 a
harmless note. Patches are written as mails from the fixture's blobs, without a checkout.
"""

from __future__ import annotations

import difflib
import re
import subprocess
from pathlib import Path

from tests.real_k8s.conftest import FIXTURE_TAG, copy_distro

PACKAGE = "./pkg/kubelet/cm/"  # the package the series' 0003 tests; passes on v1.20.2
INJECTED_SUBJECT = "kubelet: halve the CFS quota"
INJECTED_FILE = "pkg/kubelet/cm/helpers_linux.go"
QUOTA_LINE = "\tquota = (milliCPU * period) / MilliCPUToCPU\n"
TRAILERS = "Patch-Kind: carry\nUpstream-Ref: none\nUpstream-Status: not-submitted\n"
HEADER = ("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
          "From: TKE Distro Team <tke-distro@example.invalid>\n"
          "Date: Tue, 2 Feb 2021 10:00:00 +0800\n"
          "Subject: [PATCH] {subject}\n\n{body}\n\n" + TRAILERS + "---\n")


def _blob(upstream: Path, path: str) -> str:
    return subprocess.run(["git", "show", f"{FIXTURE_TAG}:{path}"], cwd=upstream,
                          capture_output=True, text=True, check=True).stdout


def _mail(subject: str, body: str, path: str, old: str, new: str) -> str:
    """A ``git format-patch``-shaped mail changing ``path`` from ``old`` to ``new``."""
    created = not old
    diff = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                "/dev/null" if created else f"a/{path}", f"b/{path}")
    text = "".join(diff)
    if created:  # git's own range for a new file of one line
        text = re.sub(r"^@@ -0,0 \+1,1 @@", "@@ -0,0 +1 @@", text, flags=re.M)
    mode = "new file mode 100644\n" if created else ""
    return (HEADER.format(subject=subject, body=body)
            + f"diff --git a/{path} b/{path}\n{mode}{text}-- \n2.30.2\n\n")


def make_bisect_distro(dest: Path, upstream: Path) -> list[str]:
    """A distro at ``dest`` pinned to ``upstream`` (the v1.20.2 fixture) with the 5-patch
    series; returns the series' files in order."""
    copy_distro(dest, upstream)
    manifest = dest / "releases" / "1.20.yaml"
    text = manifest.read_text(encoding="utf-8")
    real = re.findall(r"(?m)^  - file: (\S+)$", text)
    assert len(real) == 3, f"expected the 3 patches of releases/1.20.yaml, got {real}"
    helpers = _blob(upstream, INJECTED_FILE)
    assert helpers.count(QUOTA_LINE) == 1, f"{INJECTED_FILE} changed: {QUOTA_LINE!r}"
    injected = _mail(INJECTED_SUBJECT, "Injected for the bisect test: breaks TestMilliCPUToQuota.",
                     INJECTED_FILE, helpers,
                     helpers.replace(QUOTA_LINE, QUOTA_LINE.replace("CPU\n", "CPU / 2\n")))
    note = _mail("docs: a TKE note", "Harmless.", "TKE.md", "", "This tree carries TKE patches.\n")
    extra = {"patches/1.20/0101-kubelet-halve-the-CFS-quota.patch": injected,
             "patches/1.20/0102-docs-a-TKE-note.patch": note}
    for name, mail in extra.items():
        (dest / name).write_text(mail, encoding="utf-8")
    series = [real[0], *list(extra)[:1], real[1], real[2], *list(extra)[1:]]
    head, _, _ = text.partition("patches:\n")
    manifest.write_text(head + "patches:\n" + "".join(f"  - file: {f}\n" for f in series),
                        encoding="utf-8")
    return series
