"""Run the e2e suite (e2e.test built from the same tree) against a cluster.

Writes ``e2e.log`` and ``junit_01.xml`` into the conformance folder, shows progress
(specs done / selected, failures so far) and stops the suite at an overall timeout.

With ``nodes`` > 1 the specs run in two passes, as upstream's own e2e runs do: every selected
spec not tagged ``[Serial]`` in parallel under ``ginkgo -nodes=N``, then the ``[Serial]`` ones in
one e2e.test process. Each pass writes its own junit files (``--report-prefix``); they are merged
into one ``junit_01.xml``.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tkedistro.conformance.results import junit_from_log, merge_junit
from tkedistro.core import console, files
from tkedistro.core.errors import ClusterError
from tkedistro.core.files import write_text
from tkedistro.core.runner import clean_env

CONFORMANCE_FOCUS = r"\[Conformance\]"
SERIAL = r"\[Serial\]"
# CI's subset: CRD specs (no pod), and two that pull images built here (agnhost; httpd and
# agnhost through a rolling update) from the local registry.
QUICK_FOCUS = (r"\[sig-api-machinery\] CustomResourceDefinition resources .*\[Conformance\]"
               r"|Docker Containers should use the image defaults if command and args are blank"
               r"|\[sig-apps\] Deployment RollingUpdateDeployment should delete old pods and "
               r"create new ones")
# The real tier's subset (``--smoke``): the quick one, which already pulls httpd, an image built
# here for the conformance specs (the rolling update), plus what a single-node cluster without
# DNS could not pass (the node-container cluster can): a Service found by its DNS name (A, SRV
# and PTR records; its probe pod also pulls jessie-dnsutils) and a [Serial] spec that needs
# two schedulable nodes (it runs in the serial pass). Each name is spelled out to its
# [Conformance] tag (the DNS one has two spaces before it).
SMOKE_FOCUS = "|".join((
    QUICK_FOCUS,
    r"\[sig-network\] DNS should provide DNS for services  \[Conformance\]",
    r"\[sig-apps\] Daemon set \[Serial\] should rollback without unnecessary restarts "
    r"\[Conformance\]",
))
_WILL_RUN = re.compile(r"Will run ([0-9]+) of ([0-9]+) specs")


@dataclass(frozen=True)
class SuiteRun:
    """How to run the suite: tools, cluster, selection, where results go."""

    e2e_test: Path
    kubectl: Path
    kubeconfig: Path
    report_dir: Path
    focus: str = CONFORMANCE_FOCUS
    skip: str = ""
    timeout_s: float = 90 * 60
    nodes: int = 1
    ginkgo: Path | None = None
    repo_list: Path | None = None  # KUBE_TEST_REPO_LIST: where the suite pulls its images from

    def env(self) -> dict[str, str]:
        extra = {"KUBECONFIG": str(self.kubeconfig)}
        if self.repo_list is not None:
            extra["KUBE_TEST_REPO_LIST"] = str(self.repo_list)
        return clean_env(extra)

    @property
    def log(self) -> Path:
        return self.report_dir / "e2e.log"

    @property
    def junit(self) -> Path:
        return self.report_dir / "junit_01.xml"


@dataclass
class Progress:
    selected: int = 0
    done: int = 0
    failed: int = 0

    def feed(self, line: str) -> bool:
        """Account one output line; True when a spec finished (worth a progress line)."""
        if m := _WILL_RUN.search(line):
            self.selected = int(m.group(1))
            return True
        finished = line.count("•")
        self.done += finished
        self.failed += line.count("• Failure") + line.count("• [Fail")
        return finished > 0

    def text(self) -> str:
        total = self.selected or "?"
        return f"{self.done}/{total} specs done, {self.failed} failed so far"


def e2e_flags(spec: SuiteRun, report_prefix: str = "") -> list[str]:
    """The e2e.test flags that are not ginkgo's."""
    flags = ["--provider=skeleton", f"--kubeconfig={spec.kubeconfig}",
             f"--kubectl-path={spec.kubectl}", f"--report-dir={spec.report_dir}",
             "--disable-log-dump"]
    if report_prefix:
        flags.append(f"--report-prefix={report_prefix}")
    return flags


def suite_argv(spec: SuiteRun, focus: str | None = None, skip: str | None = None,
               report_prefix: str = "") -> list[str]:
    """One e2e.test process running the specs of ``focus`` (default: the run's) one by one."""
    argv = [str(spec.e2e_test), *e2e_flags(spec, report_prefix), "--ginkgo.noColor",
            f"--ginkgo.focus={spec.focus if focus is None else focus}"]
    skip = spec.skip if skip is None else skip
    if skip:
        argv.append(f"--ginkgo.skip={skip}")
    return argv


def top_level_alternatives(regex: str) -> list[str]:
    """``a|b(c|d)|[|]`` -> ``["a", "b(c|d)", "[|]"]``: split at ``|`` outside groups and
    character classes."""
    parts: list[str] = []
    current: list[str] = []
    depth, in_class, escaped = 0, False, False
    for char in regex:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def serial_focus(focus: str) -> str | None:
    """A regex for the ``[Serial]`` specs among those ``focus`` selects (Go's regexp has no
    lookahead, so both orders are spelled out for each alternative; an alternative that names
    ``[Serial]`` itself is kept as it is); None when ``focus`` is anchored."""
    if "^" in focus or "$" in focus:
        return None
    composed = []
    for alt in top_level_alternatives(focus):
        if SERIAL in alt:
            composed.append(alt)
        else:
            composed += [f"{SERIAL}.*(?:{alt})", f"(?:{alt}).*{SERIAL}"]
    return "|".join(composed)


def _either(a: str, b: str) -> str:
    return f"(?:{a})|(?:{b})" if a else b


@dataclass(frozen=True)
class Pass:
    name: str
    argv: list[str]
    focus: str
    skip: str


def passes(spec: SuiteRun) -> list[Pass]:
    """One serial pass, or a parallel pass without [Serial] specs and a serial pass of them."""
    both = serial_focus(spec.focus)
    if spec.nodes <= 1 or spec.ginkgo is None or both is None:
        return [Pass("serial", suite_argv(spec), spec.focus, spec.skip)]
    parallel_skip = _either(spec.skip, SERIAL)
    parallel = [str(spec.ginkgo), f"-nodes={spec.nodes}", "-noColor",
                f"-focus={spec.focus}", f"-skip={parallel_skip}", str(spec.e2e_test), "--",
                *e2e_flags(spec, "parallel_")]
    return [Pass(f"parallel ({spec.nodes} nodes)", parallel, spec.focus, parallel_skip),
            Pass("serial", suite_argv(spec, both, spec.skip, "serial_"), both, spec.skip)]


def count_selected(spec: SuiteRun, focus: str | None = None, skip: str | None = None) -> int:
    """How many specs a focus/skip selects (a dry run; takes a few seconds)."""
    argv = [*suite_argv(spec, focus, skip), "--ginkgo.dryRun"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=spec.env(), check=False)
    m = _WILL_RUN.search(proc.stdout)
    return int(m.group(1)) if m else 0


def _interrupt(proc: subprocess.Popen[str]) -> None:
    """SIGINT first (ginkgo runs AfterEach and writes junit), SIGKILL after a minute."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def run_suite(spec: SuiteRun) -> bool:
    """Run the suite; returns True when it stopped at the timeout. Never raises on failures."""
    files.ensure_dir(spec.report_dir)
    for old in spec.report_dir.glob("junit_*.xml"):
        files.remove(old)
    deadline = time.monotonic() + spec.timeout_s
    planned = passes(spec)
    started = time.monotonic()
    timed_out = True  # unless every pass ran to its end
    with _open_log(spec.log) as log:
        for step in planned:
            left = deadline - time.monotonic()
            if left <= 0:
                log.write(f"=== {step.name} pass not started: overall timeout reached\n")
                break
            selected = count_selected(spec, step.focus, step.skip) if len(planned) > 1 else 0
            if len(planned) > 1 and selected == 0:
                log.write(f"=== {step.name} pass: no spec selected\n")
                continue
            log.write(f"=== {step.name} pass: $ {' '.join(step.argv)}\n")
            log.flush()
            console.info(f"[conformance] {step.name} pass"
                         + (f": {selected} specs" if selected else ""))
            if _run_pass(step.argv, spec.env(), log, left, Progress(selected=selected)):
                log.write(f"=== {step.name} pass stopped at the overall timeout\n")
                break
        else:
            timed_out = False
    _merge(spec, time.monotonic() - started, len(planned))
    return timed_out


def _merge(spec: SuiteRun, seconds: float, pass_count: int) -> None:
    """One junit_01.xml from every pass and node; specs whose node was stopped before writing
    its junit file are taken from the log's per-spec result lines."""
    if pass_count == 1:
        parts = [spec.junit] if spec.junit.exists() else []
    else:
        parts = sorted(spec.report_dir.glob("junit_parallel_*.xml")) + \
            sorted(spec.report_dir.glob("junit_serial_*.xml"))
    texts = [files.read_text(p) for p in parts]
    recovered = junit_from_log(files.read_bytes(spec.log).decode("utf-8", errors="replace"))
    if not texts and "<testcase" not in recovered:
        return  # nothing ran: no junit_01.xml, and the report says to read e2e.log
    write_text(spec.junit, merge_junit([*texts, recovered], seconds))


@contextmanager
def _open_log(path: Path) -> Iterator[TextIO]:
    """``e2e.log`` opened for text as it comes, never through a symlink."""
    with files.open_for_writing(path) as raw, io.TextIOWrapper(raw, encoding="utf-8") as log:
        yield log


def _run_pass(argv: list[str], env: dict[str, str], log: TextIO, timeout_s: float,
              progress: Progress) -> bool:
    """One e2e.test (or ginkgo) process; True when it was stopped at the timeout."""
    timed_out = threading.Event()
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env,
                                start_new_session=True)
    except OSError as exc:
        raise ClusterError(f"cannot start {argv[0]}: {exc}") from exc

    def on_timeout() -> None:
        timed_out.set()
        _interrupt(proc)

    timer = threading.Timer(timeout_s, on_timeout)
    timer.start()
    try:
        _follow(proc, log, progress)
    except BaseException:
        _interrupt(proc)
        raise
    finally:
        timer.cancel()
        proc.wait()
    return timed_out.is_set()


def _follow(proc: subprocess.Popen[str], log: TextIO, progress: Progress) -> None:
    assert proc.stdout is not None
    last = 0.0
    for line in proc.stdout:
        log.write(line)
        if progress.feed(line) and time.monotonic() - last > 10:
            console.info(f"[conformance] {progress.text()}")
            last = time.monotonic()
    console.info(f"[conformance] {progress.text()}")
