"""Issue 26: the rendered workflows run on a pinned runner image, install the exact tool
that rendered them from a pinned source (never from an index), pin Node 24 actions, tee
each step's output to a log the alert reads, and run the alert job after every night.
`tkedistro.yaml` holds the repo's settings; `ci render|check` refuse what is unset or
unpinned, naming the file and key."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from tests.conftest import REPO
from tkedistro import __version__
from tkedistro.ci.pins import PINS, ActionPin
from tkedistro.ci.workflows import STEPS, alert_script, slug
from tkedistro.cli.app import app

runner = CliRunner()
GIT = "https://github.com/example/tkedistro.git"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
WHEEL = f"wheels/tkedistro-{__version__}-py3-none-any.whl"


@pytest.fixture()
def distro(tmp_path: Path) -> Path:
    """A distro repo: releases/ and patches/, no tkedistro.yaml yet."""
    dest = tmp_path / "distro"
    for name in ("releases", "patches"):
        shutil.copytree(REPO / name, dest / name)
    return dest


def _settings(repo: Path, text: str) -> None:
    (repo / "tkedistro.yaml").write_text(text)


def _git_settings(repo: Path, commit: str = COMMIT, extra: str = "") -> None:
    _settings(repo, f"schema: 1\nci:\n{extra}  install:\n    git: {GIT}\n    commit: {commit}\n")


def _render(repo: Path, *args: str) -> Any:
    return runner.invoke(app, ["--root", str(repo), "ci", "render", *args],
                         env={"COLUMNS": "1000"})


def _flat(text: str) -> str:
    """click's error box taken apart: the words only."""
    return " ".join(re.sub(r"[╭╮╰╯│─]", " ", text).split())


def _doc(repo: Path, name: str) -> dict[str, Any]:
    data = YAML(typ="safe").load((repo / ".github" / "workflows" / name).read_text())
    assert isinstance(data, dict)
    return data


def _steps(doc: dict[str, Any], job: str = "nightly-1-20") -> dict[str, dict[str, Any]]:
    return {s.get("name") or s["uses"]: s for s in doc["jobs"][job]["steps"]}


# -- runs-on: a pinned image, the default or the repo's -----------------------------------

def test_every_job_runs_on_the_pinned_default_image() -> None:
    for name in ("ci.yml", "nightly.yml"):
        jobs = _doc(REPO, name)["jobs"]
        assert {job["runs-on"] for job in jobs.values()} == {"ubuntu-24.04"}, name


def test_a_repo_pins_its_own_runner_image_in_tkedistro_yaml(distro: Path) -> None:
    _git_settings(distro, extra="  runs-on: ubuntu-26.04\n")
    assert _render(distro).exit_code == 0
    for name in ("ci.yml", "nightly.yml"):
        jobs = _doc(distro, name)["jobs"]
        assert {job["runs-on"] for job in jobs.values()} == {"ubuntu-26.04"}, name


def test_a_moving_runner_label_is_refused_naming_file_line_and_key(distro: Path) -> None:
    _git_settings(distro, extra="  runs-on: ubuntu-latest\n")
    result = _render(distro)
    assert result.exit_code == 3
    assert ("error: tkedistro.yaml:3: ci.runs-on: 'ubuntu-latest' moves to a new image "
            "without notice; pin one, like ubuntu-24.04") in result.output
    assert not (distro / ".github").exists()


def test_an_unknown_key_gets_a_did_you_mean(distro: Path) -> None:
    _settings(distro, "schema: 1\nci:\n  runs_on: ubuntu-24.04\n")
    result = runner.invoke(app, ["--root", str(distro), "ci", "check"])
    assert result.exit_code == 3
    assert ("error: tkedistro.yaml:3: ci.runs_on: unknown key; did you mean 'runs-on'? "
            "(allowed: runs-on, install)") in result.output


def test_an_alias_bomb_or_a_syntax_error_is_refused_naming_file_and_line(distro: Path) -> None:
    """tkedistro.yaml is read like a manifest: aliases bounded, syntax errors placed."""
    bomb = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
                   for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    _settings(distro, 'schema: 1\na: &a ["lol"]\n' + bomb)
    result = runner.invoke(app, ["--root", str(distro), "ci", "check"])
    assert result.exit_code == 3
    assert ("error: tkedistro.yaml: YAML anchors and aliases expand to more than 100000 values "
            "(an alias bomb?); write the values out instead of using aliases") in result.output
    _settings(distro, "schema: 1\nci: [ubuntu-24.04,\n  runs-on: x\n")
    result = runner.invoke(app, ["--root", str(distro), "ci", "check"])
    assert result.exit_code == 3
    assert ("error: tkedistro.yaml:4: YAML syntax error: expected ',' or ']', but got "
            "'<stream end>' (while parsing a flow sequence started on line 2)") in result.output


# -- the install source: pinned, never an index --------------------------------------------

def _install_line(repo: Path) -> str:
    run = _steps(_doc(repo, "nightly.yml"))["Install tkedistro"]["run"]
    return next(line.strip() for line in run.splitlines() if "pip install" in line)


def test_the_tools_own_repo_installs_its_checkout() -> None:
    assert _install_line(REPO).endswith("pip install --quiet --disable-pip-version-check .")


def test_a_git_source_is_installed_at_its_commit(distro: Path) -> None:
    _git_settings(distro)
    assert _render(distro).exit_code == 0
    assert _install_line(distro).endswith(f"'tkedistro @ git+{GIT}@{COMMIT}'")


def test_a_wheel_in_the_repo_is_installed_from_its_path(distro: Path) -> None:
    (distro / "wheels").mkdir()
    (distro / WHEEL).write_bytes(b"PK\x03\x04")
    _settings(distro, f"schema: 1\nci:\n  install:\n    wheel: {WHEEL}\n")
    assert _render(distro).exit_code == 0
    assert _install_line(distro).endswith(f"--disable-pip-version-check ./{WHEEL}")


def test_check_fails_when_no_source_is_set(distro: Path) -> None:
    result = runner.invoke(app, ["--root", str(distro), "ci", "check"])
    assert result.exit_code == 3
    assert ("error: tkedistro.yaml: ci.install: not set; tkedistro is not on PyPI, so the "
            "nightly installs it from a pinned source this repo names") in result.output
    assert "hint: write ci.install.git (a git URL of tkedistro's source) and " \
        "ci.install.commit (the full 40-hex commit: `git rev-parse <tag>`)" in result.output
    assert "tkedistro ci render --install-from git+URL@COMMIT" in result.output


def test_check_fails_on_a_branch_instead_of_a_commit(distro: Path) -> None:
    _git_settings(distro, commit="main")
    result = runner.invoke(app, ["--root", str(distro), "ci", "check"])
    assert result.exit_code == 3
    assert ("error: tkedistro.yaml:5: ci.install.commit: expected a full 40-character "
            "lowercase hex commit, got 'main' (a branch or tag can move: pin the commit, "
            "`git rev-parse <ref>`)") in result.output


def test_check_fails_on_a_missing_wheel_or_one_of_another_version(distro: Path) -> None:
    _settings(distro, f"schema: 1\nci:\n  install:\n    wheel: {WHEEL}\n")
    result = runner.invoke(app, ["--root", str(distro), "ci", "check"])
    assert result.exit_code == 3
    assert f"error: tkedistro.yaml: ci.install.wheel: no such file {WHEEL}" in result.output
    old = "wheels/tkedistro-0.0.1-py3-none-any.whl"
    (distro / "wheels").mkdir()
    (distro / old).write_bytes(b"PK\x03\x04")
    _settings(distro, f"schema: 1\nci:\n  install:\n    wheel: {old}\n")
    result = runner.invoke(app, ["--root", str(distro), "ci", "check"])
    assert result.exit_code == 3
    assert (f"error: tkedistro.yaml: ci.install.wheel: {old} is tkedistro 0.0.1, but "
            f"tkedistro {__version__} renders the workflow") in result.output


def test_install_from_records_the_source_keeping_the_files_comments(distro: Path) -> None:
    _settings(distro, "# our settings\nschema: 1\nci:\n  runs-on: ubuntu-24.04  # pinned\n")
    result = _render(distro, "--install-from", f"git+{GIT}@{COMMIT}")
    assert result.exit_code == 0, result.output
    assert "recorded ci.install in tkedistro.yaml" in result.output
    text = (distro / "tkedistro.yaml").read_text()
    assert text.startswith("# our settings\n") and "ubuntu-24.04  # pinned" in text
    assert f"    git: {GIT}\n    commit: {COMMIT}\n" in text
    assert runner.invoke(app, ["--root", str(distro), "ci", "check"]).exit_code == 0


def test_install_from_refuses_a_branch_and_never_shows_a_token(distro: Path) -> None:
    result = _render(distro, "--install-from", "git+https://ghp_SECRET@github.com/x/t.git@main")
    assert result.exit_code == 2
    assert "ghp_SECRET" not in result.output
    assert "Invalid value for '--install-from': 'https://github.com/x/t.git' with a user " \
        "name or password in it" in _flat(result.output)
    assert not (distro / "tkedistro.yaml").exists()
    result = _render(distro, "--install-from", f"git+{GIT}@v0.1.0")
    assert result.exit_code == 2
    assert "expected a full 40-character lowercase hex commit, got 'v0.1.0'" \
        in _flat(result.output)


# -- per-step logs, diagnostics, the alert job ---------------------------------------------

def test_slug_is_the_alert_scripts_contract() -> None:
    assert slug("Conformance (--smoke)") == "conformance-smoke"
    assert slug("Host packages, binfmt, builder image, component bases") == \
        "host-packages-binfmt-builder-image-component-bases"
    assert slug("--Build!!") == "build"


def test_each_step_that_can_fail_tees_its_output_to_its_log() -> None:
    steps = _steps(_doc(REPO, "nightly.yml"))
    for name in STEPS.values():
        run = steps[name]["run"]
        assert f'| tee "$RUNNER_TEMP/nightly/logs/{slug(name)}.log"' in run.replace(
            '"$RUNNER_TEMP/nightly/build.log" ', ""), name
    assert 'mkdir -p "$RUNNER_TEMP/nightly/logs"' in steps["Install tkedistro"]["run"]


def test_a_failed_night_uploads_cluster_and_debootstrap_logs_and_the_build_tail() -> None:
    steps = _steps(_doc(REPO, "nightly.yml"))
    names = list(steps)
    left = steps["Collect the logs of a cluster left up"]
    assert left["if"] == "failure()"
    assert 'cluster logs 1.20 "$RUNNER_TEMP/cluster-logs"' in left["run"]
    assert "_cluster/1.20/cluster.json" in left["run"]
    collect = steps["Collect the night's reports"]["run"]
    for wanted in ('cp -a "$RUNNER_TEMP/cluster-logs" "$out/"',
                   'cp -a "$TKEDISTRO_CACHE/logs" "$out/debootstrap-logs"',
                   'tail -n 200 "$out/build.log" > "$out/build-tail.log"',
                   "! -name latest"):  # each conformance run folder, cluster-logs/ in it
        assert wanted in collect, wanted
    assert names.index("Forecast the series onto newer upstream tags") < names.index(
        "Collect the logs of a cluster left up") < names.index("Collect the night's reports")


def test_the_alert_job_runs_after_every_finished_night_with_the_release_names() -> None:
    alert = _doc(REPO, "nightly.yml")["jobs"]["alert"]
    assert alert["if"] == "${{ !cancelled() }}"
    assert alert["permissions"] == {"actions": "read", "issues": "write"}
    assert alert["env"] == {"TKEDISTRO_RELEASES": '["1.20"]'}
    download, script = alert["steps"]
    assert download["with"] == {"pattern": "nightly-*", "path": "reports"}
    assert script["uses"].startswith("actions/github-script@")
    assert script["with"]["script"].rstrip("\n") == alert_script()
    assert "${{" not in alert_script()  # GitHub would expand it before the script runs


def test_ci_runs_the_readme_commands_as_root() -> None:
    steps = _steps(_doc(REPO, "ci.yml"), "test")
    assert steps["make install (as root)"]["run"] == 'sudo env "PATH=$PATH" make install'
    assert steps["Unit and docker tiers (as root)"]["run"] == \
        'sudo env "PATH=$PATH" "CI=$CI" make test'


# -- the action pins -----------------------------------------------------------------------

def test_every_pin_is_a_release_commit_on_node24_and_used_as_recorded() -> None:
    for key, pin in PINS.items():
        assert re.fullmatch(r"v\d+\.\d+\.\d+", pin.tag), key
        assert re.fullmatch(r"[0-9a-f]{40}", pin.commit), key
        assert pin.runtime == "node24", key
    for name in ("ci.yml", "nightly.yml"):
        text = (REPO / ".github" / "workflows" / name).read_text()
        used = {line.split("uses: ", 1)[1] for line in text.splitlines() if "uses: " in line}
        assert used <= {pin.uses for pin in PINS.values()}, name


def _pin_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_action_pins", REPO / "scripts" / "check_action_pins.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _action_repo(mirrors: Path, runtime: str) -> str:
    work = mirrors / "work"
    work.mkdir(parents=True)
    (work / "restore").mkdir()
    (work / "restore" / "action.yml").write_text(f"runs:\n  using: '{runtime}'\n")
    for argv in (["init", "-q"], ["add", "."], ["commit", "-qm", "release"],
                 ["tag", "-a", "-m", "v1.2.3", "v1.2.3"]):
        subprocess.run(["git", "-C", str(work), *argv], check=True)
    subprocess.run(["git", "clone", "-q", "--mirror", str(work),
                    str(mirrors / "acme" / "cache.git")], check=True)
    return subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_the_pin_checker_confirms_a_tag_and_refuses_a_wrong_one(tmp_path: Path,
                                                               capsys: Any) -> None:
    checker = _pin_checker()
    commit = _action_repo(tmp_path, "node24")
    assert checker.check(ActionPin("acme/cache/restore", "v1.2.3", commit, "node24"),
                         tmp_path) is None
    assert f"ok acme/cache/restore v1.2.3 = {commit}, restore/action.yml: using node24" \
        in capsys.readouterr().out
    wrong = "f" * 40
    assert checker.check(ActionPin("acme/cache/restore", "v1.2.3", wrong, "node24"),
                         tmp_path) == f"acme/cache/restore: tag v1.2.3 is {commit}, pinned {wrong}"
    assert checker.check(ActionPin("acme/cache/restore", "v1.2.3", commit, "node20"),
                         tmp_path) == ("acme/cache/restore@v1.2.3: restore/action.yml says "
                                       "using ['node24'], recorded node20")


def test_a_symlinked_settings_file_is_refused_not_followed(distro: Path,
                                                          tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(f"schema: 1\nci:\n  install:\n    git: {GIT}\n    commit: {COMMIT}\n")
    (distro / "tkedistro.yaml").symlink_to(elsewhere)
    result = runner.invoke(app, ["--root", str(distro), "ci", "check"])
    assert result.exit_code == 3
    assert f"error: {distro / 'tkedistro.yaml'} is a symlink; tkedistro does not follow " \
        "symlinks" in result.output


def test_install_from_leaves_an_invalid_settings_file_as_it_was(distro: Path) -> None:
    _settings(distro, "schema: 1\nci:\n  runs-on: ubuntu-latest\n")
    result = _render(distro, "--install-from", f"git+{GIT}@{COMMIT}")
    assert result.exit_code == 3
    assert "error: tkedistro.yaml:3: ci.runs-on: 'ubuntu-latest' moves" in result.output
    assert (distro / "tkedistro.yaml").read_text() == "schema: 1\nci:\n  runs-on: ubuntu-latest\n"
