"""The nightly's alert script (tkedistro/templates/ci/alert.js), run by node as
actions/github-script runs it, with a real @octokit/rest client against a fake GitHub API:
it opens an issue for a failing release line, updates it on the next failing night, closes it
when the night is green, and never touches an issue it did not open."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.fakegithub import FakeGitHub, Issue, job

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tkedistro" / "templates" / "ci" / "alert.js"
HARNESS = REPO / "tests" / "helpers" / "github_script.cjs"
OCTOKIT = REPO / ".tools" / "node_modules" / "@octokit" / "rest"
LABEL = "tkedistro-nightly"
TITLE = "nightly: 1.20 failing"
SERVER = "https://github.example"

FORECAST = """tag       applies  conflicts
v1.20.3   14/14    -
v1.20.4   13/14    0007-fix-kubelet-flags.patch
"""


@dataclass
class Night:
    stdout: str
    run_url: str


@pytest.fixture
def node() -> str:
    """node and @octokit/rest (`make lint-tools` installs both); under CI their absence fails."""
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not installed: `make lint-tools` installs nodejs and npm")
    if not (OCTOKIT / "package.json").is_file():
        pytest.skip(f"the npm package @octokit/rest is not installed in {OCTOKIT.parent.parent}: "
                    "run `make lint-tools`")
    return found


def _run_alert(node: str, fake: FakeGitHub, workdir: Path, run_id: int,
               releases: str = '["1.20"]') -> Night:
    env = {**os.environ, "TKEDISTRO_RELEASES": releases, "GITHUB_API_URL": fake.url,
           "GITHUB_TOKEN": fake.token, "GITHUB_REPOSITORY": f"{fake.owner}/{fake.repo}",
           "GITHUB_RUN_ID": str(run_id), "GITHUB_SERVER_URL": SERVER, "NO_PROXY": "127.0.0.1"}
    proc = subprocess.run([node, str(HARNESS), str(SCRIPT)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fake.unknown == [], fake.unknown
    return Night(proc.stdout, f"{SERVER}/{fake.owner}/{fake.repo}/actions/runs/{run_id}")


def _reports(workdir: Path, release: str, forecast: str | None, logs: dict[str, str]) -> None:
    """What the alert job downloads: reports/nightly-<release>/{forecast.txt,logs/<slug>.log}."""
    folder = workdir / "reports" / f"nightly-{release}"
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "logs").mkdir(parents=True)
    if forecast is not None:
        (folder / "forecast.txt").write_text(forecast)
    for slug, text in logs.items():
        (folder / "logs" / f"{slug}.log").write_text(text)


def _build_log() -> str:
    return "".join(f"build output {n:03d}\n" for n in range(1, 101))


def _labelled(fake: FakeGitHub) -> list[Issue]:
    return [i for i in fake.issues if LABEL in i.labels]


def _other_jobs() -> list[dict[str, object]]:
    # listed before the release's own job: with two jobs a page, it is on the second page
    return [job("lint", "success", {"Lint": "success"}, 1), job("unit tests", "success", {}, 2)]


def test_a_failing_line_gets_one_issue_updated_each_night_and_closed_when_green(
        node: str, tmp_path: Path) -> None:
    with FakeGitHub() as fake:
        users = fake.add_issue(TITLE, "I saw 1.20 fail on my laptop", labels=["bug"])
        # night 1: the build fails; 1.21 is green and never had an issue
        fake.runs[101] = [*_other_jobs(), job("nightly 1.21", "success", {"Build": "success"}, 4),
                          job("nightly 1.20", "failure", {"Set up job": "success",
                                                          "Build the release (arm64)": "failure",
                                                          "Conformance": None}, 3)]
        _reports(tmp_path, "1.20", FORECAST, {"build-the-release-arm64": _build_log()})
        night = _run_alert(node, fake, tmp_path, 101, '["1.20", "1.21"]')
        assert len(fake.issues) == 2
        ours = fake.issue(2)
        assert (ours.title, ours.labels, ours.state) == (TITLE, [LABEL], "open")
        assert night.run_url in ours.body
        assert "Failed steps: Build the release (arm64)" in ours.body
        assert "```\n" + FORECAST.rstrip() + "\n```" in ours.body
        assert "build output 041" in ours.body and "build output 100" in ours.body
        assert "build output 040" not in ours.body
        assert "(40 earlier lines not shown)" in ours.body
        made = [r.body for r in fake.requests if r.path.endswith("/labels")]
        assert made == [{"name": LABEL, "color": "b60205", "description": "Opened by the "
                         "tkedistro nightly; closed by it when the night is green"}]
        assert "1.20: failure; opened issue #2" in night.stdout
        assert "1.21: success; no open issue" in night.stdout

        # night 2: conformance times out; no forecast, no log uploaded
        fake.runs[102] = [*_other_jobs(), job("nightly 1.20", "timed_out", {
            "Build the release (arm64)": "success", "Conformance": "cancelled"}, 3)]
        _reports(tmp_path, "1.20", None, {})
        night = _run_alert(node, fake, tmp_path, 102)
        assert len(fake.issues) == 2
        assert ours.state == "open"
        assert night.run_url in ours.body and "runs/101" not in ours.body
        assert "Failed steps: Conformance" in ours.body
        assert "(no forecast this night)" in ours.body and "(no log uploaded)" in ours.body
        assert ours.comments == [f"failed again: {night.run_url}"]
        assert sum(r.method == "POST" and r.path.endswith("/labels") for r in fake.requests) == 1
        assert "1.20: timed_out; updated issue #2" in night.stdout

        # night 3: green
        fake.runs[103] = [*_other_jobs(), job("nightly 1.20", "success", {"Build": "success"}, 3)]
        night = _run_alert(node, fake, tmp_path, 103)
        assert ours.comments[-1] == f"green again: {night.run_url}"
        assert (ours.state, ours.state_reason) == ("closed", "completed")
        assert "1.20: success; closed issue #2" in night.stdout

        # the user's issue of the same title was never read for an update, edited or closed
        assert (users.body, users.labels, users.state, users.comments) == (
            "I saw 1.20 fail on my laptop", ["bug"], "open", [])
        assert not [r for r in fake.writes() if r.path.endswith(f"/issues/{users.number}")
                    or f"/issues/{users.number}/" in r.path]


def test_a_failure_next_to_a_users_issue_of_the_same_title_opens_the_labelled_one(
        node: str, tmp_path: Path) -> None:
    with FakeGitHub() as fake:
        users = fake.add_issue(TITLE, "tracking by hand")
        fake.labels[LABEL] = {"name": LABEL, "color": "00ff00", "description": "made by a user"}
        fake.runs[7] = [job("nightly 1.20", "failure", {"Rebase": "failure"}, 1)]
        _reports(tmp_path, "1.20", FORECAST, {"rebase": "conflict in pkg/kubelet\n"})
        night = _run_alert(node, fake, tmp_path, 7)
        assert [(i.number, i.labels) for i in _labelled(fake)] == [(2, [LABEL])]
        assert "conflict in pkg/kubelet" in fake.issue(2).body
        assert (users.body, users.comments, users.state) == ("tracking by hand", [], "open")
        # the label existed: it is used as it is
        assert fake.labels[LABEL]["color"] == "00ff00"
        assert not [r for r in fake.writes() if "/labels" in r.path]
        assert "opened issue #2" in night.stdout


def test_a_label_another_run_made_meanwhile_is_used(node: str, tmp_path: Path) -> None:
    with FakeGitHub() as fake:
        fake.labels[LABEL] = {"name": LABEL, "color": "b60205", "description": None}
        fake.hidden_labels.add(LABEL)
        fake.runs[8] = [job("nightly 1.20", "failure", {"Build": "failure"}, 1)]
        night = _run_alert(node, fake, tmp_path, 8)
        assert [(i.title, i.labels) for i in fake.issues] == [(TITLE, [LABEL])]
        assert sum(r.method == "POST" and r.path.endswith("/labels") for r in fake.requests) == 1
        assert "(no log uploaded)" in fake.issue(1).body
        assert "opened issue #1" in night.stdout


def test_skipped_cancelled_and_missing_jobs_touch_nothing(node: str, tmp_path: Path) -> None:
    with FakeGitHub() as fake:
        fake.labels[LABEL] = {"name": LABEL, "color": "b60205", "description": None}
        ours = fake.add_issue(TITLE, "the 1.20 line failed", labels=[LABEL])
        fake.runs[9] = [job("nightly 1.20", "cancelled", {"Build": "cancelled"}, 1),
                        job("nightly 1.21", "skipped", {}, 2)]
        night = _run_alert(node, fake, tmp_path, 9, '["1.20", "1.21", "1.22"]')
        assert fake.writes() == []
        assert (ours.state, ours.body, ours.comments) == ("open", "the 1.20 line failed", [])
        assert "1.20: the job concluded cancelled; nothing to do" in night.stdout
        assert "1.21: the job concluded skipped; nothing to do" in night.stdout
        assert '1.22: no job "nightly 1.22" in this run; nothing to do' in night.stdout


def test_the_issue_body_keeps_under_githubs_limit_with_every_failed_steps_tail(
        node: str, tmp_path: Path) -> None:
    steps = {f"Step {n}": "failure" for n in range(1, 5)}
    with FakeGitHub() as fake:
        fake.runs[11] = [job("nightly 1.20", "failure", steps, 1)]
        wide = "".join(f"{n:03d} " + "x" * 3000 + f" end of line {n:03d}\n" for n in range(80))
        _reports(tmp_path, "1.20", "tag applies\n" + "v1.20.9 ok\n" * 20000,
                 {f"step-{n}": wide + "```\n" for n in range(1, 5)})
        _run_alert(node, fake, tmp_path, 11)
        body = fake.issue(1).body
        assert len(body) <= 65536
        assert "(cut to fit the issue)" in body
        for n in range(1, 5):
            assert f'### Step "Step {n}"' in body
        assert body.count("end of line 079") == 4
        # a log holding a fence does not end its code block early
        assert "````\n" in body
