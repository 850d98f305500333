"""Start-up: the script imports only what the command needs (issue 17, item 12).

``--version`` and the plain ``source`` lines run without typer (``cli/quick.py``) and print
and exit exactly as through the typer app; other commands get a typer app with only their
module's commands, which must parse and print as the full app does.

Each run is a fresh interpreter entering ``tkedistro.cli.app.main`` as the installed script
does; after the command it lists the modules that were loaded. No timing asserts (figures:
bench/bench_maintainer.py): these say which libraries a quick command must not pay for.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.conftest import REPO
from tests.helpers.series import Distro, make_distro
from tkedistro import __version__
from tkedistro.cli.app import app
from tkedistro.cli.line import FLAGS, VALUED, read_line
from tkedistro.cli.quick import source_line
from tkedistro.cli.root import COMMANDS, MODULES, make_app

# what the script runs, then the top-level names of every module it loaded (on stderr's
# last line, after the command's own output)
_PROBE = """\
import json, sys
sys.argv = ["tkedistro", *sys.argv[1:]]
try:
    from tkedistro.cli.app import main
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""
HEAVY = ("git", "ruamel", "pydantic", "jinja2", "docker", "markdown_it", "pygments")


class Run:
    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        *stderr, last = done.stderr.splitlines()
        probe = json.loads(last)
        self.code: int = probe["code"]
        self.modules: set[str] = set(probe["modules"])
        self.stdout, self.stderr = done.stdout, "\n".join(stderr)

    def loaded(self, *names: str) -> list[str]:
        """Those of ``names`` (packages) of which a module was loaded."""
        return [n for n in names if any(m == n or m.startswith(f"{n}.") for m in self.modules)]


def script(*args: str, env: dict[str, str] | None = None) -> Run:
    environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    environ.pop("CI", None)
    return Run(subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True,
                              text=True, env=environ, cwd=REPO, check=False))


def test_version_alone_loads_neither_typer_nor_rich_nor_any_library() -> None:
    run = script("--version")

    assert (run.code, run.stdout, run.stderr) == (0, f"tkedistro {__version__}\n", "")
    assert run.loaded("typer", "click", "rich", "filelock", "tkedistro.cli.root", *HEAVY) == []
    assert run.loaded("dataclasses", "inspect") == []  # the command line is read without them


def test_version_says_the_same_through_the_typer_app() -> None:
    result = CliRunner().invoke(app, ["--version"])

    assert (result.exit_code, result.stdout) == (0, f"tkedistro {__version__}\n")


def test_version_after_a_global_option_is_still_typer_s() -> None:
    run = script("--debug", "--version")

    assert (run.code, run.stdout) == (0, f"tkedistro {__version__}\n")
    assert run.loaded("typer") == ["typer"]


@pytest.fixture()
def distro(tmp_path: Path) -> Distro:
    return make_distro(tmp_path)  # with _src prepared


def test_unchanged_source_loads_no_typer_rich_git_yaml_or_pydantic(distro: Distro) -> None:
    run = script("--root", str(distro.root), "source", "1.20")

    assert run.code == 0, run.stderr
    assert run.stdout.startswith("_src/1.20: up to date: v1.20.0 (")
    assert run.loaded("typer", "click", "rich", "filelock", "tkedistro.cli.root", *HEAVY) == []


def test_unchanged_source_on_a_terminal_still_loads_no_rich(distro: Distro) -> None:
    """Nothing goes to stderr, so rich's terminal check is never needed (FORCE_COLOR makes
    rich call stderr a terminal)."""
    run = script("--root", str(distro.root), "source", "1.20", env={"FORCE_COLOR": "1"})

    assert run.code == 0, run.stderr
    assert run.loaded("rich") == []


def test_an_error_still_goes_through_rich_when_it_says_stderr_is_a_terminal(
        distro: Distro) -> None:
    run = script("--root", str(distro.root), "source", "9.99", env={"FORCE_COLOR": "1"})

    assert run.code == 3
    assert "\x1b[" in run.stderr and "9.99.yaml: no such manifest" in run.stderr
    assert run.loaded("rich") == ["rich"]


def test_an_error_on_a_pipe_is_a_plain_line_without_rich(distro: Distro) -> None:
    run = script("--root", str(distro.root), "source", "9.99")

    assert run.code == 3
    assert run.stderr.startswith("error: ") and "\x1b[" not in run.stderr
    assert run.loaded("rich") == []


def _stamps_out(text: str) -> str:
    """Without the clock: timestamps and step durations."""
    return re.sub(r"done in \d+\.\ds", "done in _s", re.sub(r"(?m)^\d\d:\d\d:\d\d ", "", text))


def _both(distro: Distro, *args: str) -> tuple[Run, Result]:
    """The same command line without typer (the script) and through the typer app."""
    line = ["--root", str(distro.root), *args]
    return script(*line), CliRunner().invoke(app, line)


def _same(run: Run, result: Result) -> None:
    assert run.loaded("typer") == []
    assert (run.code, run.stdout, _stamps_out(run.stderr).rstrip("\n")) == \
        (result.exit_code, result.stdout, _stamps_out(result.stderr).rstrip("\n"))


@pytest.mark.parametrize("args", [
    ["source", "1.20"], ["source", "1.20", "--json"], ["-v", "--debug", "source", "1.20"],
    ["source", "9.99"], ["source", "--json", "9.99"], ["source", "../x"],
])
def test_source_without_typer_prints_and_exits_as_the_typer_command(
        distro: Distro, args: list[str]) -> None:
    _same(*_both(distro, *args))


@pytest.mark.parametrize("args", [
    ["list"], ["list", "--json"], ["show", "1.20"], ["show", "1.20", "--json"],
    ["show", "9.99"], ["show", "../x"], ["-v", "list"],
])
def test_list_and_show_without_typer_print_and_exit_as_the_typer_commands(
        distro: Distro, args: list[str]) -> None:
    _same(*_both(distro, *args))


@pytest.mark.parametrize("args", [["list", "extra"], ["show"], ["show", "1.20", "--verbose"],
                                  ["list", "--help"]])
def test_list_and_show_lines_typer_must_read_go_to_typer(distro: Distro,
                                                          args: list[str]) -> None:
    run = script("--root", str(distro.root), *args)
    assert run.loaded("typer") != []


def test_work_in_progress_is_refused_then_saved_with_force_as_through_typer(
        distro: Distro) -> None:
    (distro.src / "README.md").write_text("my edit\n")
    _same(*_both(distro, "source", "1.20"))  # refused, exit 8, both
    run = script("--root", str(distro.root), "source", "1.20", "--force")
    assert run.code == 0 and run.loaded("typer") == []
    assert "saved the work in progress of _src/1.20 to refs/tkedistro/backup/" in run.stderr


@pytest.mark.parametrize(("args", "release", "flags"), [
    (["source", "1.20"], "1.20", set()),
    (["--root", "source", "source", "1.20"], "1.20", set()),  # the first "source" is a path
    (["-v", "--cache-dir", "/c", "source", "--json", "1.20", "--force"], "1.20",
     {"verbose", "as_json", "force"}),
])
def test_plain_source_lines_are_read_without_typer(args: list[str], release: str,
                                                   flags: set[str]) -> None:
    line = source_line(read_line(args))
    assert line is not None and (line.release, line.flags) == (release, flags)


@pytest.mark.parametrize("args", [
    ["source"], ["source", "1.20", "1.21"], ["source", "1.20", "--upstream", "/u"],
    ["source", "1.20", "--help"], ["--root=/x", "source", "1.20"], ["--root", "-x", "source"],
    ["--root", "/a", "--root", "/b", "source", "1.20"], ["source", ""], ["build", "1.20"],
    ["--unknown", "source", "1.20"], ["source", "1.20", "-"], ["source", "1.20", "--"],
])
def test_any_other_line_is_left_to_typer(args: list[str]) -> None:
    assert source_line(read_line(args)) is None


def test_an_upstream_from_the_environment_is_left_to_typer(distro: Distro) -> None:
    run = script("--root", str(distro.root), "source", "1.20",
                 env={"TKEDISTRO_UPSTREAM": "ext::sh -c x"})

    assert run.code == 2 and run.loaded("typer") == ["typer"]
    assert "TKEDISTRO_UPSTREAM" in run.stderr


def test_a_source_line_typer_must_read_still_gets_typer_s_error(distro: Distro) -> None:
    run = script("--root", str(distro.root), "source", "1.20", "1.21")

    assert run.code == 2 and run.loaded("typer") == ["typer"]
    assert "Got unexpected extra argument" in run.stderr


def test_another_command_gets_only_its_own_command_module(distro: Distro) -> None:
    run = script("--root", str(distro.root), "validate")

    assert run.code == 0, run.stderr
    modules = [f"tkedistro.cli.{name}" for name in MODULES]
    assert run.loaded(*modules) == ["tkedistro.cli.release"]


@pytest.mark.parametrize(("args", "command"), [
    (["source", "1.20"], "source"),
    (["--root", "/x", "--cache-dir=/c", "-v", "--debug", "patches", "export"], "patches"),
    (["--root", "source", "list"], "list"),  # "source" is --root's value
    (["--help"], None),
    (["--version"], None),
    (["sourec", "1.20"], None),  # a typo: the full app suggests the command
    (["--unknown", "source"], None),
    (["--root"], None),
    ([], None),
])
def test_the_command_is_found_after_the_global_options(args: list[str],
                                                        command: str | None) -> None:
    assert read_line(args).known_command == command


def test_every_command_of_the_full_app_is_in_the_table() -> None:
    from typer.main import get_group

    assert sorted(get_group(app).commands) == sorted(COMMANDS)


def test_the_global_options_read_before_typer_are_the_app_s() -> None:
    from typer.main import get_group

    options = {opt: param for param in get_group(app).params for opt in param.opts
               if param.name != "version"}
    assert {opt: p.name for opt, p in options.items() if not p.is_flag} == VALUED
    assert {opt: p.name for opt, p in options.items() if p.is_flag} == FLAGS


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_s_help_is_the_same_from_the_app_made_for_it(command: str) -> None:
    runner = CliRunner()
    full = runner.invoke(app, [command, "--help"], terminal_width=100)
    alone = runner.invoke(make_app(command), [command, "--help"], terminal_width=100)

    assert full.exit_code == alone.exit_code == 0
    assert alone.stdout == full.stdout


def test_a_mistyped_command_gets_the_full_app_s_suggestion() -> None:
    run = script("sourec", "1.20")

    assert run.code == 2
    assert "No such command 'sourec'" in run.stderr and "source" in run.stderr


def _edit_last_message(distro: Distro) -> None:
    last = sorted(distro.patch_dir.iterdir())[-1]
    last.write_text(last.read_text().replace("Why: tke needs it", "Why: tke needs it (again)", 1))


def _objects_listed(distro: Distro) -> bool:
    """A full `source` run (after an edited message): did it list the pin's objects?"""
    _edit_last_message(distro)
    run = script("--root", str(distro.root), "-v", "source", "1.20")
    assert run.code == 0, run.stderr
    assert "  5/5  applied" in run.stdout
    return "rev-list --objects --no-walk --missing=print" in run.stderr


def test_a_re_apply_does_not_list_the_pins_objects_again_while_the_mirror_is_unchanged(
        distro: Distro) -> None:
    assert not _objects_listed(distro)  # the first run listed them, with these packs


def test_the_pins_objects_are_listed_again_once_the_mirror_s_objects_changed(
        distro: Distro) -> None:
    from tests.helpers.gitrepo import git
    from tkedistro.git.mirror import mirror_path

    mirror = mirror_path(Path(os.environ["TKEDISTRO_CACHE"]) / "mirrors", distro.upstream.url)
    git(mirror, "repack", "-a", "-d", "-q", "-f", "--window=5")  # new pack names

    assert _objects_listed(distro)
    assert not _objects_listed(distro)


def test_a_closed_stdout_exits_1_without_a_traceback() -> None:
    """``tkedistro --version | true``-like: the reader is gone before the line is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        ran = subprocess.run(
            [sys.executable, "-c", "from tkedistro.cli.app import main; main()", "--version"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=REPO, check=False,
            env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        os.close(write_end)
    assert ran.returncode == 1
    assert "Error" not in ran.stderr and "Exception ignored" not in ran.stderr
