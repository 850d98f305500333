"""Parse the suite's ``junit_01.xml`` into passed / failed / skipped, failures grouped by cause;
merge the junit files of a parallel and a serial pass into one.

Pure: no I/O beyond reading the file given, so it is unit-tested with small XML fixtures.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tkedistro.core.errors import ConformanceFailedError


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class Cause(StrEnum):
    IMAGE_UNAVAILABLE = "image unavailable"
    SERVICE_NAME = "service name unreachable (no cluster DNS)"
    TIMEOUT = "timeout"
    OTHER = "other"


_IMAGE_RE = re.compile(
    r"ErrImagePull|ImagePullBackOff|ErrImageNeverPull|Failed to pull image|"
    r"failed to resolve reference|pull access denied|image not present"
)
_IMAGE_NAME_RE = re.compile(r'(?:pull image|image|reference) \\?"([^"\\\s]+)\\?"')
# a Service dialled by name, not by IP: the local cluster runs no DNS add-on (no CoreDNS image)
_SERVICE_NAME_RE = re.compile(r"not reachable .* on endpoint (?![0-9.]+:)[a-z][-a-z0-9.]*:[0-9]+")
_TIMEOUT_RE = re.compile(r"timed out|[Tt]imeout|context deadline exceeded|deadline exceeded")


@dataclass(frozen=True)
class SpecResult:
    name: str
    status: Status
    seconds: float
    message: str = ""
    output: str = ""

    @property
    def cause(self) -> Cause | None:
        return classify(self.message, self.output) if self.status is Status.FAILED else None

    @property
    def images(self) -> tuple[str, ...]:
        """Images named by pull errors in the failure text (for "image unavailable")."""
        return tuple(sorted(set(_IMAGE_NAME_RE.findall(self.message + "\n" + self.output))))


def classify(message: str, output: str = "") -> Cause:
    """Image pull errors win over timeouts: a pod waiting for an image times out too."""
    text = message + "\n" + output
    if _IMAGE_RE.search(text):
        return Cause.IMAGE_UNAVAILABLE
    if _SERVICE_NAME_RE.search(message):
        return Cause.SERVICE_NAME
    if _TIMEOUT_RE.search(message):
        return Cause.TIMEOUT
    return Cause.OTHER


@dataclass(frozen=True)
class SuiteResults:
    specs: tuple[SpecResult, ...]
    seconds: float

    def by_status(self, status: Status) -> list[SpecResult]:
        return [s for s in self.specs if s.status is status]

    @property
    def passed(self) -> int:
        return len(self.by_status(Status.PASSED))

    @property
    def failed(self) -> int:
        return len(self.by_status(Status.FAILED))

    @property
    def skipped(self) -> int:
        return len(self.by_status(Status.SKIPPED))

    @property
    def ran(self) -> int:
        return self.passed + self.failed

    def failures_by_cause(self) -> dict[str, list[str]]:
        """``{cause: [spec names]}`` in a fixed cause order, empty causes left out."""
        grouped: dict[str, list[str]] = {}
        for cause in Cause:
            names = [s.name for s in self.by_status(Status.FAILED) if s.cause is cause]
            if names:
                grouped[cause.value] = names
        return grouped

    def to_json(self) -> dict[str, object]:
        return {
            "passed": self.passed, "failed": self.failed, "skipped": self.skipped,
            "seconds": round(self.seconds, 1), "failures_by_cause": self.failures_by_cause(),
        }

    def format_text(self) -> str:
        lines = [f"{self.ran} specs ran in {self.seconds:.0f}s: {self.passed} passed, "
                 f"{self.failed} failed ({self.skipped} other specs skipped or not selected)"]
        for cause, names in self.failures_by_cause().items():
            lines.append(f"  {cause}: {len(names)}")
            lines.extend(f"    - {name}" for name in names)
        return "\n".join(lines)


_SUITE_HOOKS = ("[BeforeSuite]", "[AfterSuite]", "[SynchronizedBeforeSuite]",
                "[SynchronizedAfterSuite]", "[ReportAfterSuite]")


def _spec(case: ET.Element) -> SpecResult:
    name = case.get("name", "").strip()
    seconds = float(case.get("time") or 0)
    failure = case.find("failure")
    if failure is None:
        failure = case.find("error")
    output = (case.findtext("system-out") or "").strip()
    if failure is not None:
        message = ((failure.get("message") or "") + "\n" + (failure.text or "")).strip()
        return SpecResult(name, Status.FAILED, seconds, message, output)
    if case.find("skipped") is not None:
        return SpecResult(name, Status.SKIPPED, seconds)
    return SpecResult(name, Status.PASSED, seconds)


def parse_junit_text(text: str, source: str = "junit_01.xml") -> SuiteResults:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ConformanceFailedError(f"{source}: not valid junit XML: {exc}") from exc
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    specs: list[SpecResult] = []
    seconds = 0.0
    for suite in suites:
        seconds += float(suite.get("time") or 0)
        for case in suite.iter("testcase"):
            spec = _spec(case)
            if spec.name in _SUITE_HOOKS and spec.status is not Status.FAILED:
                continue  # a passing suite hook is not a spec
            specs.append(spec)
    return SuiteResults(tuple(specs), seconds)


_RANK = {Status.SKIPPED: 0, Status.PASSED: 1, Status.FAILED: 2}
# the e2e suite's progress line after every spec, on every ginkgo node
_LOG_RESULT = re.compile(r'^\{"msg":"(PASSED|FAILED) (.+?)","total":', re.MULTILINE)
RECOVERED = ("recovered from e2e.log: the ginkgo node that ran this spec was stopped before it "
             "wrote its junit file; the failure is described in e2e.log")


def junit_from_log(log: str) -> str:
    """A junit text of the specs the log reports as passed or failed (for a node that was
    stopped at the timeout before writing its own junit file)."""
    suite = ET.Element("testsuite", {"name": "recovered from e2e.log"})
    for verdict, name in _LOG_RESULT.findall(log):
        case = ET.SubElement(suite, "testcase", {"name": name.replace('\\"', '"'), "time": "0"})
        if verdict == "FAILED":
            ET.SubElement(case, "failure", {"message": RECOVERED})
    return ET.tostring(suite, encoding="unicode")


def merge_junit(texts: list[str], seconds: float) -> str:
    """One ``<testsuite>`` from the junit files of several passes or ginkgo nodes.

    Each pass lists every spec (those it did not run as skipped), so a spec is kept once with
    the result of the pass that ran it; a failure wins (a suite hook can fail on one node only).
    ``seconds`` is the wall time of the whole run (the nodes' own times overlap).
    """
    kept: dict[str, tuple[Status, ET.Element]] = {}
    for index, text in enumerate(texts):
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise ConformanceFailedError(f"junit file {index + 1}: not valid XML: {exc}") \
                from exc
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        for case in (c for suite in suites for c in suite.iter("testcase")):
            status = _spec(case).status
            name = case.get("name", "").strip()
            if name not in kept or _RANK[status] > _RANK[kept[name][0]]:
                kept[name] = (status, case)
    statuses = [status for status, _ in kept.values()]
    merged = ET.Element("testsuite", {
        "name": "Kubernetes e2e suite", "tests": str(len(kept)),
        "failures": str(statuses.count(Status.FAILED)), "errors": "0",
        "skipped": str(statuses.count(Status.SKIPPED)), "time": f"{seconds:.3f}"})
    merged.extend(case for _, case in kept.values())
    return ET.tostring(merged, encoding="unicode") + "\n"


def parse_junit(path: Path) -> SuiteResults:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConformanceFailedError(
            f"{path}: no junit result; the suite did not get to write one",
            hint="see e2e.log beside it for why the suite stopped",
        ) from None
    return parse_junit_text(text, str(path))
