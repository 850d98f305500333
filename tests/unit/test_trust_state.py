"""Issue 24 item 2: the tool's state files are data, checked before use.

``source.json``, ``build-run.json``, ``rebase.json`` and the rebase backup's ``listing.json``
that do not hold what tkedistro writes (wrong types, ``1e400``, ``NaN``, ``[]``, cut-off
JSON, a path out of the repo) are refused with exit 17, naming the file and the key, with a
recovery that works; nothing is applied, restored or written outside the repo. Every command
runs through the CLI; the distro sits two folders below ``tmp_path``, so the audit's
``../../../../victim`` lands in ``tmp_path``, where the test can watch it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from tests.helpers.gitrepo import git
from tests.helpers.series import Distro, make_distro
from tests.unit.test_rebase import P, cli
from tests.unit.test_startup import script

STATE = "_src/.1.20.tkedistro"
DAMAGED = "is damaged, not what tkedistro writes"


@pytest.fixture
def distro(tmp_path: Path) -> Distro:
    return make_distro(tmp_path / "deep")


def stopped(d: Distro) -> tuple[Path, dict[str, Any]]:
    """A rebase stopped at its conflict (patch 4 of 5), and its state."""
    res = cli(d, "rebase", "1.20", "--onto", "v1.20.2")
    assert res.exit_code == 7, res.output
    path = d.root / STATE / "rebase.json"
    return path, json.loads(path.read_text())


def strict_json(text: str) -> Any:
    """``text`` as JSON, refusing NaN and Infinity (which no JSON reader outside Python takes)."""
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in the --json output")
    return json.loads(text, parse_constant=refuse)


def refused(res: Result, file: str, problem: str, hint: str) -> None:
    assert res.exit_code == 17, res.output
    assert f"error: {STATE}/{file}: {problem}" in res.stderr, res.stderr
    assert f"{DAMAGED}\n" in res.stderr
    assert f"hint: {hint}" in res.stderr, res.stderr
    assert "Traceback" not in res.output


def snapshot(d: Distro) -> dict[str, bytes]:
    """Every file of the repo outside the state folder, and of ``_src/1.20``'s HEAD."""
    files = {str(p.relative_to(d.root)): p.read_bytes() for p in sorted(d.root.rglob("*"))
             if p.is_file() and not p.is_relative_to(d.root / STATE) and ".git" not in p.parts}
    return {**files, "HEAD": git(d.src, "rev-parse", "HEAD").encode()}


# -- rebase-backup/listing.json: --abort writes only into the patch folder ----------------------

ABORT_HINT = ("--abort cannot put the manifest and patch files back from it; their copies are "
              f"in {STATE}/rebase-backup/ (manifest.yaml, patches/). Finish the rebase with "
              "`tkedistro rebase 1.20 --continue` or --skip (neither needs it)")


def test_abort_refuses_a_backup_listing_that_names_a_file_outside_the_repo(
        distro: Distro, tmp_path: Path) -> None:
    stopped(distro)
    victim = tmp_path / "victim"
    victim.write_text("the host's file\n")
    listing = distro.root / STATE / "rebase-backup/listing.json"
    data = json.loads(listing.read_text())
    listing.write_text(json.dumps({**data, "files": [*data["files"], "../../../../victim"]}))
    assert (distro.root / "patches/1.20/../../../../victim").resolve() == victim
    before = snapshot(distro)

    res = cli(distro, "rebase", "1.20", "--abort")

    refused(res, "rebase-backup/listing.json",
            f"files[{len(data['files'])}]: '../../../../victim' is not the name of a file in "
            "the patch folder", ABORT_HINT)
    assert victim.read_text() == "the host's file\n"
    assert snapshot(distro) == before  # refused before _src or the series was touched
    assert (distro.root / STATE / "rebase.json").is_file()  # still mid-rebase


def test_with_a_damaged_listing_the_rebase_can_still_be_finished(distro: Distro) -> None:
    stopped(distro)
    (distro.root / STATE / "rebase-backup/listing.json").write_text("[]")
    refused(cli(distro, "rebase", "1.20", "--abort"), "rebase-backup/listing.json",
            "a list where a JSON object is expected", ABORT_HINT)

    done = cli(distro, "rebase", "1.20", "--skip")  # as the hint says
    assert done.exit_code == 0, done.output
    assert not (distro.root / STATE / "rebase.json").exists()


# -- rebase.json: --skip and --continue apply only repo files ---------------------------------

REBASE_HINT = ("tkedistro rebase 1.20 --continue, --skip and --abort all need it; to forget "
               f"the rebase, delete {STATE}/rebase.json: the manifest and patch files stay as "
               "they are now")


@pytest.mark.parametrize("how", ["--skip", "--continue"])
@pytest.mark.parametrize(("entry", "problem"), [
    ("../../evil.patch", "../../evil.patch is outside the repo"),
    ("@EVIL@", "@EVIL@ is an absolute path"),
])
def test_a_rebase_state_naming_a_patch_outside_the_repo_applies_nothing(
        distro: Distro, tmp_path: Path, how: str, entry: str, problem: str) -> None:
    path, data = stopped(distro)
    evil = tmp_path / "evil.patch"
    evil.write_bytes((distro.root / P[4]).read_bytes().replace(b"kubelet", b"owned"))
    (distro.root / "patches/1.20/evil.patch").symlink_to(evil)
    entry, problem = (s.replace("@EVIL@", str(evil)) for s in (entry, problem))
    path.write_text(json.dumps({**data, "series": [*data["series"][:4], entry]}))
    before = snapshot(distro)

    res = cli(distro, "rebase", "1.20", how, "--json")

    refused(res, "rebase.json", f"series[4]: {problem}", REBASE_HINT)
    assert strict_json(res.stdout)["error"]["exit_code"] == 17
    assert snapshot(distro) == before  # nothing applied, nothing written


@pytest.mark.parametrize("how", ["--skip", "--continue"])
def test_a_rebase_state_naming_a_patch_through_a_planted_symlink_is_refused_naming_it(
        distro: Distro, tmp_path: Path, how: str) -> None:
    """The state names a repo file; a symlink planted in the repo there leads outside: the
    symlink is what is wrong (exit 3 naming it), not the state."""
    path, data = stopped(distro)
    evil = tmp_path / "evil.patch"
    evil.write_bytes((distro.root / P[4]).read_bytes().replace(b"kubelet", b"owned"))
    link = distro.root / "patches/1.20/evil.patch"
    link.symlink_to(evil)
    path.write_text(json.dumps({**data, "series": [*data["series"][:4], str(
        link.relative_to(distro.root))]}))
    before = snapshot(distro)

    res = cli(distro, "rebase", "1.20", how, "--json")

    assert res.exit_code == 3, res.output
    assert res.stderr.startswith(f"error: {link} is a symlink; tkedistro does not follow")
    assert snapshot(distro) == before  # nothing applied, nothing written


@pytest.mark.parametrize(("change", "problem"), [
    (lambda d: {**d, "position": "3"}, 'position: expected a valid integer, got "3"'),
    (lambda d: {**d, "position": True}, "position: expected a valid integer, got true"),
    (lambda d: {**d, "src_existed": 1}, "src_existed: expected a valid boolean, got 1"),
    (lambda d: {**d, "onto_commit": "HEAD"}, "onto_commit: string should match pattern"),
    (lambda d: {**d, "orig_branch": "--upload-pack=x"}, "orig_branch: '--upload-pack=x' is "
                                                         "not a name git takes"),
    (lambda d: {**d, "outcomes": [{}]}, "outcomes[0].position: required"),
    (lambda d: {**d, "extra": 1}, "extra: unknown key"),
])
def test_a_rebase_state_of_wrong_types_is_refused(distro: Distro, change: Any,
                                                   problem: str) -> None:
    path, data = stopped(distro)
    path.write_text(json.dumps(change(data)))
    res = cli(distro, "rebase", "1.20", "--continue")
    assert res.exit_code == 17, res.output
    assert f"error: {STATE}/rebase.json: {problem}" in res.stderr, res.stderr
    assert "Traceback" not in res.output


MALFORMED: dict[str, Any] = {
    "1e400": lambda text: text.replace('"version": 1', '"version": 1e400'),
    "NaN": lambda text: text.replace('"version": 1', '"version": NaN'),
    "-Infinity": lambda text: text.replace('"version": 1', '"version": -Infinity'),
    "[]": lambda text: "[]",
    "truncated": lambda text: text[: len(text) // 2],
}
PARSE_PROBLEM = {
    "1e400": "holds the number 1e400, too large to be one tkedistro writes",
    "NaN": "holds NaN, which is no number tkedistro writes",
    "-Infinity": "holds -Infinity, which is no number tkedistro writes",
    "[]": "a list where a JSON object is expected",
    "truncated": "not JSON (",
}


@pytest.mark.parametrize("how", sorted(MALFORMED))
def test_a_malformed_rebase_state_is_exit_17_for_every_command_that_reads_it(
        distro: Distro, how: str) -> None:
    path, _ = stopped(distro)
    path.write_text(MALFORMED[how](path.read_text()))
    for args in (["rebase", "1.20", "--continue", "--json"], ["rebase", "1.20", "--abort"],
                 ["source", "1.20", "--json"]):
        res = cli(distro, *args)
        refused(res, "rebase.json", PARSE_PROBLEM[how], REBASE_HINT)
        if "--json" in args:
            assert strict_json(res.stdout)["error"]["type"] == "DamagedStateError"


def test_deleting_a_damaged_rebase_state_and_source_force_recover(distro: Distro) -> None:
    path, _ = stopped(distro)
    manifest = distro.manifest.read_bytes()
    path.write_text("{")
    assert cli(distro, "rebase", "1.20", "--abort").exit_code == 17
    path.unlink()  # as the hint says
    res = cli(distro, "source", "1.20", "--force")
    assert res.exit_code == 0, res.output
    assert "saved the work in progress of _src/1.20 to refs/tkedistro/backup/" in res.stderr
    assert distro.manifest.read_bytes() == manifest
    assert git(distro.src, "status", "--porcelain") == ""
    assert cli(distro, "source", "1.20").exit_code == 0


# -- source.json and build-run.json --------------------------------------------------------------

SOURCE_HINT = (f"delete {STATE}/source.json and run `tkedistro source 1.20`: it applies the "
               "series again from the pinned commit")
BUILD_HINT = (f"delete {STATE}/build-run.json and run the command again: files the "
              "interrupted build may have written then stay in _src/1.20")


@pytest.mark.parametrize("how", sorted(MALFORMED))
def test_a_malformed_source_record_is_exit_17_and_deleting_it_recovers(
        distro: Distro, how: str) -> None:
    path = distro.root / STATE / "source.json"
    path.write_text(MALFORMED[how](path.read_text()))
    res = cli(distro, "source", "1.20", "--json")
    refused(res, "source.json", PARSE_PROBLEM[how], SOURCE_HINT)
    assert strict_json(res.stdout)["ok"] is False
    path.unlink()
    again = cli(distro, "source", "1.20", "--json")
    assert again.exit_code == 0, again.output
    assert strict_json(again.stdout)["head_commit"] == git(distro.src, "rev-parse", "HEAD")


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("applied", {}, "applied: expected a list, got an object"),
    ("head", 7, "head: expected a commit SHA, got 7"),
    ("version", 2, "version: 2 is not 1, the one this tkedistro writes"),
    ("version", True, "version: true is not 1, the one this tkedistro writes"),
    ("packs", ["/etc/passwd"], 'packs[0]: expected the absolute path of a pack index '
                               '(pack-<sha>.idx), got "/etc/passwd"'),
    ("tag", "--upload-pack=x", 'tag: expected a tag like v1.20.0, got "--upload-pack=x"'),
])
def test_a_source_record_of_wrong_types_is_refused(distro: Distro, key: str, value: object,
                                                   problem: str) -> None:
    path = distro.root / STATE / "source.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), key: value}))
    refused(cli(distro, "source", "1.20"), "source.json", problem, SOURCE_HINT)


def test_a_source_record_naming_a_file_outside_the_repo_is_refused(distro: Distro) -> None:
    path = distro.root / STATE / "source.json"
    data = json.loads(path.read_text())
    data["applied"][1]["file"] = "../../victim"
    path.write_text(json.dumps(data))
    refused(cli(distro, "source", "1.20"), "source.json",
            "applied[1].file: ../../victim is outside the repo", SOURCE_HINT)


def test_the_quick_source_path_refuses_a_damaged_record_without_loading_pydantic(
        distro: Distro) -> None:
    (distro.root / STATE / "source.json").write_text('{"version": 1e400}')
    run = script("--root", str(distro.root), "source", "1.20", "--json")
    assert run.code == 17, run.stderr
    assert f"error: {STATE}/source.json: holds the number 1e400" in run.stderr
    assert strict_json(run.stdout)["error"]["exit_code"] == 17
    assert run.loaded("pydantic") == []


@pytest.mark.parametrize(("text", "problem"), [
    *((MALFORMED[how]('{"version": 1, "started_ns": 5, "before": []}'), PARSE_PROBLEM[how])
      for how in sorted(MALFORMED)),
    ('{"version": 1, "started_ns": "5", "before": []}',
     'started_ns: expected a time in nanoseconds, got "5"'),
    ('{"version": 1, "started_ns": -5, "before": []}',
     "started_ns: -5 is not a time in nanoseconds"),
    ('{"version": 1, "started_ns": 5, "before": ["../../x"]}',
     "before[0]: ../../x is not a path inside the tree"),
    ('{"version": 1, "started_ns": 5, "before": {}}',
     "before: expected a list of paths, got an object"),
    ('{"version": 1, "started_ns": 5}', "before: required"),
])
def test_a_malformed_build_record_is_exit_17_and_deleting_it_recovers(
        distro: Distro, text: str, problem: str) -> None:
    record = distro.root / STATE / "build-run.json"
    record.write_text(text)
    res = cli(distro, "source", "1.20", "--json")
    refused(res, "build-run.json", problem, BUILD_HINT)
    assert strict_json(res.stdout)["error"]["exit_code"] == 17
    assert record.is_file()  # kept: what to do with it is the maintainer's call
    record.unlink()
    assert cli(distro, "source", "1.20").exit_code == 0


def test_a_symlinked_state_file_is_refused_not_followed(distro: Distro, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.json"
    path = distro.root / STATE / "source.json"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    res = cli(distro, "source", "1.20")
    assert res.exit_code == 3, res.output
    assert f"error: {path} is a symlink" in res.stderr
