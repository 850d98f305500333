"""``tkedistro --help``, ``COMMAND --help`` and ``list`` print what they kept from the run
before when nothing it was made from changed (issue 28, item 8), and only then.

Each run is the installed script in a fresh interpreter (``test_startup.script``): the
first run of a line goes through typer (help) or the manifest checks (list) and keeps its
answer in the cache; the next one prints it without loading them. No timing asserts (the
figures: bench/bench_startup.py).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.main import get_group
from typer.testing import CliRunner

import tkedistro
from tests.helpers.series import Distro, make_distro
from tests.unit.test_startup import script
from tkedistro.cli.app import app
from tkedistro.core import startcache

TYPER = ("typer", "click", "rich")
CHECKS = ("pydantic", "ruamel")


def _kept(name: str) -> Path:
    return startcache.entry_path(Path(os.environ["TKEDISTRO_CACHE"]), name)


@pytest.mark.parametrize("args", [["--help"], ["patches", "--help"], ["cluster", "--help"]])
def test_a_help_line_prints_the_help_typer_printed_the_run_before(args: list[str]) -> None:
    first, second = script(*args), script(*args)

    assert first.code == second.code == 0
    assert first.loaded("typer") == ["typer"]
    assert second.loaded(*TYPER, *CHECKS) == []
    assert second.stdout == first.stdout and second.stderr == first.stderr == ""


def test_the_kept_help_names_every_command_of_the_typer_app() -> None:
    script("--help")
    kept = script("--help")

    assert kept.loaded("typer") == []
    listed = {line.split()[1] for line in kept.stdout.splitlines()
              if line.startswith("│ ") and len(line.split()) > 2}
    assert set(get_group(app).commands) <= listed


def test_the_kept_help_is_the_typer_app_s_help() -> None:
    script("--help", env={"COLUMNS": "100"})
    kept = script("--help", env={"COLUMNS": "100"})
    typer_s = CliRunner().invoke(app, ["--help"], prog_name="tkedistro",
                                 env={"COLUMNS": "100"})

    assert kept.loaded("typer") == []
    assert kept.stdout == typer_s.stdout


def test_another_terminal_width_or_no_color_gets_typer_s_help_again() -> None:
    narrow = script("--help", env={"COLUMNS": "60"})
    wide = script("--help", env={"COLUMNS": "120"})
    again = script("--help", env={"COLUMNS": "120", "NO_COLOR": "1"})

    assert narrow.loaded("typer") == wide.loaded("typer") == again.loaded("typer") == ["typer"]
    assert max(map(len, narrow.stdout.splitlines())) == 60
    assert max(map(len, wide.stdout.splitlines())) == 120


def test_a_help_line_typer_must_read_is_not_kept() -> None:
    for _ in range(2):
        run = script("--help", env={"TKEDISTRO_UPSTREAM": "/u"})
        assert run.code == 0 and run.loaded("typer") == ["typer"]
    assert not _kept("help").exists()


def test_a_damaged_kept_help_is_ignored_and_replaced() -> None:
    script("--help")
    _kept("help").write_text("{not json")

    run, again = script("--help"), script("--help")

    assert run.code == 0 and run.loaded("typer") == ["typer"] and "Usage: tkedistro" in run.stdout
    assert again.loaded("typer") == [] and again.stdout == run.stdout


def test_an_edit_of_the_package_changes_the_code_stamp(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "tkedistro"
    shutil.copytree(Path(tkedistro.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(tkedistro, "__path__", [str(package)])
    before = startcache.code_stamp()
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "x.pyc").write_bytes(b"compiled")
    assert startcache.code_stamp() == before  # compiled files are not the code

    (package / "cli" / "release.py").write_text("# an edited docstring\n")

    assert startcache.code_stamp() != before


@pytest.fixture()
def distro(tmp_path: Path) -> Distro:
    return make_distro(tmp_path, prepare=False)


def _list(distro: Distro, *args: str) -> tuple[int, str, str, bool]:
    run = script("--root", str(distro.root), "list", *args)
    return run.code, run.stdout, run.stderr, run.loaded(*CHECKS) != []


def test_an_unchanged_repo_is_listed_without_loading_the_manifest_checks(
        distro: Distro) -> None:
    code, text, err, checked = _list(distro)
    assert (code, err, checked) == (0, "", True)
    assert text.splitlines()[1].startswith("1.20 ")

    assert _list(distro) == (0, text, "", False)
    as_json = _list(distro, "--json")
    assert as_json[:3] == (0, CliRunner().invoke(
        app, ["--root", str(distro.root), "list", "--json"]).stdout, "")
    assert json.loads(as_json[1])["releases"][0]["release"] == "1.20"


def test_an_edited_manifest_is_checked_and_listed_anew(distro: Distro) -> None:
    _list(distro)
    text = distro.manifest.read_text()
    assert "-tke.1\n" in text
    distro.manifest.write_text(text.replace("-tke.1\n", "-tke.2\n"))

    code, listed, _, checked = _list(distro)

    assert (code, checked) == (0, True) and "-tke.2 " in listed


def test_a_broken_manifest_is_reported_on_every_run_after_a_kept_listing(
        distro: Distro) -> None:
    _list(distro)
    distro.manifest.write_text(distro.manifest.read_text().replace("schema: 1", "schema: 2"))

    for _ in range(2):
        code, text, err, checked = _list(distro)
        assert (code, text, checked) == (3, "", True)
        assert "releases/1.20.yaml:" in err and "unsupported schema version 2" in err


def test_a_new_manifest_is_listed(distro: Distro) -> None:
    _list(distro)
    shutil.copy(distro.manifest, distro.root / "releases" / "1.21.yaml")
    (distro.root / "releases" / "1.21.yaml").write_text(
        (distro.root / "releases" / "1.21.yaml").read_text().replace('release: "1.20"',
                                                                      'release: "1.21"'))

    code, text, err, _ = _list(distro)

    assert code == 0, err
    assert [line.split()[0] for line in text.splitlines()[1:]] == ["1.20", "1.21"]


def test_a_cache_folder_behind_a_symlink_keeps_nothing_and_lists_all_the_same(
        distro: Distro, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    kept = _kept("list").parent
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.symlink_to(elsewhere)

    first, second = _list(distro), _list(distro)

    assert first[:3] == second[:3] and first[0] == 0
    assert second[3] is True  # nothing was kept: checked again
    assert list(elsewhere.iterdir()) == []
