"""Issue 11, the git side: what a hostile or unlucky input does to the git layer.

Each test feeds the input a user (or an attacker writing a manifest) could give and asserts
what the user sees: the exit code and the message, and that nothing ran or was lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.distro import Distro, big, make_distro
from tests.helpers.gitrepo import IDENTITY, git
from tests.helpers.series import Distro as SeriesDistro
from tests.helpers.series import make_distro as make_series_distro
from tkedistro.cli.app import app
from tkedistro.core import runner
from tkedistro.core.errors import CommandError, FetchError, ManifestError
from tkedistro.git import repo as repo_module
from tkedistro.git.mirror import Pin, ensure_pin, mirror_path, remote_tag_commit
from tkedistro.git.repo import Repo

REPO = Path(__file__).resolve().parents[2]
cli = CliRunner()


def source(distro: Distro, *args: str) -> Result:
    return cli.invoke(app, ["--root", str(distro.root), "source", "1.20", *args])


def hostile(tmp_path: Path) -> tuple[str, Path]:
    pwned = tmp_path / "pwned"
    return f"--upload-pack=touch {pwned};", pwned


@pytest.fixture()
def distro(tmp_path: Path) -> Distro:
    d = make_distro(tmp_path)
    one = d.mbox("0001-kubectl.patch", {"cmd/kubectl/main.go": "package main\n"}, "kubectl")
    two = d.mbox("0002-ten.patch", {"pkg/big/lines.go": big(l10="ours10")}, "ten")
    d.manifest([one, two])
    return d


# -- 1: an upstream URL that is a git option -----------------------------------------------


def test_git_layer_refuses_a_url_that_is_an_option(tmp_path: Path) -> None:
    url, pwned = hostile(tmp_path)
    pin = Pin(url, "v1.20.0", "0" * 40, "releases/1.20.yaml")
    with pytest.raises(FetchError) as fetch:
        ensure_pin(tmp_path / "mirrors", pin)
    with pytest.raises(FetchError) as listing:
        remote_tag_commit(url, "v1.20.0")
    with pytest.raises(CommandError) as raw:
        Repo.ls_remote(url, ["refs/tags/v1.20.0"])
    expected = (f"refusing upstream URL {url!r}: it starts with '-', so git would read it "
                "as an option")
    assert fetch.value.message == expected
    assert listing.value.message == expected
    assert raw.value.message == (f"refusing URL {url!r}: it starts with '-', so git would "
                                 "read it as an option")
    assert not pwned.exists()


def test_git_layer_refuses_a_tag_that_is_an_option_or_a_refspec(distro: Distro,
                                                                 tmp_path: Path) -> None:
    for tag in ("--upload-pack=x", "v1:refs/heads/x", "*"):
        pin = Pin(distro.upstream.url, tag, "0" * 40, "releases/1.20.yaml")
        with pytest.raises(FetchError) as refused:
            ensure_pin(tmp_path / "mirrors", pin)
        assert refused.value.message == f"refusing tag name {tag!r}: not a valid git tag name"


def test_source_forecast_and_rebase_never_run_a_url_option(
    distro: Distro, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, pwned = hostile(tmp_path)
    manifest = distro.root / "releases/1.20.yaml"
    safe = manifest.read_text()
    manifest.write_text(safe.replace(f"url: {distro.upstream.url}", f"url: {json.dumps(url)}"))
    runs = {
        "source": source(distro),
        "forecast": cli.invoke(app, ["--root", str(distro.root), "forecast", "1.20",
                                     "--onto", "v1.20.2"]),
        "rebase": cli.invoke(app, ["--root", str(distro.root), "rebase", "1.20",
                                   "--onto", "v1.20.2"]),
    }
    manifest.write_text(safe)
    runs["--upstream"] = source(distro, "--upstream", url)
    monkeypatch.setenv("TKEDISTRO_UPSTREAM", url)
    runs["TKEDISTRO_UPSTREAM"] = source(distro)
    # the manifest model and the command-line option refuse the URL before git runs (the git
    # layer's own refusal, exit 5, is tested above on the library functions)
    for how in ("source", "forecast", "rebase"):
        assert runs[how].exit_code == ManifestError.exit_code, (how, runs[how].output)
        assert "upstream.url: '--upload-pack=touch" in runs[how].output, (how, runs[how].output)
    for how in ("--upstream", "TKEDISTRO_UPSTREAM"):
        assert runs[how].exit_code == 2, (how, runs[how].output)
        assert "Invalid value for '--upstream'" in runs[how].output, (how, runs[how].output)
    assert not pwned.exists()


def test_an_ext_url_never_runs_its_command_even_when_config_allows_ext(
    distro: Distro, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pwned = tmp_path / "pwned-ext"
    url = f"ext::sh -c touch% {pwned}"
    monkeypatch.delenv("GIT_ALLOW_PROTOCOL")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.ext.allow")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "always")
    result = source(distro, "--upstream", url)
    assert result.exit_code == 2, result.output  # the option check refuses it first
    assert "Invalid value for '--upstream'" in result.output
    with pytest.raises(FetchError) as listing:
        remote_tag_commit(url, "v1.20.1")
    assert listing.value.message == f"cannot list tags of {url} (git exit code 128)"
    assert "fatal: transport 'ext' not allowed" in (listing.value.details or "")
    assert not pwned.exists()


# -- 6: a damaged cache mirror ------------------------------------------------------------


def _mirror(distro: Distro) -> Path:
    return mirror_path(Path(os.environ["TKEDISTRO_CACHE"]) / "mirrors", distro.upstream.url)


@pytest.mark.parametrize("damage", ["truncate", "delete", "empty-idx"])
@pytest.mark.parametrize("force", [False, True])
def test_damaged_mirror_is_fetched_again_not_called_up_to_date(
    distro: Distro, damage: str, force: bool
) -> None:
    assert source(distro).exit_code == 0
    head = git(distro.src, "rev-parse", "HEAD")
    packs = list((_mirror(distro) / "objects" / "pack").glob("pack-*.pack"))
    assert packs
    for pack in packs:
        if damage == "truncate":
            os.truncate(pack, pack.stat().st_size // 2)
        elif damage == "empty-idx":  # shorter than its 40-byte trailer: no seek may fail
            os.truncate(pack.with_suffix(".idx"), 0)
        else:
            pack.unlink()
            pack.with_suffix(".idx").unlink()
            pack.with_suffix(".rev").unlink(missing_ok=True)
    stuck = cli.invoke(app, ["--root", str(distro.root), "patches", "export", "1.20"])
    assert stuck.exit_code == 17
    assert stuck.stderr.rstrip().endswith("hint: run: tkedistro source 1.20")
    result = source(distro, *(["--force"] if force else []))
    assert result.exit_code == 0, result.output
    assert "up to date" not in result.stdout
    assert f"warning: the cache mirror {_mirror(distro)} is damaged (" in result.stderr
    assert "); deleting it and fetching again" in result.stderr
    assert git(distro.src, "rev-parse", "HEAD") == head
    git(distro.src, "fsck", "--connectivity-only")  # every object is readable again
    assert source(distro).stdout.startswith("_src/1.20: up to date")
    exported = cli.invoke(app, ["--root", str(distro.root), "patches", "export", "1.20"])
    assert exported.exit_code == 0, exported.output


# -- 7: "our commit" is a recorded SHA, not an e-mail address -----------------------------


def _hand_commit_as_the_tool(src: Path) -> str:
    (src / "mine.txt").write_text("a maintainer's work\n")
    git(src, "add", "mine.txt")
    git(src, "commit", "-q", "-m", "my work", env={
        "GIT_COMMITTER_NAME": "tkedistro", "GIT_COMMITTER_EMAIL": "tkedistro@invalid"})
    return git(src, "rev-parse", "HEAD")


def test_hand_commit_with_the_tools_email_is_work_in_progress(distro: Distro) -> None:
    assert source(distro).exit_code == 0
    sha = _hand_commit_as_the_tool(distro.src)
    result = source(distro)
    assert result.exit_code == 8
    assert (f"error: _src/1.20 holds work in progress: 1 commit(s) not made by tkedistro: "
            f"{sha[:12]} my work; refusing to touch it") in result.stderr
    forced = source(distro, "--force")
    assert forced.exit_code == 0, forced.output
    ref = forced.stdout.rsplit("work in progress saved to ", 1)[1].strip()
    assert git(distro.src, "rev-parse", ref) == sha


def test_rebase_refuses_a_hand_commit_with_the_tools_email(tmp_path: Path) -> None:
    d = make_series_distro(tmp_path)
    from tests.helpers.series import prepare_src

    prepare_src(d)
    _hand_commit_as_the_tool(d.src)
    result = CliRunner().invoke(app, ["--root", str(d.root), "rebase", "1.20",
                                      "--onto", "v1.20.1"])
    assert result.exit_code == 8
    assert ("error: _src/1.20 holds commits that are not in the patch files; a rebase "
            "would lose them") in result.stderr


# -- 8: a killed run's git children do not outlive it ------------------------------------


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_kill_9_mid_apply_then_an_immediate_rerun_is_clean(distro: Distro,
                                                           tmp_path: Path) -> None:
    """A slow `git am` (a git wrapper that waits first) is running when the tool is killed."""
    real_git = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    started = tmp_path / "am-started"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(
        f"#!{sys.executable}\nimport os, sys, time\n"
        f"if 'am' in sys.argv[1:]:\n    open({str(started)!r}, 'w').close()\n"
        "    time.sleep(30)\n"
        f"os.execv({real_git!r}, [{real_git!r}, *sys.argv[1:]])\n")
    wrapper.chmod(0o755)
    env = {**os.environ, **IDENTITY, "PYTHONPATH": str(REPO),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen([sys.executable, "-m", "tkedistro", "--root", str(distro.root),
                             "source", "1.20"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not started.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "git am never started"
        time.sleep(0.02)
    children = _children(proc.pid)
    assert children
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(c) for c in children):
        assert time.monotonic() < deadline, "git outlived the killed run"
        time.sleep(0.05)
    result = source(distro)
    assert result.exit_code == 0, result.output
    assert "warning: _src/1.20: recovering from an interrupted tkedistro run" in result.stderr
    assert "2/2  3-way" in result.stdout
    assert git(distro.src, "status", "--porcelain") == ""


def test_child_setup_kills_a_child_with_its_parent(tmp_path: Path) -> None:
    code = ("from tkedistro.core.runner import run\n"
            "run(['sleep', '30'], die_with_us=True)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 20
    while not (kids := _children(parent.pid)) or \
            b"sleep" not in Path(f"/proc/{kids[0]}/cmdline").read_bytes():  # exec'd: set up
        assert time.monotonic() < deadline
        time.sleep(0.02)
    sleeper = kids[0]
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(sleeper):
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.05)


# -- 9: Ctrl-C while the tree is created ----------------------------------------------------


def test_ctrl_c_while_creating_the_tree_leaves_nothing(
    distro: Distro, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = repo_module.Repo.run

    def interrupted(self: Repo, *args: str, **kwargs: object) -> object:
        if args[:1] == ("checkout",):
            raise KeyboardInterrupt
        return real_run(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(repo_module.Repo, "run", interrupted)
    result = source(distro)
    assert result.exit_code == 130
    assert "error: interrupted" in result.stderr
    assert not (distro.root / "_src" / ".1.20.creating").exists()
    assert not distro.src.exists()
    monkeypatch.undo()
    assert source(distro).exit_code == 0


# -- 10: the git settings users need reach git; the redirecting ones do not -----------------


def test_clean_process_env_keeps_mirror_settings_and_drops_redirections(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = {"GIT_SSH_COMMAND": "ssh -i deploy_key", "GIT_SSL_CAINFO": "/etc/company-ca.pem",
            "GIT_ASKPASS": "/bin/false", "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "a.b",
            "GIT_CONFIG_VALUE_0": "c", "GIT_ALLOW_PROTOCOL": "file", "GIT_SSL_NO_VERIFY": "1",
            "GIT_HTTP_PROXY_AUTHMETHOD": "basic", "https_proxy": "http://proxy:3128",
            "GIT_CONFIG_GLOBAL": "/etc/ci/gitconfig", "GIT_CONFIG_SYSTEM": "/etc/gitconfig",
            "GIT_PROXY_COMMAND": "/usr/bin/corkscrew"}
    dropped = {"GIT_DIR": "/elsewhere", "GIT_WORK_TREE": "/elsewhere", "GIT_INDEX_FILE": "/x",
               "GIT_OBJECT_DIRECTORY": "/x", "GIT_ALTERNATE_OBJECT_DIRECTORIES": "/x",
               "GIT_COMMON_DIR": "/x", "GIT_NAMESPACE": "x", "GIT_CEILING_DIRECTORIES": "/",
               "GIT_EXEC_PATH": "/tmp/evil-git-core"}
    for key, value in {**kept, **dropped}.items():
        monkeypatch.setenv(key, value)
    assert set(dropped) <= set(runner.clean_process_env())
    assert {k: os.environ.get(k) for k in kept} == kept
    assert not set(dropped) & set(os.environ)


def test_git_config_from_the_environment_reaches_the_fetch(
    distro: Distro, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A company mirror: ``url.<mirror>.insteadOf`` given as GIT_CONFIG_* (as CI does)."""
    moved = tmp_path / "moved.git"
    distro.upstream.bare.rename(moved)
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", f"url.{moved.as_uri()}.insteadOf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", distro.upstream.url)
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "not-a-repo"))  # dropped: would redirect git
    result = source(distro)
    assert result.exit_code == 0, result.output
    assert git(distro.src, "log", "-1", "--format=%s") == "ten"


def test_library_callers_get_the_same_clean_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not through the CLI: the git layer cleans os.environ itself before GitPython runs git."""
    from tests.helpers.series import prepare_src

    d = make_series_distro(tmp_path, prepare=False)
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "other-index"))
    prepare_src(d)
    assert "GIT_DIR" not in os.environ and "GIT_INDEX_FILE" not in os.environ
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "other-index").exists()
    assert git(d.src, "log", "-1", "--format=%s") == "kubelet: print tke"


# -- 12: pins that name a tag object; CRLF plain diffs -------------------------------------


def test_pin_naming_the_tag_object_says_so_and_gives_the_commit(distro: Distro) -> None:
    tag_object = git(distro.upstream.bare, "rev-parse", "refs/tags/v1.20.1")
    commit = distro.upstream.tags["v1.20.1"]
    assert tag_object != commit
    distro.manifest([], tag="v1.20.1", commit=tag_object)
    result = source(distro)
    assert result.exit_code == 6
    assert result.stderr.splitlines()[-2:] == [
        f"error: releases/1.20.yaml pins upstream.commit {tag_object}, which is the annotated "
        f"tag object of v1.20.1, not a commit; the commit it points to is {commit}",
        f"hint: set upstream.commit: {commit} in releases/1.20.yaml",
    ]


def test_crlf_plain_diff_that_fails_says_crlf_and_how_to_fix(distro: Distro) -> None:
    name = distro.plain("0001-ten.diff", {"pkg/big/lines.go": big(l10="ours10")})
    path = distro.root / name
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    distro.manifest([name])
    result = source(distro)
    assert result.exit_code == 7
    note = ("patches/1.20/0001-ten.diff has CRLF (Windows) line endings, which do not match "
            "the tree's; convert it with `dos2unix patches/1.20/0001-ten.diff` or "
            "`sed -i 's/\\r$//' patches/1.20/0001-ten.diff` and run again")
    assert f"error: patch 1/1 does not apply: {name}\n" in result.stderr
    assert f"  {note}\n" in result.stderr
    assert result.stderr.rstrip().endswith(f"hint: {note}")


# -- a harmless manifest edit: the re-run after it is the quick one again -----------------


def _source_imports(distro: Distro) -> subprocess.CompletedProcess[str]:
    """``tkedistro source`` in a real process; its stderr lists the modules it imported."""
    env = {**os.environ, **IDENTITY, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tkedistro", "--root",
                           str(distro.root), "source", "1.20"], env=env, cwd=REPO,
                          capture_output=True, text=True, check=False)
    return proc


def test_a_comment_in_the_manifest_costs_one_full_run_not_every_run(distro: Distro) -> None:
    assert source(distro).exit_code == 0
    manifest = distro.root / "releases/1.20.yaml"
    manifest.write_text("# a harmless comment\n" + manifest.read_text())
    first = _source_imports(distro)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("_src/1.20: up to date")
    assert "tkedistro.model.manifest" in first.stderr  # it had to read the YAML once
    second = _source_imports(distro)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("_src/1.20: up to date")
    assert "tkedistro.model.manifest" not in second.stderr  # the quick re-run again


# -- a run that died between making a commit and recording it -----------------------------


def _backup_ref(stderr: str) -> str:
    return stderr.split("saved", 1)[1].split("refs/tkedistro/backup/", 1)[1].split()[0] \
        .rstrip(")")


def test_a_commit_made_but_not_recorded_by_a_killed_run_is_recovered(distro: Distro) -> None:
    assert source(distro).exit_code == 0
    recorded = git(distro.src, "rev-parse", "HEAD")
    made = _hand_commit_as_the_tool(distro.src)  # as `git am` leaves it, before note_made
    (distro.root / "_src/.1.20.tkedistro/source.applying").write_text("0")  # the run died
    result = source(distro)
    assert result.exit_code == 0, result.output
    assert ("warning: _src/1.20: recovering from an interrupted tkedistro run (its leftover "
            "changes and 1 commit(s) it made but did not record are saved to "
            "refs/tkedistro/backup/") in result.stderr
    assert "not made by tkedistro" not in result.output
    ref = "refs/tkedistro/backup/" + _backup_ref(result.stderr)
    assert git(distro.src, "rev-parse", ref) == made
    assert git(distro.src, "rev-parse", "HEAD") == recorded
    assert source(distro).stdout.startswith("_src/1.20: up to date")


def test_ctrl_c_between_a_commit_and_its_record_does_not_leave_a_foreign_commit(
    distro: Distro, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: Repo, shas: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Repo, "note_made", interrupted)
    result = source(distro)
    assert result.exit_code == 130
    assert ("warning: _src/1.20: 1 commit(s) made before the interrupt were not recorded; "
            "saved them to refs/tkedistro/backup/") in result.stderr
    made = git(distro.src, "rev-parse", "refs/tkedistro/backup/" + _backup_ref(result.stderr))
    assert git(distro.src, "rev-parse", "HEAD") == git(distro.src, "rev-parse", f"{made}~1")
    monkeypatch.undo()
    rerun = source(distro)
    assert rerun.exit_code == 0, rerun.output
    assert "1/2  applied" in rerun.stdout


# -- no git on PATH -------------------------------------------------------------------------


@pytest.mark.parametrize("prepared", [False, True])
def test_without_git_on_path_source_says_so(distro: Distro, tmp_path: Path,
                                            prepared: bool) -> None:
    if prepared:
        assert source(distro).exit_code == 0
    empty = tmp_path / "no-git-here"
    empty.mkdir()
    env = {**os.environ, **IDENTITY, "PYTHONPATH": str(REPO), "PATH": str(empty)}
    env.pop("GIT_PYTHON_REFRESH", None)
    proc = subprocess.run([sys.executable, "-m", "tkedistro", "--root", str(distro.root),
                           "source", "1.20"], env=env, cwd=REPO, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 14, proc.stderr
    assert "error: command not found: git\n" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_without_git_on_path_the_git_layer_raises_command_not_found(
    distro: Distro, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CommandError) as init:
        Repo.init_bare(tmp_path / "bare.git", {})
    with pytest.raises(CommandError) as listing:
        Repo.ls_remote(distro.upstream.url, ["refs/tags/v1.20.0"])
    for raised in (init, listing):
        assert raised.value.message == "command not found: git"
        assert raised.value.exit_code == 14


# -- a rebase state this tool did not write ------------------------------------------------


def _stopped_rebase(tmp_path: Path) -> tuple[SeriesDistro, Path, dict[str, object]]:
    """A rebase stopped at its conflict (patch 4 of 5), and its state file."""
    d = make_series_distro(tmp_path)
    stopped = cli.invoke(app, ["--root", str(d.root), "rebase", "1.20", "--onto", "v1.20.2"])
    assert stopped.exit_code == 7, stopped.output
    path = d.root / "_src/.1.20.tkedistro/rebase.json"
    return d, path, json.loads(path.read_text())


DAMAGED = "the rebase state is damaged, not what tkedistro writes"
FORGET = ("hint: tkedistro rebase 1.20 --continue, --skip and --abort all need it; to forget "
          "the rebase, delete _src/.1.20.tkedistro/rebase.json: the manifest and patch files "
          "stay as they are now")


@pytest.mark.parametrize(("key", "value", "why"), [
    ("phase", "done", "phase: expected 'replay', 'conflict' or 'finalize', got \"done\""),
    ("version", 2, "version: 2 is not 1, the one this tkedistro writes"),
    ("position", 9, "position: 9 is outside the series of 5 patch(es)"),
])
def test_a_rebase_state_of_unknown_shape_is_refused_and_nothing_is_written(
    tmp_path: Path, key: str, value: object, why: str
) -> None:
    d, path, data = _stopped_rebase(tmp_path)
    manifest = (d.root / "releases/1.20.yaml").read_bytes()
    path.write_text(json.dumps({**data, key: value}))
    for how in ("--continue", "--skip"):
        result = cli.invoke(app, ["--root", str(d.root), "rebase", "1.20", how])
        assert result.exit_code == 17, result.output
        assert f"error: _src/.1.20.tkedistro/rebase.json: {why}; {DAMAGED}\n" in result.stderr
        assert FORGET in result.stderr
    assert (d.root / "releases/1.20.yaml").read_bytes() == manifest


def test_a_rebase_state_that_cannot_be_read_is_exit_17(tmp_path: Path) -> None:
    d, path, _ = _stopped_rebase(tmp_path)
    path.unlink()
    path.mkdir()
    result = cli.invoke(app, ["--root", str(d.root), "rebase", "1.20", "--continue"])
    assert result.exit_code == 17, result.output
    assert ("error: _src/.1.20.tkedistro/rebase.json: cannot be read (Is a directory); "
            f"{DAMAGED}") in result.stderr


def test_skip_with_every_patch_replayed_says_nothing_to_skip(tmp_path: Path) -> None:
    d, path, data = _stopped_rebase(tmp_path)
    path.write_text(json.dumps({**data, "phase": "replay", "position": 5}))
    result = cli.invoke(app, ["--root", str(d.root), "rebase", "1.20", "--skip"])
    assert result.exit_code == 17, result.output
    assert "error: release 1.20: all patches are replayed; nothing to skip" in result.stderr


# -- a rebase that starts while a run waits for the release lock --------------------------


@pytest.mark.parametrize("command", [["patches", "export", "1.20"], ["source", "1.20"]])
def test_a_rebase_begun_before_the_lock_is_seen_under_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    from collections.abc import Iterator
    from contextlib import contextmanager

    from tkedistro.core import locks
    from tkedistro.core.workspace import Workspace
    from tkedistro.series import export
    from tkedistro.source import apply, prepare

    d, path, data = _stopped_rebase(tmp_path)
    assert cli.invoke(app, ["--root", str(d.root), "rebase", "1.20", "--abort"]).exit_code == 0
    manifest = (d.root / "releases/1.20.yaml").read_bytes()
    real_lock = locks.release_lock

    @contextmanager
    def rebase_got_there_first(ws: Workspace, release: str) -> Iterator[None]:
        path.write_text(json.dumps(data))  # the rebase that held the lock a moment ago
        with real_lock(ws, release):
            yield

    for module in (export, apply, prepare):
        monkeypatch.setattr(module, "release_lock", rebase_got_there_first)
    result = cli.invoke(app, ["--root", str(d.root), *command])
    assert result.exit_code == 17, result.output
    assert ("error: release 1.20 is mid-rebase onto v1.20.2; finish or abandon the rebase "
            "first") in result.stderr
    assert (d.root / "releases/1.20.yaml").read_bytes() == manifest


# -- `tkedistro new` writes its patch folder only inside the repo ---------------------------


def test_new_refuses_a_patch_folder_that_is_a_symlink_out(tmp_path: Path) -> None:
    d = make_series_distro(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (d.root / "patches/1.21").symlink_to(elsewhere)
    result = cli.invoke(app, ["--root", str(d.root), "new", "1.21", "--from", "1.20",
                              "--onto", "v1.20.1"])
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith("error: patch folder: patches/1.21 resolves outside the "
                                    f"repo through a symlink (to {elsewhere})"), result.stderr
    assert list(elsewhere.iterdir()) == []
    assert not (d.root / "releases/1.21.yaml").exists()


# -- a renamed file is one change, named by its new path ------------------------------------


def test_a_renamed_file_is_named_once_by_its_new_path(distro: Distro) -> None:
    assert source(distro).exit_code == 0
    git(distro.src, "mv", "README.md", "READ2.md")
    assert Repo(distro.src).status() == ["READ2.md"]
    result = source(distro)
    assert result.exit_code == 8
    assert ("error: _src/1.20 holds work in progress: uncommitted changes in 1 file(s): "
            "READ2.md; refusing to touch it") in result.stderr
