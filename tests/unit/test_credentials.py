"""Credentials never leave git (issue 24, item 3).

A token in ``--upstream https://bot:TOKEN@host/...`` reaches git through its credential path
(a helper reading the environment of the one git command that fetches): it is in no message,
no ``--json`` document, no state file, no git config and no argv ``--verbose`` prints. The
upstream here is served over HTTP on 127.0.0.1 (git's dumb protocol) behind Basic auth, so a
fetch that works proves git got the token; every file the run left is searched for it.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.gitrepo import git
from tests.helpers.series import Distro, make_distro
from tkedistro.cli.app import app
from tkedistro.model.url import redact_url, redact_urls, split_credentials

TOKEN = "ghp_S3cretT0kenValue42"
USER = "bot"


class _Server:
    def __init__(self, folder: Path) -> None:
        self.seen: list[str] = []  # the Authorization header of each request ("" for none)
        handler = functools.partial(_AuthHandler, self, directory=str(folder))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, userinfo: str = f"{USER}:{TOKEN}") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"http://{at}127.0.0.1:{self.port}/upstream.git"


class _AuthHandler(SimpleHTTPRequestHandler):
    """Serves the folder only to ``bot:TOKEN`` (HTTP Basic), as a private mirror would."""

    def __init__(self, server_state: _Server, *args: object, **kwargs: object) -> None:
        self.state = server_state
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def do_GET(self) -> None:
        got = self.headers.get("Authorization", "")
        self.state.seen.append(got)
        wanted = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
        if got != wanted:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass


@pytest.fixture
def distro(tmp_path: Path) -> Distro:
    return make_distro(tmp_path, prepare=False)


@pytest.fixture
def server(distro: Distro, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    """The distro's upstream, served over HTTP behind Basic auth."""
    served = tmp_path / "served"
    served.mkdir()
    git(tmp_path, "clone", "-q", "--bare", str(distro.upstream.bare), str(served / "upstream.git"))
    git(served / "upstream.git", "update-server-info")
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file:http")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")  # a missing credential fails, never waits
    running = _Server(served)
    running.thread.start()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


def cli(d: Distro, *args: str, verbose: bool = False) -> Result:
    extra = ["--verbose"] if verbose else []
    return CliRunner().invoke(app, ["--root", str(d.root), *extra, *args],
                              env={"COLUMNS": "1000"})


def files_holding(token: str, *folders: Path) -> list[str]:
    """Every file under ``folders`` whose bytes hold ``token`` (state, config, logs, packs)."""
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink() and token.encode() in path.read_bytes():
                found.append(str(path))
    return found


def everywhere(d: Distro, home: Path) -> list[str]:
    """The distro root (with _src and its state), the cache (the mirror and its config) and
    HOME (a credential store git might have written)."""
    return files_holding(TOKEN, d.root, home)


def test_source_fetches_with_the_token_and_shows_it_nowhere(
        distro: Distro, server: _Server, isolated_env: Path) -> None:
    result = cli(distro, "source", "1.20", "--upstream", server.url(), "--json", verbose=True)

    assert result.exit_code == 0, result.output
    assert f"Basic {base64.b64encode(f'{USER}:{TOKEN}'.encode()).decode()}" in server.seen
    assert TOKEN not in result.stdout and TOKEN not in result.stderr
    assert USER + ":" not in result.output
    assert json.loads(result.stdout)["upstream_url"] == server.url("")
    assert f"fetching v1.20.0 from {server.url('')}" in result.stderr
    assert everywhere(distro, isolated_env) == []
    mirrors = distro.workspace().mirrors_dir
    config = "".join(p.read_text() for p in mirrors.glob("*.git/config"))
    assert "credential" not in config and "127.0.0.1" not in config


def test_the_token_never_reaches_a_users_credential_store(
        distro: Distro, server: _Server, isolated_env: Path) -> None:
    store = isolated_env / "store"
    git(isolated_env, "config", "--global", "credential.helper", f"store --file={store}")

    assert cli(distro, "source", "1.20", "--upstream", server.url()).exit_code == 0

    assert not store.exists()
    assert everywhere(distro, isolated_env) == []


def test_a_wrong_token_fails_with_a_message_without_it(
        distro: Distro, server: _Server, isolated_env: Path) -> None:
    wrong = "ghp_WrongT0kenValue99"
    result = cli(distro, "source", "1.20", "--upstream", server.url(f"{USER}:{wrong}"), "--json")

    assert result.exit_code == 5
    assert wrong not in result.output
    assert f"cannot fetch tag v1.20.0 from {server.url('')} (git exit code 128)" in result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "FetchError" and wrong not in json.dumps(error)
    assert files_holding(wrong, distro.root, isolated_env) == []


def test_an_unreachable_upstream_with_a_token_fails_without_showing_it(
        distro: Distro, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file:https")
    url = f"https://{USER}:{TOKEN}@127.0.0.1:9/k8s.git"  # port 9 (discard): nothing answers
    result = cli(distro, "rebase", "1.20", "--onto", "v1.20.2", "--upstream", url, "--json",
                 verbose=True)

    assert result.exit_code == 5, result.output
    assert TOKEN not in result.output and USER + ":" not in result.output
    assert "cannot list tags of https://127.0.0.1:9/k8s.git (git exit code 128)" in result.stderr
    assert json.loads(result.stdout)["error"]["type"] == "FetchError"
    assert everywhere(distro, isolated_env) == []


def test_rebase_keeps_the_token_out_of_its_state_and_resumes_without_it(
        distro: Distro, server: _Server, isolated_env: Path) -> None:
    stopped = cli(distro, "rebase", "1.20", "--onto", "v1.20.2", "--upstream", server.url(),
                  "--json", verbose=True)

    assert stopped.exit_code == 7, stopped.output  # patch 4 conflicts on v1.20.2
    assert TOKEN not in stopped.output
    state = distro.root / "_src" / ".1.20.tkedistro" / "rebase.json"
    assert json.loads(state.read_text())["url"] == server.url("")
    assert everywhere(distro, isolated_env) == []

    resumed = cli(distro, "rebase", "1.20", "--skip")  # re-reads the state; fetches nothing
    assert resumed.exit_code == 0, resumed.output
    assert "rebased 1.20 onto v1.20.2" in resumed.stdout
    assert everywhere(distro, isolated_env) == []


def test_forecast_with_a_token_prints_it_nowhere(
        distro: Distro, server: _Server, isolated_env: Path) -> None:
    result = cli(distro, "forecast", "1.20", "--onto", "v1.20.1", "--upstream", server.url(),
                 "--json", verbose=True)

    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
    assert everywhere(distro, isolated_env) == []


def test_an_upstream_of_the_wrong_shape_is_refused_without_echoing_its_token(
        distro: Distro) -> None:
    result = cli(distro, "source", "1.20", "--upstream", f"ftp://{USER}:{TOKEN}@host/k8s.git")

    assert result.exit_code == 2
    assert TOKEN not in result.output
    assert "'ftp://host/k8s.git': the scheme 'ftp' is not allowed" in " ".join(
        re.sub(r"[╭╮╰╯│─]", " ", result.output).split())


def test_an_upstream_whose_password_decodes_to_a_newline_is_refused(distro: Distro) -> None:
    """The helper hands git ``password=<value>`` lines: a newline would add a line of its own."""
    result = cli(distro, "source", "1.20", "--upstream",
                 f"https://{USER}:{TOKEN}%0Ahost=evil.example@127.0.0.1:9/k8s.git")

    assert result.exit_code == 2
    assert TOKEN not in result.output
    assert ("'https://127.0.0.1:9/k8s.git': the user name or password holds an encoded control "
            "character; git's credential protocol cannot carry it") in " ".join(
        re.sub(r"[╭╮╰╯│─]", " ", result.output).split())


def test_a_manifest_url_with_credentials_is_refused_without_showing_them(
        distro: Distro) -> None:
    text = distro.manifest.read_text()
    distro.manifest.write_text(re.sub(r"(?m)^  url: .*$",
                                      f"  url: https://{USER}:{TOKEN}@example.com/k8s.git", text))

    result = cli(distro, "validate")

    assert result.exit_code == 3
    assert TOKEN not in result.output
    assert ("upstream.url: 'https://example.com/k8s.git' with a user name or password in it: "
            "a manifest is shared and its URL published (SBOM, provenance, CI workflows); "
            "remove them and give credentials through a git credential helper, or fetch with "
            "--upstream URL (TKEDISTRO_UPSTREAM)") in result.stderr


@pytest.mark.parametrize(("url", "shown", "username", "password"), [
    ("https://bot:tok@host/k.git", "https://host/k.git", "bot", "tok"),
    ("https://tok@host/k.git", "https://host/k.git", "tok", ""),
    ("http://a%40b:p%3Aw@host:8080/k", "http://host:8080/k", "a@b", "p:w"),
    ("git://u:p@host/k.git", "git://host/k.git", "", ""),
    ("ssh://git:pw@host:22/k.git", "ssh://git@host:22/k.git", "", ""),
    ("ssh://git@host/k.git", "ssh://git@host/k.git", "", ""),
    ("git@github.com:org/k.git", "git@github.com:org/k.git", "", ""),  # no password possible
    ("file:///srv/k.git", "file:///srv/k.git", "", ""),
    ("/srv/mirrors/k.git", "/srv/mirrors/k.git", "", ""),
    ("https://host/path@v1", "https://host/path@v1", "", ""),
])
def test_which_user_info_is_a_secret(url: str, shown: str, username: str, password: str) -> None:
    assert split_credentials(url) == (shown, username, password)
    assert redact_url(url) == shown
    assert redact_urls(f"from '{url}' failed") == f"from '{shown}' failed"


def test_git_never_sees_the_token_in_its_argv(distro: Distro, server: _Server) -> None:
    """``--verbose`` prints each git command line: the helper is there, the token is not."""
    result = cli(distro, "source", "1.20", "--upstream", server.url(), verbose=True)

    assert result.exit_code == 0, result.output
    fetch = next(line for line in result.stderr.splitlines() if " fetch " in line)
    assert "credential.helper=!f()" in fetch and server.url("") in fetch
    assert TOKEN not in fetch


def test_the_stored_source_state_holds_no_token(distro: Distro, server: _Server) -> None:
    assert cli(distro, "source", "1.20", "--upstream", server.url()).exit_code == 0
    state = distro.root / "_src" / ".1.20.tkedistro"
    assert sorted(p.name for p in state.iterdir() if TOKEN.encode() in p.read_bytes()) == []
    head = subprocess.run(["git", "-C", str(distro.src), "config", "--list"],
                          capture_output=True, text=True, check=True).stdout
    assert TOKEN not in head and "127.0.0.1" not in head
