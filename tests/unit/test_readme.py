"""The README stays true: its test command is what CI runs, its tables match the tool."""

from __future__ import annotations

from tests.conftest import REPO
from tkedistro.cli.app import app
from tkedistro.core.errors import exit_code_table

README = (REPO / "README.md").read_text()


def _quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [line.strip().split("#")[0].strip() for line in section.splitlines()
            if line.startswith("    ") and line.strip()]


def test_quick_start_is_install_test_and_build() -> None:
    assert _quick_start_commands() == ["make install", "make test", "tkedistro build 1.20"]


def test_ci_runs_the_readme_install_and_test_commands() -> None:
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert "make install" in ci
    assert "make test" in ci


def test_every_command_is_in_the_readme_table() -> None:
    table = README.split("<!-- commands:start -->", 1)[1].split("<!-- commands:end -->", 1)[0]
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    names |= {g.name or "" for g in app.registered_groups}
    missing = sorted(n for n in names if f"`tkedistro {n}" not in table)
    assert missing == []


def test_exit_code_table_is_the_one_rendered_from_the_error_classes() -> None:
    section = README.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert table == exit_code_table().splitlines()
