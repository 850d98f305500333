"""Untrusted manifests, patch entries, paths and command-line values (issue 11).

A distro repo takes manifest edits and patches from many hands and the nightly runs them
unattended: each case here is something a hostile or careless input used to do (run a
command, write outside the repo, hang, print a traceback) and the clean refusal it now gets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.engines import fake_engines, use_engines
from tests.helpers.gitrepo import git
from tests.helpers.series import Distro, make_distro
from tkedistro.cli.app import app
from tkedistro.core.errors import BackendUnavailableError
from tkedistro.core.locks import release_lock
from tkedistro.engine.protocols import ContainerBackend

M = "releases/1.20.yaml"
VALIDATE_HINT = "hint: manifest format: docs/manifest.md; patch format: docs/patches.md"
URL_EXAMPLES = "https://github.com/kubernetes/kubernetes.git or git@host:org/repo.git"
EVIL = "../../../evil/9.99"
BAD_NAME = (f"error: {EVIL!r} is not a release name; release names look like 1.20 or 1.20-tke "
            "(digits and dots, then optional .suffix or -suffix parts; no slashes)\n")
LIST_HINT = "hint: run `tkedistro list` to see the releases of this repo\n"


def cli(d: Distro, *args: str, env: dict[str, str] | None = None) -> Result:
    wide = {"COLUMNS": "1000", **(env or {})}  # usage errors are not wrapped mid-message
    return CliRunner().invoke(app, ["--root", str(d.root), *args], env=wide)


def usage_error(result: Result) -> str:
    """A click usage error's text without the box rich draws around it."""
    text = re.sub(r"[╭╮╰╯│─]", " ", result.output)
    return " ".join(text.split())


def patch_files(d: Distro) -> list[str]:
    return [line.split("file: ", 1)[1] for line in d.manifest.read_text().splitlines()
            if "- file: " in line]


def add_entry(d: Distro, file: str) -> None:
    with d.manifest.open("a") as handle:
        handle.write(f"  - file: {file}\n")


def set_url(d: Distro, url: str) -> None:
    text = d.manifest.read_text()
    d.manifest.write_text(re.sub(r"(?m)^  url: .*$", f"  url: {json.dumps(url)}", text))


@pytest.fixture
def distro(tmp_path: Path) -> Distro:
    """The 5-patch series distro; ``_src`` not prepared."""
    return make_distro(tmp_path, prepare=False)


@pytest.fixture
def prepared(tmp_path: Path) -> Distro:
    return make_distro(tmp_path, prepare=True)


# --- 1. code execution through the upstream URL -------------------------------------------

UPLOAD_PACK = "--upload-pack=touch $PWNED;"  # what the shell git starts it with would run


@pytest.fixture(autouse=True)
def pwned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where an injected command would leave its mark (checked absent after each test)."""
    mark = tmp_path / "pwned"
    monkeypatch.setenv("PWNED", str(mark))
    return mark


@pytest.mark.parametrize(("url", "problem"), [
    (UPLOAD_PACK, f"{UPLOAD_PACK!r} starts with '-', which git would read as an option; "
                  f"expected a git URL like {URL_EXAMPLES}"),
    ("ext::sh", "'ext::sh' names a git remote helper ('::'), which can run commands; "
                f"expected a git URL like {URL_EXAMPLES}"),
    ("ssh://-oProxyCommand=touch/x", "'ssh://-oProxyCommand=touch/x': '-oProxyCommand=touch' "
                                     f"is not a host name; expected a git URL like {URL_EXAMPLES}"),
    ("ftp://example.invalid/k8s.git", "'ftp://example.invalid/k8s.git': the scheme 'ftp' is not "
                                      "allowed; expected one of https, http, ssh, git, file "
                                      "(or scp-like host:path)"),
], ids=["upload-pack", "remote-helper", "ssh-option-host", "ftp"])
@pytest.mark.parametrize("command", [["validate"], ["source", "1.20"], ["show", "1.20"],
                                     ["forecast", "1.20", "--onto", "v1.20.1"]],
                         ids=["validate", "source", "show", "forecast"])
def test_manifest_url_that_is_not_a_git_url_is_refused_by_every_command(
        distro: Distro, url: str, problem: str, command: list[str], pwned: Path) -> None:
    set_url(distro, url)

    result = cli(distro, *command)

    assert result.exit_code == 3
    message = f"error: {M}:4: upstream.url: {problem}\n"
    assert result.stderr == (message + f"{VALIDATE_HINT}\n" if command == ["validate"]
                             else message)
    assert not pwned.exists()
    assert not distro.src.exists()


@pytest.mark.parametrize("url", ["https://github.com/kubernetes/kubernetes.git",
                                 "git@github.com:kubernetes/kubernetes.git",
                                 "ssh://git@example.invalid:2222/k8s.git",
                                 "file:///srv/mirrors/kubernetes.git"])
def test_ordinary_git_urls_are_accepted(distro: Distro, url: str) -> None:
    set_url(distro, url)

    assert cli(distro, "validate").exit_code == 0


@pytest.mark.parametrize("command", [
    ["source", "1.20"], ["build", "1.20"], ["conformance", "1.20"],
    ["forecast", "1.20", "--onto", "v1.20.1"], ["rebase", "1.20", "--onto", "v1.20.1"],
    ["new", "1.21", "--from", "1.20", "--onto", "v1.20.1"],
], ids=["source", "build", "conformance", "forecast", "rebase", "new"])
@pytest.mark.parametrize("how", ["option", "env"])
def test_upstream_option_and_env_are_checked_on_every_command(
        distro: Distro, command: list[str], how: str, pwned: Path) -> None:
    if how == "option":
        result = cli(distro, *command, "--upstream", UPLOAD_PACK)
    else:
        result = cli(distro, *command, env={"TKEDISTRO_UPSTREAM": UPLOAD_PACK})

    assert result.exit_code == 2
    assert (f"Invalid value for '--upstream' (env var: 'TKEDISTRO_UPSTREAM'): "
            f"{UPLOAD_PACK!r} starts with '-', which git would read as an option; expected a "
            f"git URL like {URL_EXAMPLES}"
            ) in usage_error(result)
    assert not distro.src.exists()
    assert not pwned.exists()


def test_upstream_option_takes_a_local_mirror_path(prepared: Distro) -> None:
    result = cli(prepared, "source", "1.20", "--upstream", str(prepared.upstream.bare))

    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("args", "option", "problem"), [
    (["rebase", "1.20", "--onto", "--upload-pack=x"], "--onto",
     "expected an upstream tag like v1.20.2, got '--upload-pack=x'"),
    (["rebase", "1.20", "--onto", "v1.20.1", "--commit", "--upload-pack=x"], "--commit",
     "expected a full 40-character lowercase hex commit SHA, got '--upload-pack=x'"),
    (["forecast", "1.20", "--onto", "v1.20.1", "--", "-uevil"], "[TAG]...",
     "expected an upstream tag like v1.20.2, got '-uevil'"),
    (["new", "1.21", "--from", "1.20", "--onto", "HEAD~1"], "--onto",
     "expected an upstream tag like v1.20.2, got 'HEAD~1'"),
], ids=["rebase-onto", "rebase-commit", "forecast-tag", "new-onto"])
def test_tags_and_commits_on_the_command_line_are_checked(
        distro: Distro, args: list[str], option: str, problem: str) -> None:
    result = cli(distro, *args)

    assert result.exit_code == 2
    assert f"Invalid value for '{option}': {problem}" in usage_error(result)
    assert not distro.src.exists()


# --- 2. patches export writes and deletes outside the root --------------------------------

def _outside_entry(d: Distro, tmp_path: Path, how: str) -> tuple[str, Path]:
    """Point patches[0] at a copy of the patch outside the repo; return the entry and copy."""
    first = patch_files(d)[0]
    outside = tmp_path / "outside.patch"
    shutil.copy(d.root / first, outside)
    entry = {"absolute": str(outside), "dotdot": "../outside.patch"}[how]
    d.manifest.write_text(d.manifest.read_text().replace(f"file: {first}", f"file: {entry}"))
    return entry, outside


@pytest.mark.parametrize("how", ["absolute", "dotdot"])
@pytest.mark.parametrize("change", ["amend", "reset"])
def test_export_never_writes_or_deletes_outside_the_repo(
        prepared: Distro, tmp_path: Path, how: str, change: str) -> None:
    entry, outside = _outside_entry(prepared, tmp_path, how)
    before = outside.read_bytes()
    if change == "amend":  # the commit of patches[0] gets a new message: export rewrites it
        git(prepared.src, "rebase", "-q", "--exec",
            "git commit -q --amend -m \"$(git log -1 --format=%B) amended\"", "HEAD~5")
    else:  # nothing left on the base: export would delete every patch file
        git(prepared.src, "reset", "-q", "--hard", "HEAD~5")

    result = cli(prepared, "patches", "export", "1.20")

    assert result.exit_code == 3
    problem = (f"{entry} is an absolute path; give it relative to the repo root, like "
               "patches/1.20/0001-fix.patch" if how == "absolute" else
               f"{entry} is outside the repo; patch files live under patches/<release>/")
    assert result.stderr == f"error: {M}: patches[0].file: {problem}\n"
    assert outside.read_bytes() == before


def test_export_refuses_a_patch_folder_that_is_a_symlink_out(prepared: Distro,
                                                             tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(prepared.patch_dir), elsewhere)
    prepared.patch_dir.symlink_to(elsewhere)
    git(prepared.src, "commit", "-q", "--allow-empty", "-m", "new\n\nPatch-Kind: carry")

    result = cli(prepared, "patches", "export", "1.20")

    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {M}: patches[0].file: patches/1.20/0001-")
    assert f"resolves outside the repo through a symlink (to {elsewhere}/0001-" in result.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == sorted(
        Path(f).name for f in patch_files(prepared))


# --- 3. source applies the same path rules as validate ------------------------------------

def _symlink_out(d: Distro, tmp_path: Path) -> tuple[str, str]:
    target = tmp_path / "secret.patch"
    target.write_text("root:x:0:0\n")
    (d.patch_dir / "0006-link.patch").symlink_to(target)
    return ("patches/1.20/0006-link.patch",
            f"patches/1.20/0006-link.patch resolves outside the repo through a symlink "
            f"(to {target}); copy the patch into patches/<release>/")


def _device(d: Distro, tmp_path: Path) -> tuple[str, str]:
    (d.patch_dir / "0006-zero.patch").symlink_to("/dev/zero")
    return ("patches/1.20/0006-zero.patch",
            "patches/1.20/0006-zero.patch resolves outside the repo through a symlink "
            "(to /dev/zero); copy the patch into patches/<release>/")


def _fifo(d: Distro, tmp_path: Path) -> tuple[str, str]:
    os.mkfifo(d.patch_dir / "0006-fifo.patch")
    return ("patches/1.20/0006-fifo.patch",
            "patches/1.20/0006-fifo.patch is not a regular file (a FIFO)")


def _folder(d: Distro, tmp_path: Path) -> tuple[str, str]:
    (d.patch_dir / "0006-dir.patch").mkdir()
    return ("patches/1.20/0006-dir.patch",
            "patches/1.20/0006-dir.patch is not a regular file (a folder)")


def _absolute(d: Distro, tmp_path: Path) -> tuple[str, str]:
    return ("/etc/shadow", "/etc/shadow is an absolute path; give it relative to the repo "
            "root, like patches/1.20/0001-fix.patch")


def _dotdot(d: Distro, tmp_path: Path) -> tuple[str, str]:
    shutil.copy(d.root / patch_files(d)[0], tmp_path / "up.patch")
    return ("patches/../../up.patch",
            "patches/../../up.patch is outside the repo; patch files live under "
            "patches/<release>/")


def _nul(d: Distro, tmp_path: Path) -> tuple[str, str]:
    return ('"patches/1.20/a\\0b.patch"',  # YAML's escape: the loaded name holds a NUL byte
            "'patches/1.20/a\\x00b.patch' contains the control character '\\x00'; "
            "file names in a manifest are plain text")


def _loop(d: Distro, tmp_path: Path) -> tuple[str, str]:
    (d.patch_dir / "loop").symlink_to("loop")
    return ("patches/1.20/loop", "patches/1.20/loop: cannot resolve: a symlink loop")


PATH_CASES = {"absolute": _absolute, "dotdot": _dotdot, "symlink-out": _symlink_out,
              "dev-zero": _device, "fifo": _fifo, "folder": _folder, "nul": _nul,
              "loop": _loop}


@pytest.mark.parametrize("case", PATH_CASES)
def test_source_applies_the_path_policy_validate_enforces(distro: Distro, tmp_path: Path,
                                                          case: str) -> None:
    entry, problem = PATH_CASES[case](distro, tmp_path)
    add_entry(distro, entry)
    message = f"{M}: patches[5].file: {problem}"

    source = cli(distro, "source", "1.20")
    validate = cli(distro, "validate", "1.20")

    assert (source.exit_code, source.stderr) == (3, f"error: {message}\n")
    assert validate.exit_code == 3
    assert f"error: {message}\n" in validate.stderr
    assert not distro.src.exists()


@pytest.mark.parametrize("case", ["fifo", "dev-zero", "symlink-out", "nul", "loop"])
def test_show_marks_an_unusable_patch_file_and_does_not_read_it(
        distro: Distro, tmp_path: Path, case: str) -> None:
    entry, problem = PATH_CASES[case](distro, tmp_path)
    add_entry(distro, entry)

    result = cli(distro, "show", "1.20", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout)["patches"][5]["problem"] == problem


@pytest.mark.parametrize("command", [["forecast", "1.20", "--onto", "v1.20.1"],
                                     ["rebase", "1.20", "--onto", "v1.20.1"]])
def test_rebase_and_forecast_refuse_an_entry_outside_the_repo(distro: Distro, tmp_path: Path,
                                                              command: list[str]) -> None:
    entry, problem = _symlink_out(distro, tmp_path)
    add_entry(distro, entry)

    result = cli(distro, *command)

    assert result.exit_code == 3
    assert result.stderr == f"error: {M}: patches[5].file: {problem}\n"


# --- 4. the release argument ----------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["source", EVIL], ["build", EVIL], ["show", EVIL], ["validate", EVIL],
    ["conformance", EVIL], ["patches", "export", EVIL], ["forecast", EVIL, "--onto", "v1.20.1"],
    ["rebase", EVIL, "--abort"], ["new", "1.21", "--from", EVIL, "--onto", "v1.20.1"],
    ["new", EVIL, "--from", "1.20", "--onto", "v1.20.1"],
], ids=["source", "build", "show", "validate", "conformance", "export", "forecast", "rebase",
        "new-from", "new"])
def test_a_release_argument_that_is_a_path_is_refused(distro: Distro, command: list[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(distro.root)

    result = cli(distro, *command)

    assert result.exit_code == 3
    hint = VALIDATE_HINT + "\n" if command[0] == "validate" else LIST_HINT
    assert result.stderr == BAD_NAME + hint
    assert not (distro.root / "_src" / EVIL).resolve().parent.exists()
    assert not (distro.root / "_output" / EVIL).resolve().parent.exists()


def test_release_names_with_a_suffix_are_allowed(distro: Distro) -> None:
    text = distro.manifest.read_text().replace('release: "1.20"', 'release: "1.20-tke"')
    (distro.root / "releases" / "1.20-tke.yaml").write_text(text)

    result = cli(distro, "validate", "1.20-tke")

    assert result.exit_code == 0, result.output
    assert result.stdout == "releases/1.20-tke.yaml: ok (5 patches)\n"


def test_unknown_release_gets_one_message_everywhere(distro: Distro) -> None:
    for command in (["show", "1.99"], ["source", "1.99"], ["patches", "export", "1.99"],
                    ["forecast", "1.99", "--onto", "v1.20.1"]):
        result = cli(distro, *command)
        assert (result.exit_code, result.stderr) == (
            3, "error: releases/1.99.yaml: no such manifest (releases: 1.20)\n"), command


# --- 5. tracebacks instead of errors ----------------------------------------------------------

@pytest.mark.parametrize(("command", "hint"), [
    (["validate"], VALIDATE_HINT + "\n"), (["source", "1.20"], ""), (["show", "1.20"], ""),
    (["list"], "hint: run `tkedistro validate` to see every problem\n"),
])
def test_non_utf8_manifest_is_a_clean_error(distro: Distro, command: list[str],
                                            hint: str) -> None:
    lines = distro.manifest.read_bytes().split(b"\n")
    lines[2] = b"upstream:  # \xff\xfe"
    distro.manifest.write_bytes(b"\n".join(lines))

    result = cli(distro, *command)

    assert result.exit_code == 3
    assert result.stderr == (f"error: {M}:3: not UTF-8 text (byte 0xff cannot be decoded); "
                             f"save the manifest as UTF-8\n{hint}")


def test_manifest_that_is_a_folder_is_a_clean_error(distro: Distro) -> None:
    distro.manifest.unlink()
    distro.manifest.mkdir()

    for command in (["validate"], ["show", "1.20"], ["source", "1.20"]):
        result = cli(distro, *command)
        assert result.exit_code == 3, command
        assert result.stderr.startswith(f"error: {M}: is a folder, not a manifest file\n")


BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
               for p, c in zip("abcdefgh", "bcdefghi", strict=True))


def test_yaml_alias_bomb_is_refused_before_it_expands(distro: Distro) -> None:
    distro.manifest.write_text(distro.manifest.read_text() + 'a: &a ["lol"]\n' + BOMB)

    result = cli(distro, "validate")

    assert result.exit_code == 3
    assert result.stderr == (f"error: {M}: YAML anchors and aliases expand to more than 100000 "
                             "values (an alias bomb?); write the values out instead of using "
                             f"aliases\n{VALIDATE_HINT}\n")


def test_huge_manifest_is_refused_without_parsing(distro: Distro) -> None:
    with distro.manifest.open("a") as handle:
        handle.write("# padding\n" * 120_000)
    size = distro.manifest.stat().st_size

    result = cli(distro, "show", "1.20")

    assert result.exit_code == 3
    assert result.stderr == (f"error: {M}: {size} bytes is more than the 1024 KiB a manifest "
                             "may have\n")


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_import_from_a_missing_folder_or_a_file_is_a_usage_error(prepared: Distro,
                                                                 tmp_path: Path,
                                                                 kind: str) -> None:
    source = tmp_path / "series"
    if kind == "file":
        source.write_text("not a folder\n")

    result = cli(prepared, "patches", "import", "1.20", "--from", str(source))

    assert result.exit_code == 2
    what = f"no such folder: {source}" if kind == "missing" else f"{source} is not a folder"
    assert f"Invalid value for '--from': {what}" in usage_error(result)


def test_import_series_refuses_a_from_that_is_not_a_folder(prepared: Distro,
                                                          tmp_path: Path) -> None:
    from tkedistro.core.errors import PatchFormatError
    from tkedistro.series.importer import import_series

    with pytest.raises(PatchFormatError) as info:
        import_series(prepared.workspace(), "1.20", tmp_path / "nothing")

    assert info.value.exit_code == 4
    assert info.value.problems == [
        f"{tmp_path / 'nothing'}: no such folder; --from names a folder of patch files"]


def test_a_fifo_in_an_imported_folder_does_not_hang(prepared: Distro, tmp_path: Path) -> None:
    series = tmp_path / "series"
    series.mkdir()
    os.mkfifo(series / "0001-fifo.patch")

    result = cli(prepared, "patches", "import", "1.20", "--from", str(series))

    assert result.exit_code == 7
    assert "NOT IMPORTED  0001-fifo.patch: 0001-fifo.patch: not a regular file; a patch is a " \
           "plain text file\n" in result.stdout


# --- 11. locks ----------------------------------------------------------------------------------

def test_export_takes_the_release_lock(prepared: Distro) -> None:
    git(prepared.src, "commit", "-q", "--allow-empty", "-m",
        "extra\n\nPatch-Kind: carry\nUpstream-Ref: none\nUpstream-Status: not-submitted")
    before = {p.name: p.read_bytes() for p in prepared.patch_dir.iterdir()}

    with release_lock(prepared.workspace(), "1.20"):
        result = cli(prepared, "patches", "export", "1.20")

    assert result.exit_code == 13
    assert result.stderr.startswith("error: another tkedistro run is working on _src/1.20 ")
    assert {p.name: p.read_bytes() for p in prepared.patch_dir.iterdir()} == before


# --- 12. lesser --------------------------------------------------------------------------------

def test_source_refuses_a_patch_without_the_required_trailers(distro: Distro) -> None:
    first = patch_files(distro)[0]
    path = distro.root / first
    path.write_text(path.read_text().replace("Upstream-Ref: none\n", ""))

    result = cli(distro, "source", "1.20")

    assert result.exit_code == 4
    assert result.stderr == (
        f"error: {first}: trailer Upstream-Ref: missing (expected an upstream PR or commit URL "
        "(https://...), or none)\nnothing was changed in _src/1.20\n"
        "hint: patch format: docs/patches.md; `tkedistro validate` checks every patch\n")
    assert not distro.src.exists()


def test_source_refuses_a_patch_listed_twice(distro: Distro) -> None:
    first = patch_files(distro)[0]
    add_entry(distro, first)

    result = cli(distro, "source", "1.20")

    assert result.exit_code == 3
    assert result.stderr == (f"error: {M}: patches[5].file: {first} is listed twice (first as "
                             "patches[0].file); list each patch once\n")


def test_quoted_schema_version_says_to_drop_the_quotes(distro: Distro) -> None:
    distro.manifest.write_text(distro.manifest.read_text().replace("schema: 1", 'schema: "1"'))

    result = cli(distro, "validate")

    assert result.exit_code == 3
    assert result.stderr == (f"error: {M}:1: schema: expected the number 1, got the string '1'; "
                             f"write schema: 1 without quotes\n{VALIDATE_HINT}\n")


class _NoEngine:
    name = "docker"

    def check_available(self) -> None:
        raise BackendUnavailableError("no Docker engine answers", hint="start dockerd")


def test_build_without_an_engine_fails_before_fetching(distro: Distro,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    engine: ContainerBackend = _NoEngine()  # type: ignore[assignment]
    use_engines(monkeypatch, containers=engine)

    result = cli(distro, "build", "1.20")

    assert result.exit_code == 9
    assert result.stderr == "error: no Docker engine answers\nhint: start dockerd\n"
    assert not distro.src.exists()
    assert not (Path(os.environ["TKEDISTRO_CACHE"]) / "mirrors").exists()


def test_json_errors_print_a_json_error_object(distro: Distro) -> None:
    result = cli(distro, "source", "1.99", "--json")

    assert result.exit_code == 3
    assert json.loads(result.stdout) == {"ok": False, "error": {
        "exit_code": 3, "type": "ReleaseNotFoundError",
        "message": "releases/1.99.yaml: no such manifest (releases: 1.20)", "hint": None}}
    assert result.stderr == "error: releases/1.99.yaml: no such manifest (releases: 1.20)\n"


def test_json_result_is_not_followed_by_a_second_document(distro: Distro) -> None:
    distro.manifest.write_text(distro.manifest.read_text().replace("schema: 1", "schema: 2"))

    result = cli(distro, "validate", "--json")

    assert result.exit_code == 3
    assert json.loads(result.stdout)["ok"] is False  # one document: the validation result


def test_import_refuses_a_patch_folder_that_is_a_symlink_out(prepared: Distro,
                                                             tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(prepared.patch_dir), elsewhere)
    prepared.patch_dir.symlink_to(elsewhere)
    series = tmp_path / "series"
    series.mkdir()
    before = sorted(p.name for p in elsewhere.iterdir())

    result = cli(prepared, "patches", "import", "1.20", "--from", str(series))

    assert result.exit_code == 3
    assert result.stderr == (f"error: patch folder: patches/1.20 resolves outside the repo "
                             f"through a symlink (to {elsewhere}); copy the patch into "
                             "patches/<release>/\n")
    assert sorted(p.name for p in elsewhere.iterdir()) == before


def test_conformance_writes_its_report_while_it_still_holds_the_output_lock(
    distro: Distro, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report names the build whose binaries ran: a build that would replace
    _output/<release> waits until the report is written."""
    from tkedistro.conformance import pipeline as conf
    from tkedistro.core.errors import LockedError
    from tkedistro.core.locks import output_lock

    ws = distro.workspace()
    bin_dir = ws.output_dir("1.20") / "bin" / "linux" / "amd64"
    bin_dir.mkdir(parents=True)
    for tool in conf.TOOLS:
        (bin_dir / tool).write_text("#!/bin/sh\n")
        (bin_dir / tool).chmod(0o755)

    def suite(options: object, bins: Path, kubeconfig: Path, report_dir: Path,
              repo_list: Path | None, skip: str) -> bool:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "junit_01.xml").write_text(
            '<testsuite tests="1" failures="0"><testcase name="[sig-x] y [Conformance]" '
            'classname="Kubernetes e2e suite" time="1"/></testsuite>\n')
        return False

    refused: list[str] = []
    real_write = conf.write_bundle

    def write_bundle(*args: object, **kwargs: object) -> object:
        try:
            with output_lock(ws, "1.20", "build 1.20"):
                pass
        except LockedError as exc:
            refused.append(exc.message)
        return real_write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(conf, "_suite", suite)
    monkeypatch.setattr(conf, "write_bundle", write_bundle)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")
    result = conf.run_conformance(ws, "1.20", conf.ConformanceOptions(kubeconfig=kubeconfig,
                                                                      build=False),
                                  fake_engines())

    assert result.ok
    assert len(refused) == 1 and refused[0].startswith(
        "another tkedistro run is using _output/1.20")
    assert (ws.conformance_results_dir("1.20") / "latest" / "summary.json").is_file()


# --- build resource limits are checked before they reach docker ----------------------------

CPUS = "expected a number of CPUs above 0 and at most 1024, like 4 or 1.5, got "


@pytest.mark.parametrize(("args", "option", "problem"), [
    (["--memory", "8GiB"], "--memory",
     "expected a memory size like 512m or 8g (a number, then b, k, m or g), got '8GiB'"),
    (["--memory", "abc"], "--memory",
     "expected a memory size like 512m or 8g (a number, then b, k, m or g), got 'abc'"),
    (["--memory", "0"], "--memory",
     "expected a memory size like 512m or 8g (a number, then b, k, m or g), got '0'"),
    (["--cpus", "inf"], "--cpus", CPUS + "inf"),
    (["--cpus", "nan"], "--cpus", CPUS + "nan"),
    (["--cpus", "0"], "--cpus", CPUS + "0.0"),
    (["--cpus", "-2"], "--cpus", CPUS + "-2.0"),
], ids=["memory-gib", "memory-word", "memory-zero", "cpus-inf", "cpus-nan", "cpus-zero",
        "cpus-negative"])
def test_build_limits_are_checked_on_the_command_line(
        distro: Distro, args: list[str], option: str, problem: str) -> None:
    result = cli(distro, "build", "1.20", *args)

    assert result.exit_code == 2
    assert f"Invalid value for '{option}': {problem}" in usage_error(result)
    assert not distro.src.exists()


def test_a_limit_docker_py_refuses_is_a_build_error_not_a_traceback() -> None:
    import docker

    from tkedistro.core.errors import BuildError
    from tkedistro.engine.docker import _start
    from tkedistro.engine.protocols import ContainerSpec

    client = docker.DockerClient(base_url="unix:///nonexistent.sock", version="1.41")
    spec = ContainerSpec(image="builder:1", memory="8GiB")

    with pytest.raises(BuildError) as caught:
        _start(client, spec)  # docker-py refuses the size before it talks to an engine

    assert caught.value.exit_code == 11
    assert caught.value.message == (
        "could not start a container from builder:1: The specified value for memory (8Gi) "
        "should specify the units. The postfix should be one of the `b` `k` `m` `g` characters")


def test_the_prepared_release_hashes_patches_through_the_path_policy(distro: Distro,
                                                                     tmp_path: Path) -> None:
    """A patch swapped for a symlink out of the repo after the source step is not read (the
    prepared release hashes each patch once; build-info, SBOM and provenance read that)."""
    from tkedistro.core.errors import ManifestError
    from tkedistro.core.workspace import Workspace
    from tkedistro.model.manifest import load_release
    from tkedistro.source.prepared import patch_infos

    ws = Workspace.discover(distro.root, tmp_path / "cache")
    manifest = load_release(ws, "1.20")
    first = distro.root / patch_files(distro)[0]
    first.unlink()
    (tmp_path / "secret").write_text("root:x:0:0\n")
    first.symlink_to(tmp_path / "secret")

    with pytest.raises(ManifestError) as caught:
        patch_infos(ws, manifest)

    assert caught.value.render() == (
        f"{M}: patches[0].file: {patch_files(distro)[0]} resolves outside the repo through a "
        f"symlink (to {tmp_path / 'secret'}); copy the patch into patches/<release>/")


# --- the builder image is an image reference before it reaches the Docker engine ------------

IMAGE_RULE = ("expected an image reference like golang:1.15.15 or "
              "registry.example.com:5000/tke/builder:1.20@sha256:<64 hex> "
              "(lowercase path; no spaces, no leading '-'), got ")
BAD_IMAGES = ["-evil", "Tke/Builder:1", "tke/builder:1 --privileged", "reg.io/../etc:1",
              "tke/builder:1@sha256:abc", "tke//builder"]


def set_image(d: Distro, image: str) -> None:
    text = d.manifest.read_text()
    d.manifest.write_text(re.sub(r"(?m)^  image: .*$", f"  image: {json.dumps(image)}", text))


@pytest.mark.parametrize("image", BAD_IMAGES)
def test_a_manifest_builder_image_that_is_not_an_image_reference_is_refused(
        distro: Distro, image: str) -> None:
    set_image(distro, image)

    result = cli(distro, "validate", "1.20")

    assert result.exit_code == 3
    assert result.stderr == (f"error: {M}:11: builder.image: {IMAGE_RULE}{image!r}\n"
                             f"{VALIDATE_HINT}\n")


@pytest.mark.parametrize("image", BAD_IMAGES)
def test_a_builder_image_option_that_is_not_an_image_reference_is_a_usage_error(
        distro: Distro, image: str) -> None:
    result = cli(distro, "build", "1.20", f"--builder-image={image}")

    assert result.exit_code == 2
    assert f"Invalid value for '--builder-image': {IMAGE_RULE}{image!r}" in usage_error(result)
    assert not distro.src.exists()


@pytest.mark.parametrize("image", [
    "golang:1.15.15", "tkedistro/builder:go1.15-bullseye", "localhost:5000/tke/builder",
    "registry.example.com:5000/tke/kube_builder__x:1.20-rc.1@sha256:" + "a" * 64])
def test_ordinary_image_references_are_accepted(distro: Distro, image: str) -> None:
    set_image(distro, image)

    assert cli(distro, "validate", "1.20").exit_code == 0


# --- user text on a terminal is printed as it is, never read as rich markup ----------------

def test_user_text_in_steps_and_warnings_is_not_rich_markup(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``conformance --focus '[/x]'`` used to raise rich's MarkupError on a terminal, and a
    ``[kubelet]`` in a warning vanished."""
    import io

    from rich.console import Console

    from tkedistro.core import console

    screen = io.StringIO()
    monkeypatch.setattr(console, "_err", Console(file=screen, force_terminal=True, width=200,
                                                 color_system=None))
    monkeypatch.setattr(console._settings, "plain", False)

    with console.step("conformance", "focus [/x]"):
        pass
    console.warn("[kubelet] is not built for linux/arm64")

    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())  # the spinner's cursor moves
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[-2].startswith("✓ conformance: focus [/x] (")
    assert lines[-1] == "warning: [kubelet] is not built for linux/arm64"


@pytest.mark.parametrize("value", ["0", "-5", "inf", "nan"])
def test_conformance_timeout_must_be_minutes_above_zero(distro: Distro, value: str) -> None:
    result = cli(distro, "conformance", "1.20", "--timeout", value)

    assert result.exit_code == 2
    assert (f"Invalid value for '--timeout': expected a number of minutes above 0 and at most "
            f"10080 (a week), like 90, got {float(value)}") in usage_error(result)


def test_doctor_reports_an_engine_lost_mid_check_as_a_failed_image_check(
        distro: Distro, monkeypatch: pytest.MonkeyPatch) -> None:
    from tkedistro.engine.docker import DockerBackend

    def gone(self: DockerBackend, image: str) -> None:
        raise BackendUnavailableError("no Docker engine answers at unix:///gone.sock")

    monkeypatch.setattr(DockerBackend, "check_available", lambda self: None)
    monkeypatch.setattr(DockerBackend, "image_info", gone)

    result = cli(distro, "doctor")

    assert result.exit_code == 19
    assert re.search(r"BAD  builder image 1\.20 +no Docker engine answers at unix:///gone\.sock",
                     result.output)
    assert "fix: apt-get install -y docker.io and start dockerd (scripts/ensure-docker.sh in " \
           "a tkedistro checkout)" in result.output
