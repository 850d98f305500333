"""Run the e2e suite (e2e.test built from the same tree) against a cluster.

Writes ``e2e.log`` and ``junit_01.xml`` into the conformance folder, shows progress
(specs done / selected, failures so far) and stops the suite at an overall timeout.
Specs run serially (one e2e.test process), so serial specs need no separate pass.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tkedistro import console
from tkedistro.errors import ClusterError
from tkedistro.runner import clean_env

CONFORMANCE_FOCUS = r"\[Conformance\]"
QUICK_FOCUS = r"\[sig-api-machinery\] CustomResourceDefinition resources .*\[Conformance\]"
_WILL_RUN = re.compile(r"Will run (\d+) of (\d+) specs")


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


def suite_argv(spec: SuiteRun) -> list[str]:
    argv = [str(spec.e2e_test), "--provider=skeleton", f"--kubeconfig={spec.kubeconfig}",
            f"--kubectl-path={spec.kubectl}", f"--report-dir={spec.report_dir}",
            "--disable-log-dump", "--ginkgo.noColor", f"--ginkgo.focus={spec.focus}"]
    if spec.skip:
        argv.append(f"--ginkgo.skip={spec.skip}")
    return argv


def count_selected(spec: SuiteRun) -> int:
    """How many specs the focus/skip selects (a dry run; takes a few seconds)."""
    argv = [*suite_argv(spec), "--ginkgo.dryRun"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), check=False)
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
    spec.report_dir.mkdir(parents=True, exist_ok=True)
    spec.junit.unlink(missing_ok=True)
    argv = suite_argv(spec)
    console.info("$ " + " ".join(argv))
    timed_out = threading.Event()
    with spec.log.open("w", encoding="utf-8") as log:
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, env=clean_env({"KUBECONFIG": str(spec.kubeconfig)}),
                                    start_new_session=True)
        except OSError as exc:
            raise ClusterError(f"cannot start {spec.e2e_test}: {exc}") from exc

        def on_timeout() -> None:
            timed_out.set()
            _interrupt(proc)

        timer = threading.Timer(spec.timeout_s, on_timeout)
        timer.start()
        try:
            _follow(proc, log)
        except BaseException:
            _interrupt(proc)
            raise
        finally:
            timer.cancel()
            proc.wait()
    return timed_out.is_set()


def _follow(proc: subprocess.Popen[str], log: TextIO) -> None:
    assert proc.stdout is not None
    progress = Progress()
    last = 0.0
    for line in proc.stdout:
        log.write(line)
        if progress.feed(line) and time.monotonic() - last > 10:
            console.info(f"[conformance] {progress.text()}")
            last = time.monotonic()
    console.info(f"[conformance] {progress.text()}")
