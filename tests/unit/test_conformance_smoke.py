"""``--smoke``, the real tier's subset, against the names of the real v1.20 suite: it selects
exactly the specs it means to, and its [Serial] spec runs in the serial pass."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.unit.test_conformance_passes import fake_tools
from tkedistro.conformance.suite import (
    QUICK_FOCUS,
    SMOKE_FOCUS,
    SuiteRun,
    passes,
    run_suite,
    serial_focus,
)

NAMES = Path(__file__).parent / "data" / "conformance-specs-1.20.txt"
DNS = "[sig-network] DNS should provide DNS for services  [Conformance]"
HTTPD = "[sig-apps] Deployment RollingUpdateDeployment should delete old pods and create new " \
        "ones [Conformance]"
SERIAL = "[sig-apps] Daemon set [Serial] should rollback without unnecessary restarts " \
         "[Conformance]"
QUICK = [
    "[k8s.io] Docker Containers should use the image defaults if command and args are blank "
    "[NodeConformance] [Conformance]",
    *(f"[sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] {s}"
      for s in (
          "Simple CustomResourceDefinition creating/deleting custom resource definition "
          "objects works  [Conformance]",
          "Simple CustomResourceDefinition getting/updating/patching custom resource "
          "definition status sub-resource works  [Conformance]",
          "Simple CustomResourceDefinition listing custom resource definition objects works  "
          "[Conformance]",
          "custom resource defaulting for requests and from storage works  [Conformance]",
          "should include custom resource definition resources in discovery documents "
          "[Conformance]",
      )),
    HTTPD,
]


def conformance_names() -> list[str]:
    lines = NAMES.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def selected(focus: str, skip: str = "") -> list[str]:
    """What ginkgo runs of the 311 (its focus and skip are searched, unanchored)."""
    return sorted(n for n in conformance_names()
                  if re.search(focus, n) and not (skip and re.search(skip, n)))


def test_the_fixture_is_the_whole_v1_20_conformance_suite() -> None:
    names = conformance_names()
    assert len(names) == len(set(names)) == 311
    assert {DNS, HTTPD, SERIAL} <= set(names)


def test_smoke_selects_quick_plus_one_dns_spec_and_one_serial_spec() -> None:
    assert selected(QUICK_FOCUS) == sorted(QUICK)  # what CI's --quick ran before
    assert selected(SMOKE_FOCUS) == sorted([*QUICK, DNS, SERIAL])


def test_smoke_serial_focus_selects_only_the_daemon_set_spec() -> None:
    both = serial_focus(SMOKE_FOCUS)
    assert both is not None
    assert selected(both) == [SERIAL]


def test_smoke_runs_its_serial_spec_after_the_parallel_pass(tmp_path: Path) -> None:
    e2e, ginkgo = fake_tools(tmp_path, conformance_names())
    run = SuiteRun(e2e_test=e2e, kubectl=tmp_path / "kubectl", kubeconfig=tmp_path / "kc",
                   report_dir=tmp_path / "out", focus=SMOKE_FOCUS, nodes=2, ginkgo=ginkgo)
    parallel, serial = passes(run)
    assert selected(parallel.focus, parallel.skip) == sorted([*QUICK, DNS])
    assert selected(serial.focus, serial.skip) == [SERIAL]

    assert run_suite(run) is False
    ran = {c.get("name") for c in ET.parse(run.junit).getroot().iter("testcase")
           if c.find("skipped") is None}
    serial_ran = {c.get("name") for p in run.report_dir.glob("junit_serial_*.xml")
                  for c in ET.parse(p).getroot().iter("testcase") if c.find("skipped") is None}
    assert ran == {*QUICK, DNS, SERIAL}
    assert serial_ran == {SERIAL}

