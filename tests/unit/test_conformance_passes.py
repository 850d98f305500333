"""The suite in two passes (parallel without [Serial], then [Serial] one by one) and the merge of
their junit files. The e2e.test and ginkgo here are small scripts that honour the same flags
(focus, skip, dry run, report dir and prefix); the real suite runs in the real_k8s tier."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tkedistro.conformance.results import (
    RECOVERED,
    junit_from_log,
    merge_junit,
    parse_junit,
    parse_junit_text,
)
from tkedistro.conformance.suite import SERIAL, SuiteRun, passes, run_suite, serial_focus

SPECS = [
    "[sig-api-machinery] CRD works [Conformance]",
    "[sig-scheduling] SchedulerPredicates [Serial] validates limits [Conformance]",
    "[sig-apps] Deployment rolls [Conformance]",
    "[sig-storage] EmptyDir is not conformance",
    "[sig-apps] Daemon set [Serial] should run [Conformance]",
]

# One script plays both tools: as ginkgo it takes -nodes/-focus/-skip before the binary and
# writes one junit per node; as e2e.test it takes --ginkgo.* flags. Specs with "fails" fail.
FAKE = r'''
import html, os, re, sys
args = sys.argv[1:]
def flag(prefix, default=""):
    return next((a.split("=", 1)[1] for a in args if a.startswith(prefix + "=")), default)
ginkgo = os.path.basename(sys.argv[0]) == "ginkgo"
focus = flag("-focus" if ginkgo else "--ginkgo.focus")
skip = flag("-skip" if ginkgo else "--ginkgo.skip")
nodes = int(flag("-nodes", "1")) if ginkgo else 1
specs = SPECS
chosen = [s for s in specs if re.search(focus, s) and not (skip and re.search(skip, s))]
print(f"Will run {len(chosen)} of {len(specs)} specs", flush=True)
if "--ginkgo.dryRun" in args:
    sys.exit(0)
report, prefix = flag("--report-dir"), flag("--report-prefix")
for node in range(1, nodes + 1):
    mine = chosen[node - 1::nodes]
    cases = []
    for s in specs:
        name = html.escape(s)  # real spec names hold quotes, < and &
        if s not in mine:
            cases.append(f'<testcase name="{name}" time="0"><skipped/></testcase>')
        elif "fails" in s:
            cases.append(f'<testcase name="{name}" time="1"><failure message="boom">x'
                         '</failure></testcase>')
        else:
            cases.append(f'<testcase name="{name}" time="1"/>')
        if s in mine:
            print("•", flush=True)
    with open(os.path.join(report, f"junit_{prefix}{node:02d}.xml"), "w") as f:
        f.write(f'<testsuite tests="{len(specs)}">' + "".join(cases) + "</testsuite>")
'''


def fake_tools(tmp_path: Path, specs: list[str]) -> tuple[Path, Path]:
    code = f"#!{sys.executable}\nSPECS = {specs!r}\n{FAKE}"
    paths = []
    for name in ("e2e.test", "ginkgo"):
        path = tmp_path / "bin" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(code)
        path.chmod(0o755)
        paths.append(path)
    return paths[0], paths[1]


def suite(tmp_path: Path, nodes: int, specs: list[str] = SPECS, skip: str = "") -> SuiteRun:
    e2e, ginkgo = fake_tools(tmp_path, specs)
    return SuiteRun(e2e_test=e2e, kubectl=tmp_path / "kubectl", kubeconfig=tmp_path / "kc",
                    report_dir=tmp_path / "out", skip=skip, nodes=nodes, ginkgo=ginkgo)


def test_serial_focus_selects_only_serial_specs_of_the_focus() -> None:
    both = serial_focus(r"\[Conformance\]")
    assert both is not None
    assert [s for s in SPECS if re.search(both, s)] == [SPECS[1], SPECS[4]]
    assert serial_focus(r"^\[sig-apps\]") is None  # anchored: cannot be combined


def test_serial_focus_of_a_focus_that_names_serial_specs_and_others() -> None:
    # `--focus '\[Serial\].*\[Conformance\]|Deployment rolls'`: every [Serial] conformance
    # spec, plus one named spec (not serial: the parallel pass runs it)
    focus = r"\[Serial\].*\[Conformance\]|Deployment (rolls|x\|y)|[|]never"
    both = serial_focus(focus)
    assert both is not None
    assert [s for s in SPECS if re.search(both, s)] == [SPECS[1], SPECS[4]]


def test_parallel_pass_skips_serial_specs_and_keeps_the_users_skip(tmp_path: Path) -> None:
    run = suite(tmp_path, nodes=3, skip="Deployment")
    parallel, serial = passes(run)
    assert parallel.argv[:2] == [str(run.ginkgo), "-nodes=3"]
    assert f"-skip=(?:Deployment)|(?:{SERIAL})" in parallel.argv
    assert parallel.argv[parallel.argv.index("--") - 1] == str(run.e2e_test)
    assert "--report-prefix=parallel_" in parallel.argv
    assert "--ginkgo.skip=Deployment" in serial.argv
    assert "--report-prefix=serial_" in serial.argv


def test_one_node_is_one_serial_pass_writing_junit_01(tmp_path: Path) -> None:
    run = suite(tmp_path, nodes=1)
    assert [p.name for p in passes(run)] == ["serial"]
    assert run_suite(run) is False
    results = parse_junit(run.junit)
    assert (results.passed, results.failed) == (4, 0)


def test_two_passes_run_every_selected_spec_once_and_merge(tmp_path: Path) -> None:
    specs = [*SPECS, "[sig-node] Pods fails on purpose [Conformance]"]
    run = suite(tmp_path, nodes=2, specs=specs)
    assert run_suite(run) is False
    results = parse_junit(run.junit)
    assert results.passed == 4  # 2 parallel + 2 [Serial]
    assert [s.name for s in results.specs if s.status.value == "failed"] == [specs[-1]]
    assert results.skipped == 1  # the one spec outside the focus
    log = run.log.read_text()
    assert "=== parallel (2 nodes) pass" in log and "=== serial pass" in log
    assert sorted(p.name for p in run.report_dir.glob("junit_*.xml")) == [
        "junit_01.xml", "junit_parallel_01.xml", "junit_parallel_02.xml", "junit_serial_01.xml"]


def test_serial_pass_is_left_out_when_it_selects_nothing(tmp_path: Path) -> None:
    run = suite(tmp_path, nodes=2, specs=[SPECS[0], SPECS[2]])
    assert run_suite(run) is False
    assert "=== serial pass: no spec selected" in run.log.read_text()
    assert parse_junit(run.junit).passed == 2


def test_merge_keeps_the_pass_that_ran_a_spec_and_a_failure_wins() -> None:
    parallel = ('<testsuite><testcase name="a" time="2"/><testcase name="b"><skipped/></testcase>'
                '<testcase name="[BeforeSuite]"><failure message="node 2">x</failure></testcase>'
                '</testsuite>')
    serial = ('<testsuites><testsuite><testcase name="a"><skipped/></testcase>'
              '<testcase name="b" time="3"/><testcase name="[BeforeSuite]"/></testsuite>'
              '</testsuites>')
    merged = merge_junit([parallel, serial], 12.5)
    root = ET.fromstring(merged)
    assert (root.get("tests"), root.get("failures"), root.get("time")) == ("3", "1", "12.500")
    results = parse_junit_text(merged)
    assert {s.name: s.status.value for s in results.specs} == {
        "a": "passed", "b": "passed", "[BeforeSuite]": "failed"}


def test_results_of_a_node_stopped_before_its_junit_are_recovered_from_the_log() -> None:
    log = ('{"msg":"PASSED [sig-a] one [Conformance]","total":-1,"completed":1}\n'
           'noise\n'
           '{"msg":"FAILED [sig-b] two \\"quoted\\" [Conformance]","total":-1,"failed":1}\n')
    node2 = '<testsuite><testcase name="[sig-c] three [Conformance]" time="4"/></testsuite>'
    results = parse_junit_text(merge_junit([node2, junit_from_log(log)], 60.0))
    status = {s.name: s.status.value for s in results.specs}
    assert status == {"[sig-c] three [Conformance]": "passed",
                      "[sig-a] one [Conformance]": "passed",
                      '[sig-b] two "quoted" [Conformance]': "failed"}
    assert results.by_status(results.specs[2].status)[0].message == RECOVERED


def test_the_suite_reads_the_repo_list_from_its_environment(tmp_path: Path) -> None:
    """``KUBE_TEST_REPO_LIST`` is how e2e.test learns where to pull from (both passes and the
    dry run that counts specs get it)."""
    listing = tmp_path / "repo-list.yaml"
    base = SuiteRun(e2e_test=tmp_path / "e2e.test", kubectl=tmp_path / "kubectl",
                    kubeconfig=tmp_path / "kc", report_dir=tmp_path / "r")
    assert "KUBE_TEST_REPO_LIST" not in base.env()
    env = SuiteRun(e2e_test=tmp_path / "e2e.test", kubectl=tmp_path / "kubectl",
                   kubeconfig=tmp_path / "kc", report_dir=tmp_path / "r",
                   repo_list=listing).env()
    assert env["KUBE_TEST_REPO_LIST"] == str(listing)
    assert env["KUBECONFIG"] == str(tmp_path / "kc")
