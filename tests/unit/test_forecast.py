"""`tkedistro forecast`: a dry run per tag, table and JSON, changing nothing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.series import fingerprint, make_distro
from tests.unit.test_rebase import P, cli


def test_forecast_reports_each_tag_and_changes_nothing(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    before = fingerprint(d)
    res = cli(d, "forecast", "1.20", "--onto", "v1.20.1", "v1.20.2")
    assert res.exit_code == 0, res.output
    tags = d.upstream.tags
    lines = res.stdout.splitlines()
    assert lines[0] == f"forecast 1.20: 5 patches on v1.20.0 ({tags['v1.20.0'][:12]})"
    assert f"v1.20.1 ({tags['v1.20.1'][:12]}): 3 applied clean, 1 applied with 3-way, " \
           "1 already upstream" in lines
    assert f"v1.20.2 ({tags['v1.20.2'][:12]}): 2 applied clean, 1 applied with 3-way, " \
           "1 already upstream, 1 conflict" in lines
    assert ["4", P[3], "conflict:", "README.md"] in [line.split() for line in lines]
    assert fingerprint(d) == before


def test_forecast_json_and_an_unknown_tag(tmp_path: Path) -> None:
    d = make_distro(tmp_path, prepare=False)
    res = cli(d, "forecast", "1.20", "--onto", "v1.20.2", "--onto", "v9.9.9", "--json")
    assert res.exit_code == 5
    data = json.loads(res.stdout)
    first, second = data["tags"]
    assert (first["tag"], first["ok"], first["counts"]) == (
        "v1.20.2", False, {"clean": 2, "3way": 1, "upstream": 1, "conflict": 1})
    assert [p["status"] for p in first["patches"]] == ["clean", "3way", "upstream", "conflict",
                                                       "clean"]
    assert first["patches"][2]["upstream_commit"] == d.upstream.tags["v1.20.1"]
    assert (second["tag"], second["commit"], second["error"]) == (
        "v9.9.9", None, f"upstream {d.upstream.url} has no tag v9.9.9")
    assert res.stderr.endswith("error: forecast could not try v9.9.9\n")
    assert not d.src.exists()


def test_a_change_taken_upstream_in_another_form_is_found_by_content(tmp_path: Path) -> None:
    from tests.helpers.series import LIMITS

    d = make_distro(tmp_path, prepare=False)
    merged = LIMITS.replace("line2 = 2", "line2 = 22").replace("kmem = true", "kmem = false")
    sha = d.upstream.commit({"pkg/kubelet/cm/limits.go": merged.replace("line4 = 4", "line4 = 44")},
                            "cm: kmem off, renumber line4", tag="v1.20.3")
    res = cli(d, "forecast", "1.20", "--onto", "v1.20.3", "--json")
    assert res.exit_code == 0, res.output
    kmem = json.loads(res.stdout)["tags"][0]["patches"][1]
    assert (kmem["status"], kmem["upstream_commit"], kmem["match"], kmem["upstream_subject"]) == (
        "upstream", sha, "content", "cm: kmem off, renumber line4")
