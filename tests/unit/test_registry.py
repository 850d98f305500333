"""The local registry without Docker: its config, the crash-leftover check, its error texts,
and how the image engine reads the engine's push stream."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tkedistro.core.errors import BuildError, ClusterError, LockedError
from tkedistro.core.locks import exclusive_lock
from tkedistro.engine import registry as reg
from tkedistro.engine.docker_images import _push_digest
from tkedistro.engine.registry import LocalRegistry, RegistryState
from tkedistro.model.refs import parse_image_ref

DIGEST = "sha256:" + "ab" * 32


def test_config_listens_on_loopback_only_asks_for_a_login_and_refuses_deletes(
        tmp_path: Path) -> None:
    config = YAML(typ="safe").load(
        reg.render_config(tmp_path / "data", 41234, tmp_path / "htpasswd"))
    assert config["http"] == {"addr": "127.0.0.1:41234"}  # no debug listener, no TLS
    assert config["storage"]["filesystem"] == {"rootdirectory": str(tmp_path / "data")}
    assert config["storage"]["delete"] == {"enabled": False}
    assert config["auth"] == {"htpasswd": {"realm": "tkedistro local registry",
                                           "path": str(tmp_path / "htpasswd")}}
    assert config["version"] == 0.1


def test_each_login_is_new_and_its_htpasswd_line_holds_only_a_bcrypt_hash() -> None:
    import bcrypt

    first, second = reg.new_login(), reg.new_login()
    assert first.username == "tkedistro" and first.password != second.password
    assert len(first.password) >= 40 and first.password not in repr(first)
    user, hashed = reg.htpasswd_line(first).rstrip("\n").split(":", 1)
    assert user == "tkedistro" and hashed.startswith("$2b$04$")
    assert first.password not in hashed
    assert bcrypt.checkpw(first.password.encode(), hashed.encode())
    assert not bcrypt.checkpw(second.password.encode(), hashed.encode())


def test_state_of_an_unknown_version_or_garbage_is_ignored(tmp_path: Path) -> None:
    state = tmp_path / "registry.json"
    assert RegistryState.load(state) is None
    state.write_text('{"version": 99, "pid": 1, "port": 2, "config": "/x"}')
    assert RegistryState.load(state) is None
    state.write_text("not json")
    assert RegistryState.load(state) is None
    state.write_bytes(RegistryState(12, 5000, tmp_path / "config.yml").to_json())
    assert RegistryState.load(state) == RegistryState(12, 5000, tmp_path / "config.yml")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def _fake_registry(tmp_path: Path, config: Path) -> subprocess.Popen[bytes]:
    """A live process whose /proc cmdline reads ``docker-registry serve CONFIG``."""
    (tmp_path / "serve").write_text("import time\ntime.sleep(60)\n")
    return subprocess.Popen(["docker-registry", "serve", str(config)],
                            executable=sys.executable, cwd=tmp_path)


def test_a_state_file_naming_unrelated_live_processes_kills_nothing(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    config = tmp_path / "config.yml"
    state = tmp_path / "registry.json"
    for pid in (os.getpid(), sleeper.pid):
        state.write_bytes(RegistryState(pid, 5000, config).to_json())
        assert reg.stop_leftover(state, config) == RegistryState(pid, 5000, config)
        assert not state.exists()  # a stale record is dropped, its process left alone
    assert sleeper.poll() is None


def test_a_registry_serving_another_config_is_left_alone(tmp_path: Path) -> None:
    other = _fake_registry(tmp_path, tmp_path / "other" / "config.yml")
    try:
        time.sleep(0.2)
        config = tmp_path / "config.yml"
        assert not reg.is_our_registry(other.pid, config)
        assert reg.is_our_registry(other.pid, tmp_path / "other" / "config.yml")
        state = tmp_path / "registry.json"
        state.write_bytes(RegistryState(other.pid, 5000, config).to_json())
        reg.stop_leftover(state, config)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_our_leftover_registry_is_stopped(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yml"
    leftover = _fake_registry(tmp_path, config)
    try:
        time.sleep(0.2)
        state = tmp_path / "registry.json"
        state.write_bytes(RegistryState(leftover.pid, 5000, config).to_json())
        reg.stop_leftover(state, config)
        assert leftover.wait(timeout=10) == -15  # SIGTERM was enough
    finally:
        leftover.kill()
    assert f"pid {leftover.pid}, port 5000" in capsys.readouterr().err


def test_a_missing_binary_says_how_to_install_it(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ClusterError) as caught:
        LocalRegistry(tmp_path / "registry").__enter__()
    assert caught.value.message.startswith("docker-registry not found")
    assert caught.value.hint == ("apt-get install docker-registry "
                                 "(or `sudo tkedistro host-setup`, which installs it)")
    assert not (tmp_path / "registry").exists()


def test_a_registry_that_never_answers_names_its_log(tmp_path: Path) -> None:
    binary = tmp_path / "docker-registry"
    binary.write_text("#!/bin/sh\necho 'configuration error: boom' >&2\nexit 1\n")
    binary.chmod(0o755)
    folder = tmp_path / "registry"
    with pytest.raises(ClusterError) as caught, LocalRegistry(folder, binary=binary):
        pass
    assert caught.value.message.startswith("the local registry (docker-registry) did not answer "
                                           "on http://127.0.0.1:")
    assert caught.value.details == "configuration error: boom"
    assert caught.value.hint == f"its log: {folder / 'registry.log'}"
    assert not (folder / "registry.json").exists()


def test_a_second_user_of_the_folder_waits_then_says_who_holds_it(tmp_path: Path) -> None:
    folder = tmp_path / "registry"
    with exclusive_lock(folder / "registry.lock", "held"), pytest.raises(LockedError) as caught:
        LocalRegistry(folder, binary=Path(sys.executable), lock_wait=0.2).__enter__()
    assert caught.value.message == (f"another tkedistro run is using the local registry in "
                                    f"{folder} (lock {folder / 'registry.lock'}); held by "
                                    f"process {os.getpid()}")


def test_free_port_keeps_a_free_preferred_port_and_replaces_a_taken_one() -> None:
    port = reg.free_port()
    assert reg.free_port(port) == port
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        assert reg.free_port(busy) != busy


@pytest.mark.parametrize(("ref", "expected"), [
    ("127.0.0.1:5000/k8s.gcr.io/pause:3.2", ("127.0.0.1:5000/k8s.gcr.io/pause", "3.2")),
    ("127.0.0.1:5000/busybox", ("127.0.0.1:5000/busybox", "")),
    (f"127.0.0.1:5000/e2e/agnhost@{DIGEST}", ("127.0.0.1:5000/e2e/agnhost", DIGEST)),
])
def test_refs_split_without_taking_the_port_for_a_tag(ref: str,
                                                      expected: tuple[str, str]) -> None:
    parsed = parse_image_ref(ref)
    assert (parsed.repository, parsed.version) == expected


def test_has_refuses_a_ref_of_another_registry(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path)
    registry.port = 5000
    with pytest.raises(ValueError, match="not an image of the registry at 127.0.0.1:5000"):
        registry.has("k8s.gcr.io/pause:3.2")


def test_push_returns_the_digest_the_engine_reported() -> None:
    stream = [{"status": "The push refers to repository [127.0.0.1:5000/pause]"},
              {"status": "Pushed", "id": "5f70bf18a086"},
              {"status": f"3.2: digest: {DIGEST} size: 527"},
              {"aux": {"Tag": "3.2", "Digest": DIGEST, "Size": 527}}]
    assert _push_digest("127.0.0.1:5000/pause:3.2", stream) == DIGEST
    assert _push_digest("127.0.0.1:5000/pause:3.2", stream[:3]) == DIGEST


def test_a_push_error_names_the_ref_and_the_engine_message() -> None:
    stream = [{"status": "Preparing", "id": "5f70bf18a086"},
              {"errorDetail": {"message": "connection refused"}, "error": "connection refused"}]
    with pytest.raises(BuildError) as caught:
        _push_digest("127.0.0.1:5000/pause:3.2", stream)
    assert caught.value.message == "docker push 127.0.0.1:5000/pause:3.2 failed: connection refused"
    assert caught.value.details == "5f70bf18a086 Preparing"
    with pytest.raises(BuildError, match="reported no digest"):
        _push_digest("127.0.0.1:5000/pause:3.2", stream[:1])


def test_catalog_follows_every_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pages = {
        "/v2/_catalog?n=1000": ({"Link": '</v2/_catalog?last=b&n=1000>; rel="next"'},
                                b'{"repositories": ["k8s.gcr.io/pause", "b"]}'),
        "/v2/_catalog?last=b&n=1000": ({}, b'{"repositories": ["a"]}'),
    }
    asked: list[str] = []

    def answer(method: str, path: str, headers: object = None,
               timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        asked.append(path)
        return (200, *pages[path])

    registry = LocalRegistry(tmp_path)
    monkeypatch.setattr(registry, "_request", answer)
    assert registry.catalog() == ["a", "b", "k8s.gcr.io/pause"]
    assert asked == list(pages)


def test_the_served_password_is_the_owners_alone_and_goes_with_the_registry(
        tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        registry = LocalRegistry(tmp_path / "registry")
        path = registry.write_password()
    finally:
        os.umask(old)
    assert path == tmp_path / "registry" / "password"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert path.read_text() == registry.login.password + "\n"
    registry._forget_login()  # what leaving the ``with`` block does after the registry stops
    assert not path.exists()


def test_skopeos_login_file_is_the_owners_alone_and_goes_with_the_registry(
        tmp_path: Path) -> None:
    import base64
    import json

    old = os.umask(0)
    try:
        registry = LocalRegistry(tmp_path / "registry")
        registry.port = 40123
        path = registry.write_auth_file()
    finally:
        os.umask(old)
    assert path == tmp_path / "registry" / "auth.json"
    assert os.stat(path).st_mode & 0o777 == 0o600
    login = f"{registry.login.username}:{registry.login.password}".encode()
    assert json.loads(path.read_text()) == {
        "auths": {"127.0.0.1:40123": {"auth": base64.b64encode(login).decode()}}}
    registry._forget_login()
    assert not path.exists()
