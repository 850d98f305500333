"""Progress of the build step: Kubernetes' status lines out of make's output, the heartbeat,
where the log is; run_make with a session that streams lines (no Docker here)."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tkedistro.build import container, progress
from tkedistro.build.plan import BuildPlan
from tkedistro.build.progress import BuildProgress, Status, StatusParser, parse_statuses
from tkedistro.core import console
from tkedistro.core.errors import BuildError
from tkedistro.engine.protocols import LineFeed, RunResult

# what `make all WHAT=... KUBE_BUILD_PLATFORMS="linux/amd64 linux/arm64"` prints in a cold
# v1.20 tree (hack/lib/golang.sh, hack/lib/logging.sh's kube::log::status), abridged
COLD_BUILD = """\
+++ [1202 03:07:41] Building go targets for linux/amd64:
    ./vendor/k8s.io/code-generator/cmd/prerelease-lifecycle-gen
go: downloading nothing, GOFLAGS=-mod=vendor
./hack/run-in-gopath.sh _output/bin/prerelease-lifecycle-gen --v 1 --logtostderr
+++ [1202 03:08:02] Building go targets for linux/amd64:
    ./vendor/k8s.io/code-generator/cmd/deepcopy-gen
+++ [1202 03:09:15] Multiple platforms requested, but available 7G < threshold 40G, \
building platforms in serial
+++ [1202 03:09:15] Building go targets for linux/amd64:
    cmd/kube-apiserver
    cmd/kube-controller-manager
    cmd/kube-scheduler
    cmd/kube-proxy
    cmd/kubelet
    cmd/kubectl
    cmd/kubeadm
+++ [1202 03:21:40] Building go targets for linux/arm64:
    cmd/kube-apiserver
    cmd/kube-controller-manager
    cmd/kube-scheduler
    cmd/kube-proxy
    cmd/kubelet
    cmd/kubectl
    cmd/kubeadm
# k8s.io/kubernetes/pkg/kubelet
pkg/kubelet/kubelet.go:12:2: undefined: foo
!!! [1202 03:30:02] Call tree:
!!! [1202 03:30:02]  1: hack/lib/golang.sh:714 kube::golang::build_some_binaries(...)
make: *** [Makefile:93: all] Error 1
"""
PARALLEL = """\
+++ [1202 04:00:00] Multiple platforms requested and available 64G >= threshold 40G, \
building platforms in parallel
+++ [1202 04:00:00] Building go targets for {linux/amd64 linux/arm64} in parallel (output \
will appear in a burst when complete):
    cmd/kubectl
+++ [1202 04:05:00] linux/amd64: build started
+++ [1202 04:09:00] linux/amd64: build finished
"""


# --- the parser --------------------------------------------------------------------------


def test_parser_turns_a_cold_builds_status_lines_into_what_the_console_shows() -> None:
    texts = [s.text() for s in parse_statuses(COLD_BUILD.splitlines())]
    assert texts == [
        "building go targets for linux/amd64: "
        "./vendor/k8s.io/code-generator/cmd/prerelease-lifecycle-gen",
        "building go targets for linux/amd64: ./vendor/k8s.io/code-generator/cmd/deepcopy-gen",
        "multiple platforms requested, but available 7G < threshold 40G, building platforms "
        "in serial",
        "building go targets for linux/amd64: cmd/kube-apiserver cmd/kube-controller-manager "
        "cmd/kube-scheduler cmd/kube-proxy cmd/kubelet cmd/kubectl (+1 more)",
        "building go targets for linux/arm64: cmd/kube-apiserver cmd/kube-controller-manager "
        "cmd/kube-scheduler cmd/kube-proxy cmd/kubelet cmd/kubectl (+1 more)",
        "error: call tree",
        "error: 1: hack/lib/golang.sh:714 kube::golang::build_some_binaries(...)",
    ]


def test_parser_reads_the_parallel_build_and_keeps_upper_case_words() -> None:
    texts = [s.text() for s in parse_statuses(PARALLEL.splitlines())]
    assert texts == [
        "multiple platforms requested and available 64G >= threshold 40G, building platforms "
        "in parallel",
        "building go targets for {linux/amd64 linux/arm64} in parallel (output will appear in "
        "a burst when complete): cmd/kubectl",
        "linux/amd64: build started",
        "linux/amd64: build finished",
    ]
    assert Status("GOPATH is not set").text() == "GOPATH is not set"


def test_parser_completes_a_status_at_the_next_line_or_at_flush() -> None:
    parser = StatusParser()
    assert parser.feed("+++ [1202 03:09:15] Building go targets for linux/amd64:") == []
    assert parser.feed("    cmd/kubectl") == []
    assert parser.open
    assert parser.feed("compiler noise") == [
        Status("Building go targets for linux/amd64:", ("cmd/kubectl",))]
    assert parser.feed("    indented, but no status is open") == []
    assert parser.feed("+++ slow build starts") == []  # the timestamp is optional
    assert parser.flush() == [Status("slow build starts")]
    assert parser.flush() == []


# --- the reporter: elapsed times, make runs, heartbeat (fake clock) ------------------------


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def reporter(clock: Clock, printed: list[str]) -> BuildProgress:
    return BuildProgress("build", clock=clock, emit=printed.append, heartbeat=60, settle=1)


def test_status_lines_carry_the_time_since_the_step_started_and_the_make_run() -> None:
    clock, printed = Clock(), []
    shown = reporter(clock, printed)
    shown.begin_run(("make", "all", "WHAT=cmd/kubectl", "KUBE_BUILD_PLATFORMS=linux/arm64"),
                    2, 3)
    clock.now += 192
    shown.line("+++ [1202 03:12:00] Building go targets for linux/arm64:")
    shown.line("    cmd/kubectl")
    shown.line("    cmd/kubelet")
    shown.line("# k8s.io/kubernetes/cmd/kubelet")  # compiler output: log only
    shown.end_run()
    assert printed == [
        "[build] 0s make run 2 of 3: make all WHAT=cmd/kubectl KUBE_BUILD_PLATFORMS=linux/arm64",
        "[build] 3m12s building go targets for linux/arm64: cmd/kubectl cmd/kubelet "
        "(make run 2 of 3)",
    ]


def test_a_single_make_run_is_not_numbered_and_a_long_command_is_cut() -> None:
    clock, printed = Clock(), []
    shown = reporter(clock, printed)
    shown.begin_run(("make", "all", "WHAT=" + "cmd/x " * 100), 1, 1)
    shown.line("+++ [1202 03:12:00] Generating bindata:")
    shown.end_run()
    assert printed == ["[build] 0s generating bindata"]
    shown.begin_run(("make", "all", "WHAT=" + "cmd/x " * 100), 1, 2)
    assert printed[-1].endswith("...") and len(printed[-1]) < 200


def test_a_status_whose_list_never_ends_is_shown_once_the_output_settles() -> None:
    clock, printed = Clock(), []
    shown = reporter(clock, printed)
    shown.line("+++ [1202 03:09:15] Building go targets for linux/amd64:")
    shown.line("    cmd/kubelet")  # then go build is silent for minutes
    clock.now += 0.5
    shown.tick()
    assert printed == []
    clock.now += 0.6
    shown.tick()
    assert printed == ["[build] 1s building go targets for linux/amd64: cmd/kubelet"]


def test_heartbeat_after_a_minute_of_silence_names_the_last_status() -> None:
    clock, printed = Clock(), []
    shown = reporter(clock, printed)
    clock.now += 59
    shown.tick()
    assert printed == []  # not yet
    clock.now += 1
    shown.tick()
    assert printed == ["[build] still building (1m00s)"]
    shown.line("+++ [1202 03:09:15] Building go targets for linux/amd64:")
    shown.line("    cmd/kubelet")
    clock.now += 2
    shown.tick()  # the status, not a heartbeat
    assert printed[-1] == "[build] 1m02s building go targets for linux/amd64: cmd/kubelet"
    for _ in range(12 * 60 + 30 - 62):  # a tick a second, as ticking() does
        clock.now += 1
        shown.tick()
    assert printed[-1] == ("[build] still building (12m02s, last: building go targets for "
                           "linux/amd64)")
    assert len(printed) == 2 + 11  # one heartbeat per silent minute, no more


def test_ticking_calls_tick_in_a_thread_until_the_block_ends() -> None:
    ticks: list[float] = []

    class Counting(BuildProgress):
        def tick(self) -> None:
            ticks.append(time.monotonic())

    with progress.ticking(Counting(emit=lambda _: None), every=0.01):
        time.sleep(0.2)
    count = len(ticks)
    time.sleep(0.05)
    assert count >= 3 and len(ticks) == count


def test_line_feed_cuts_chunks_into_lines() -> None:
    lines: list[str] = []
    feed = LineFeed(lines.append)
    for chunk in ("+++ [1202 03:0", "9:15] Building go targets for linux/amd64:\r\n    cmd/",
                  "kubelet\n", "no newline at the end"):
        feed.feed(chunk)
    feed.close()
    assert lines == ["+++ [1202 03:09:15] Building go targets for linux/amd64:",
                     "    cmd/kubelet", "no newline at the end"]


def test_durations_and_sizes_read_as_a_person_writes_them() -> None:
    assert [console.duration(s) for s in (0, 45.9, 60, 750, 3723)] == [
        "0s", "45s", "1m00s", "12m30s", "1h02m03s"]
    assert [console.size(n) for n in (812, 4300, 53_800_000, 1_200_000_000)] == [
        "812 B", "4.2 KiB", "51.3 MiB", "1.1 GiB"]


# --- run_make: the log's path, the statuses in order, before the step's done line ------------


def test_the_log_announcement_names_the_staging_log_and_both_places_it_ends_up() -> None:
    text = progress.log_paths_text(Path("/d/_output/.1.20.tmp-ab12/out/build.log"),
                                   Path("/d/_output/1.20"))
    assert text == ("log: /d/_output/.1.20.tmp-ab12/out/build.log (tail -f it to follow make); "
                    "kept as /d/_output/1.20/build.log when the build is published, as "
                    "/d/_output/1.20.failed.log when it fails")


@dataclass
class StreamingSession:
    """Streams a canned output through ``on_line`` and the log, as DockerSession does."""

    output: str
    exit_code: int = 0
    ran: list[Sequence[str]] = field(default_factory=list)

    @property
    def container_id(self) -> str:
        return "fake"

    def run(self, argv: Sequence[str], *, log: Path | None = None,
            on_line: Callable[[str], None] | None = None) -> RunResult:
        self.ran.append(argv)
        feed = LineFeed(on_line) if on_line else None
        for line in self.output.splitlines(keepends=True):
            if log:
                with log.open("a", encoding="utf-8") as handle:
                    handle.write(line)
            if feed:
                feed.feed(line)
        if feed:
            feed.close()
        return RunResult(tuple(argv), self.exit_code, self.output[-200:])


@dataclass(frozen=True)
class Plan:  # the part of BuildPlan run_make reads
    make_argv: tuple[str, ...] = ("make", "all", "WHAT=cmd/kubelet cmd/kubectl",
                                  "KUBE_BUILD_PLATFORMS=linux/amd64 linux/arm64")
    extra_argv: tuple[tuple[str, ...], ...] = ()
    components: tuple[str, ...] = ("kubelet", "kubectl")
    tools: tuple[str, ...] = ()
    targets: tuple[object, ...] = ()
    platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64")


@pytest.fixture
def plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console._settings, "plain", True)


def stamped(err: str) -> list[str]:
    """stderr without the HH:MM:SS stamps."""
    return [re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in err.splitlines()]


def test_run_make_names_the_log_then_shows_statuses_in_order_before_done(
        tmp_path: Path, plain: None, capsys: pytest.CaptureFixture[str]) -> None:
    log, final = tmp_path / ".1.20.tmp-x" / "out" / "build.log", tmp_path / "1.20"
    log.parent.mkdir(parents=True)
    session = StreamingSession(COLD_BUILD.split("# k8s.io")[0])
    container.run_make(session, Plan(), log, final)  # type: ignore[arg-type]
    lines = stamped(capsys.readouterr().err)
    assert lines[0] == "[build] start kubelet kubectl for linux/amd64 linux/arm64"
    assert lines[1] == f"[build] {progress.log_paths_text(log, final)}"
    assert [re.sub(r"^\[build\] \d+s ", "", line) for line in lines[2:-1]] == [
        s.text() for s in parse_statuses(COLD_BUILD.split("# k8s.io")[0].splitlines())]
    assert re.fullmatch(r"\[build\] done in \d+\.\ds", lines[-1])
    assert "cmd/kubeadm" in log.read_text()  # the whole output is in the log
    assert "run-in-gopath" not in "\n".join(lines)  # make's own lines are not on the console


def test_a_failing_make_shows_kubernetes_errors_and_names_the_kept_log(
        tmp_path: Path, plain: None, capsys: pytest.CaptureFixture[str]) -> None:
    log, final = tmp_path / "staging" / "build.log", tmp_path / "1.20"
    log.parent.mkdir(parents=True)
    plan = Plan(extra_argv=(("make", "all", "WHAT=test/e2e/e2e.test"),))
    with pytest.raises(BuildError) as failed:
        container.run_make(StreamingSession(COLD_BUILD, exit_code=2), plan,  # type: ignore[arg-type]
                           log, final)
    err = "\n".join(stamped(capsys.readouterr().err))
    assert "make run 1 of 2: make all WHAT=cmd/kubelet cmd/kubectl" in err
    assert "error: call tree (make run 1 of 2)" in err
    assert "make run 2 of 2" not in err  # it stopped at the first failure
    assert f"full log: {final.with_name('1.20.failed.log')}" in failed.value.details


def test_on_a_terminal_the_statuses_print_above_the_spinner(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    screen = io.StringIO()
    monkeypatch.setattr(console, "_err", Console(file=screen, force_terminal=True, width=300,
                                                       highlight=False))
    monkeypatch.setattr(console._settings, "plain", False)
    log = tmp_path / "build.log"
    container.run_make(StreamingSession(PARALLEL), Plan(), log,  # type: ignore[arg-type]
                       tmp_path / "1.20")
    text = screen.getvalue()
    assert "[build] 0s linux/amd64: build finished" in text
    assert text.index("build finished") < text.index("✓")


def test_plan_has_what_run_make_reads() -> None:
    names = set(BuildPlan.__dataclass_fields__)
    assert {"make_argv", "extra_argv", "components", "tools", "targets", "platforms"} <= names
