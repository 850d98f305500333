"""Proofs as data: a patch's ``Proof:`` trailer names a generic check kind and its parameters;
another distro repo declares its own and ``cluster prove`` runs them; ``validate`` and
``cluster prove`` refuse a proof that cannot run, naming the file and the key."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.engines import use_engines
from tests.helpers.fake_nodes import FakeNodes
from tests.helpers.otherdistro import (
    RELEASE,
    ROOT,
    UID,
    OtherDistro,
    answering_cluster,
    make_other_distro,
)
from tkedistro.cli.app import app
from tkedistro.cluster.proofkinds import KINDS, cgroupvalue, componenthttp
from tkedistro.cluster.proofkinds.componenthttp import Answers, HttpAnswer
from tkedistro.cluster.proofkinds.pod import ProofPod
from tkedistro.core.errors import PatchFormatError
from tkedistro.model.patches import parse_patch
from tkedistro.model.proofspec import (
    SPECS,
    CgroupValue,
    ComponentHttp,
    MetricLabels,
    parse_proof,
    proof_problems,
)

SCHEDULER = "0001-kube-scheduler-debug-flags.patch"
QUOTA = "0002-kubelet-cpu-quota.patch"
README = "0003-readme.patch"


@pytest.fixture
def acme(tmp_path: Path) -> OtherDistro:
    return make_other_distro(tmp_path)


def _tool(root: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--root", str(root), *args], env={"COLUMNS": "1000"})


def _prove(monkeypatch: pytest.MonkeyPatch, distro: OtherDistro, nodes: FakeNodes,
           *args: str) -> Result:
    use_engines(monkeypatch, nodes=nodes)
    return _tool(distro.root, "cluster", "prove", RELEASE, *args)


def _prove_folder(distro: OtherDistro) -> Path:
    [folder] = (distro.root / "_results" / RELEASE / "prove").iterdir()
    return folder


def test_another_distro_declares_its_own_proofs_and_prove_runs_them(
        acme: OtherDistro, monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = answering_cluster(acme)
    result = _prove(monkeypatch, acme, nodes)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"patches of {RELEASE} on cluster {acme.cluster}:",
        f"  PASS  {SCHEDULER}",
        f"        PUT https://127.0.0.1:10259/debug/flags/v in {acme.control}: refused without "
        "credentials, 200 for 3 as system:masters, then the manifest's verbosity put back",
        '        evidence: no credentials -> 403 forbidden: User "system:anonymous" [403: '
        "anonymous is authenticated as system:anonymous, RBAC refuses]; system:masters cert, "
        "PUT 3 -> 200 successfully set klog.logging.verbosity; restored to 2 -> 200",
        f"  PASS  {QUOTA}",
        f"        cpu cgroups the kubelet on {acme.worker} made for pod tkedistro-proofs/"
        "patch-proof (memory limit 33554432): cpu.cfs_quota_us is 5000",
        f"        evidence: {acme.worker} {ROOT} (uname 5.10.0): kubepods/pod{UID}: "
        "cfs_quota_us=5000",
        f"  (no check on the cluster)  {README}",
        "  shipped images running: 5 of 5 with the index and platform manifest digests of "
        "images.json (kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, "
        "pause)",
        f"  results: {_prove_folder(acme)}",
        f"note: the cluster runs another build than _output/{RELEASE}; "
        f"`tkedistro cluster up {RELEASE}` to prove the current one",
    ]
    put = [a for n, a in nodes.runs if a[0] == "curl"]
    assert [a[a.index("--data") + 1] for a in put] == ["3", "3", "2"]  # restored to --v=2
    assert {n for n, _ in nodes.runs} == {acme.control, acme.worker}


def test_another_distros_proof_fails_with_what_its_cluster_answered(
        acme: OtherDistro, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _prove(monkeypatch, acme, answering_cluster(acme, quota="-1"), "--json")
    assert result.exit_code == 22
    report = json.loads(result.stdout)
    assert [(p["patch"], p["kind"], p["passed"]) for p in report["proofs"]] == [
        (SCHEDULER, "component-http", True), (QUOTA, "cgroup-value", False)]
    assert report["unproven"] == [README]
    assert report["proofs"][1]["evidence"] == (
        f"{acme.worker} {ROOT} (uname 5.10.0): kubepods/pod{UID}: cpu.cfs_quota_us is '-1', "
        f"expected 5000; kubepods/pod{UID}: cfs_quota_us=-1")
    assert (f"1 of 2 patches of {RELEASE} did not show their effect on cluster {acme.cluster}: "
            f"{QUOTA}") in result.stderr


def test_prove_refuses_a_proof_that_cannot_run_before_touching_the_cluster(
        acme: OtherDistro, monkeypatch: pytest.MonkeyPatch) -> None:
    patch = acme.patch(QUOTA)
    patch.write_text(patch.read_text().replace("equals=5000", "equal=5000"))
    nodes = answering_cluster(acme)
    result = _prove(monkeypatch, acme, nodes)
    assert result.exit_code == 4
    assert result.stderr.startswith(
        f"error: patches/{RELEASE}/{QUOTA}: trailer Proof: cgroup-value: unknown key 'equal'; "
        "did you mean 'equals'? (allowed: controller, file, equals, contains, cgroups)\n")
    assert nodes.runs == []


def test_validate_passes_on_the_other_distro_and_names_a_wrong_proof(
        acme: OtherDistro) -> None:
    assert _tool(acme.root, "validate").stdout == f"releases/{RELEASE}.yaml: ok (3 patches)\n"
    patch = acme.patch(SCHEDULER)
    patch.write_text(patch.read_text().replace("component-http component=kube-scheduler",
                                               "component-http component=kube-sheduler"))
    result = _tool(acme.root, "validate")
    assert result.exit_code == 4
    assert result.stderr.splitlines()[0] == (
        f"error: patches/{RELEASE}/{SCHEDULER}: trailer Proof: component-http: key component: "
        "'kube-sheduler' is not allowed; did you mean 'kube-scheduler'? (expected "
        "kube-apiserver, kube-controller-manager or kube-scheduler)")


def test_a_folded_trailer_is_read_whole_from_the_patch(acme: OtherDistro) -> None:
    value = parse_patch(acme.patch(SCHEDULER)).trailer("Proof")
    assert value == ("component-http component=kube-scheduler method=PUT "
                     "path=/debug/flags/v anonymous=403 body=3 restore-flag=v")
    spec = parse_proof(value, SCHEDULER)
    assert isinstance(spec, ComponentHttp)
    assert (spec.component, spec.method, spec.anonymous, spec.status, spec.restore_flag) == (
        "kube-scheduler", "PUT", (403,), 200, "v")


def test_every_kind_the_model_knows_has_an_implementation_and_back() -> None:
    assert sorted(KINDS) == sorted(SPECS)
    assert all(KINDS[name].spec is SPECS[name] for name in KINDS)


@pytest.mark.parametrize(("value", "problems"), [
    ("kcm-debug-flags", ["unknown kind 'kcm-debug-flags' (known: cgroup-value, component-http, "
                         "metric-labels)"]),
    ("metric-label endpoint=/metrics/cadvisor",
     ["unknown kind 'metric-label'; did you mean 'metric-labels'? (known: cgroup-value, "
      "component-http, metric-labels)"]),
    ("", ["empty (expected a kind: cgroup-value, component-http, metric-labels)"]),
    ('component-http says="unclosed', ['no closing quotation (quote a value with spaces: '
                                       'key="a b")']),
    ("metric-labels endpoint=/metrics/cadvisor sandbox",
     ["metric-labels: 'sandbox' is not key=value"]),
    ("metric-labels endpoint=/a endpoint=/b", ["metric-labels: key endpoint: given twice"]),
    ("metric-labels endpoint=cadvisor",
     ["metric-labels: key endpoint: expected a kubelet path like /metrics/cadvisor, "
      "got 'cadvisor'"]),
    ("component-http component=kube-scheduler path=/x anonymous=401,abc status=2000",
     ["component-http: key anonymous: expected HTTP statuses like 401,403, got 'abc'",
      "component-http: key status: expected an HTTP status like 200, got '2000'"]),
    ("component-http component=kube-scheduler path=/x bad-body=loud",
     ["component-http: bad-body and bad-status go together (a body the component must "
      "refuse, and the status it refuses it with)"]),
    ("cgroup-value controller=memory file=cpu.shares equals=2",
     ["cgroup-value: file cpu.shares is not a file of the memory controller (expected "
      "memory.<name>)"]),
    ("cgroup-value controller=cpu file=cpu.shares",
     ["cgroup-value: give one of equals= (a number or unlimited) or contains="]),
])
def test_a_wrong_proof_is_named_with_its_key(value: str, problems: list[str]) -> None:
    assert proof_problems(value, "p.patch") == [f"p.patch: trailer Proof: {p}"
                                                for p in problems]
    with pytest.raises(PatchFormatError) as raised:
        parse_proof(value, "p.patch")
    assert raised.value.problems == [f"p.patch: trailer Proof: {p}" for p in problems]


def test_defaults_of_each_kind() -> None:
    http = parse_proof("component-http component=kube-apiserver path=/livez", "x")
    assert isinstance(http, ComponentHttp)
    assert componenthttp.url_of(http) == "https://127.0.0.1:6443/livez"
    assert (http.method, http.status, http.anonymous, http.restore_flag) == ("GET", 200, (),
                                                                           None)
    labels = parse_proof("metric-labels endpoint=/metrics/resource", "x")
    assert isinstance(labels, MetricLabels) and labels.sandbox is None
    value = parse_proof("cgroup-value controller=pids file=pids.max contains=max", "x")
    assert isinstance(value, CgroupValue) and value.cgroups == ("kubepods", "pod")


def test_a_get_without_credentials_that_must_succeed_says_so() -> None:
    spec = parse_proof("component-http component=kube-apiserver path=/livez anonymous=200",
                       "x")
    assert isinstance(spec, ComponentHttp)
    assert componenthttp.check_text(spec, "cp") == (
        "GET https://127.0.0.1:6443/livez in cp: 200 without credentials, 200 as "
        "system:masters")
    passed, evidence = componenthttp.judge(
        spec, Answers(HttpAnswer(200, "ok"), HttpAnswer(401, "Unauthorized")),
        ["system:masters"])
    assert not passed
    assert evidence == ("without credentials: 401 Unauthorized (expected 200) | no "
                        "credentials -> 401 Unauthorized [401: anonymous requests are not "
                        "authenticated]; system:masters cert, GET -> 200 ok")


def test_a_cgroup_value_is_judged_in_each_cgroup_it_names() -> None:
    spec = parse_proof("cgroup-value controller=memory file=memory.swappiness contains=10 "
                       "cgroups=kubepods,pod", "x")
    assert isinstance(spec, CgroupValue)
    cgroups = {"kubepods": {"memory.limit_in_bytes": "9", "memory.swappiness": "60"},
               "kubepods/podU": {"memory.limit_in_bytes": "33554432"}}
    passed, evidence = cgroupvalue.judge_value(spec, cgroups, "kubepods/podU", 33554432)
    assert not passed
    assert evidence == ("kubepods: memory.swappiness is '60', expected a value containing '10'; "
                        "kubepods/podU: no memory.swappiness; kubepods: limit_in_bytes=9 "
                        "swappiness=60; kubepods/podU: limit_in_bytes=33554432")


def test_the_cgroups_a_spec_names_are_read_under_the_nodes_cgroup_root() -> None:
    spec = parse_proof("cgroup-value controller=pids file=pids.max equals=100 "
                       "cgroups=container,kubepods", "x")
    assert isinstance(spec, CgroupValue)
    pod = ProofPod("ns", "p", "U", "worker", "app", "img", "cid")
    assert cgroupvalue.cgroup_folders(spec, "/root/kubelet", pod) == {
        "kubepods/podU/cid": PurePosixPath("/sys/fs/cgroup/pids/root/kubelet/kubepods/podU/cid"),
        "kubepods": PurePosixPath("/sys/fs/cgroup/pids/root/kubelet/kubepods")}
    assert cgroupvalue.files_read(spec) == ("pids.max",)
    assert cgroupvalue.check_text(spec, pod) == (
        "pids cgroups the kubelet on worker made for pod ns/p (memory limit 33554432) and for "
        "kubepods: pids.max is 100")
