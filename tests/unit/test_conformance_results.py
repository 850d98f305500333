# ruff: noqa: E501  (junit fixture lines are as long as real spec names)
"""Parsing the suite's junit, the summary, failure grouping and the CNCF bundle templates."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.helpers.manifests import manifest_text
from tkedistro.conformance.pipeline import ConformanceOptions, ConformanceResult
from tkedistro.conformance.report import BundleContext, Product, is_internal, write_bundle
from tkedistro.conformance.results import (
    Cause,
    Status,
    SuiteResults,
    classify,
    parse_junit,
    parse_junit_text,
)
from tkedistro.conformance.suite import QUICK_FOCUS, SMOKE_FOCUS, Progress
from tkedistro.core.errors import ConformanceFailedError
from tkedistro.model.manifest import parse_manifest

CRD = "[sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] "
JUNIT = f"""<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="Kubernetes e2e suite" tests="6" failures="3" errors="0" time="321.5">
  <testcase name="[BeforeSuite]" classname="Kubernetes e2e suite" time="2.1"></testcase>
  <testcase name="{CRD}should include custom resource definition resources in discovery documents [Conformance]" classname="Kubernetes e2e suite" time="1.2"></testcase>
  <testcase name="[sig-storage] EmptyDir volumes should support (root,0644,tmpfs) [LinuxOnly] [NodeConformance] [Conformance]" classname="Kubernetes e2e suite" time="300.0">
    <failure type="Failure">/workspace/test/e2e/framework/pods.go:103
Unexpected error:
    &lt;*errors.errorString&gt;: pod "pod-1" never started: timed out waiting for the condition</failure>
    <system-out>Nov 23 09:00:01.000: INFO: At 2026-11-23 09:00:00 +0000 UTC - event for pod-1: {{kubelet tke}} Failed: Failed to pull image "docker.io/library/nginx:1.14-alpine": rpc error: code = NotFound
Nov 23 09:00:02.000: INFO: Warning  ErrImagePull</system-out>
  </testcase>
  <testcase name="[sig-network] DNS should provide DNS for the cluster [Conformance]" classname="Kubernetes e2e suite" time="600.0">
    <failure type="Failure">/workspace/test/e2e/network/dns_common.go:464
Unexpected error:
    timed out waiting for the condition</failure>
  </testcase>
  <testcase name="[sig-cli] Kubectl client Guestbook application should create and stop a working application [Conformance]" classname="Kubernetes e2e suite" time="3.0">
    <failure type="Failure">/workspace/test/e2e/kubectl/kubectl.go:380
Expected
    &lt;int&gt;: 1
to equal
    &lt;int&gt;: 0</failure>
  </testcase>
  <testcase name="[sig-apps] Deployment deployment should support rollover [Conformance]" classname="Kubernetes e2e suite" time="0">
    <skipped></skipped>
  </testcase>
</testsuite>
"""

MANIFEST = manifest_text(components=("kubectl",), platforms=None, patches=None)


@pytest.fixture
def results() -> SuiteResults:
    return parse_junit_text(JUNIT)


def test_counts_ignore_passing_suite_hooks(results: SuiteResults) -> None:
    assert (results.passed, results.failed, results.skipped) == (1, 3, 1)
    assert results.ran == 4
    assert results.seconds == pytest.approx(321.5)
    assert "[BeforeSuite]" not in [s.name for s in results.specs]


def test_failed_before_suite_counts_as_failure() -> None:
    text = """<testsuite tests="1" time="5"><testcase name="[BeforeSuite]" time="5">
      <failure>there are no ready, schedulable nodes</failure></testcase></testsuite>"""
    parsed = parse_junit_text(text)
    assert parsed.failed == 1
    assert parsed.failures_by_cause() == {"other": ["[BeforeSuite]"]}


def test_failures_grouped_by_cause_image_wins_over_timeout(results: SuiteResults) -> None:
    grouped = results.failures_by_cause()
    assert list(grouped) == ["image unavailable", "timeout", "other"]
    assert grouped["image unavailable"][0].startswith("[sig-storage] EmptyDir volumes")
    assert grouped["timeout"] == ["[sig-network] DNS should provide DNS for the cluster [Conformance]"]
    assert grouped["other"][0].startswith("[sig-cli] Kubectl client Guestbook")


def test_image_named_in_pull_error(results: SuiteResults) -> None:
    failed = results.by_status(Status.FAILED)[0]
    assert failed.images == ("docker.io/library/nginx:1.14-alpine",)


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        ("Back-off pulling image: ImagePullBackOff", Cause.IMAGE_UNAVAILABLE),
        ("context deadline exceeded", Cause.TIMEOUT),
        ("service is not reachable within 2m0s timeout on endpoint externalname-service:80 "
         "over TCP protocol", Cause.SERVICE_NAME),
        ("service is not reachable within 2m0s timeout on endpoint 10.0.0.12:80 over TCP "
         "protocol", Cause.TIMEOUT),
        ("Expected <int>: 1 to equal <int>: 0", Cause.OTHER),
    ],
)
def test_classify(message: str, cause: Cause) -> None:
    assert classify(message) is cause


def test_format_text_lists_failures_under_their_cause(results: SuiteResults) -> None:
    text = results.format_text()
    assert text.splitlines()[0] == "4 specs ran in 322s: 1 passed, 3 failed (1 other specs skipped or not selected)"
    assert "  image unavailable: 1" in text
    assert "    - [sig-network] DNS should provide DNS for the cluster [Conformance]" in text


def test_to_json(results: SuiteResults) -> None:
    data = results.to_json()
    assert data["passed"] == 1 and data["failed"] == 3 and data["skipped"] == 1
    assert set(data["failures_by_cause"]) == {"image unavailable", "timeout", "other"}


def test_missing_junit_says_where_to_look(tmp_path: Path) -> None:
    with pytest.raises(ConformanceFailedError) as err:
        parse_junit(tmp_path / "junit_01.xml")
    assert "no junit result" in err.value.message
    assert err.value.hint == "see e2e.log beside it for why the suite stopped"


def test_broken_junit_is_a_clear_error() -> None:
    with pytest.raises(ConformanceFailedError, match="not valid junit XML"):
        parse_junit_text("<testsuite", "x/junit_01.xml")


def _context(results, **kw: object) -> BundleContext:
    manifest = parse_manifest(MANIFEST, Path("releases/1.20.yaml"), "releases/1.20.yaml")
    product = Product(name="TKE Distro", version=manifest.distro_version, vendor="Example Inc.",
                      website_url="https://example.invalid/tke",
                      documentation_url="https://example.invalid/tke/docs",
                      contact_email_address="k8s@example.invalid")
    return BundleContext(product=product, manifest=manifest, results=results,
                         cluster="local cluster tke-1-20-abcdef: 2 node containers, kubeadm",
                         focus=r"\[Conformance\]", command="tkedistro conformance 1.20", **kw)


def test_product_yaml_has_the_cncf_keys_and_internal_label(results: SuiteResults, tmp_path: Path) -> None:
    write_bundle(_context(results), tmp_path)
    text = (tmp_path / "PRODUCT.yaml").read_text()
    assert "# INTERNAL EVIDENCE ONLY: Kubernetes v1.20 is outside" in text
    data = YAML(typ="safe").load(text)
    assert data == {
        "vendor": "Example Inc.", "name": "TKE Distro", "version": "v1.20.2-tke.1",
        "type": "distribution", "description": Product("n", "v").description,
        "website_url": "https://example.invalid/tke", "repo_url": "",
        "documentation_url": "https://example.invalid/tke/docs",
        "contact_email_address": "k8s@example.invalid",
    }


def test_readme_summarises_results_and_images(results: SuiteResults, tmp_path: Path) -> None:
    ctx = _context(results, unavailable_images=("docker.io/library/nginx:1.14-alpine",))
    write_bundle(ctx, tmp_path)
    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("# TKE Distro v1.20.2-tke.1 — Kubernetes conformance\n")
    assert "**Internal evidence, not a CNCF submission.**" in readme
    assert "| 1 | 3 | 1 | 322 s |" in readme
    assert "### Failed: timeout (1)" in readme
    assert "- `docker.io/library/nginx:1.14-alpine`" in readme
    assert "Upstream: Kubernetes v1.20.2 (faecb196815e248d3ecfb03c680a4507229c2a56)" in readme


def test_internal_only_for_old_minors() -> None:
    assert is_internal("v1.20.2")
    assert not is_internal("v1.40.0")


def test_progress_counts_specs_and_failures() -> None:
    progress = Progress()
    for line in ["Will run 5 of 5665 specs", "•", "• Failure [3.0 seconds]", "SSSS•"]:
        progress.feed(line)
    assert progress.text() == "3/5 specs done, 1 failed so far"


def test_result_json_and_failure_state(results: SuiteResults, tmp_path: Path) -> None:
    res = ConformanceResult("1.20", tmp_path, results, "local", unavailable_images=("x:1",))
    assert not res.ok
    assert res.to_json()["unavailable_images"] == ["x:1"]
    assert "images unavailable offline (1): x:1" in res.format_text()


def test_quick_selects_the_crd_conformance_specs() -> None:
    assert ConformanceOptions(quick=True).selected_focus == QUICK_FOCUS
    assert ConformanceOptions().selected_focus == r"\[Conformance\]"
    assert ConformanceOptions(focus="x", quick=True).selected_focus == "x"
    assert ConformanceOptions(smoke=True).selected_focus == SMOKE_FOCUS
