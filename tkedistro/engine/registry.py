"""A local image registry for one run: Debian's CNCF Distribution (``docker-registry serve``).

``LocalRegistry(folder)`` is a context manager. It listens on 127.0.0.1 only (the engine
treats loopback registries as plain HTTP), keeps its blobs under ``folder/data`` so images
survive between runs, writes its own ``config.yml`` and logs to ``folder/registry.log``.

Every local user can reach 127.0.0.1, and the local cluster's nodes run what the storage
holds, so the registry answers only the run that started it: each start makes a new random
password (kept in memory; written, 0600, only for ``conformance images --serve``), writes
its bcrypt hash to ``folder/htpasswd`` (0600 from creation, removed at the end) and turns on
the registry's ``htpasswd`` auth; the pushes (``ImageEngine.push(ref, registry.login)``) and
the tool's own requests send it. Deletes are off. The nodes never talk to this registry: each
serves the storage read-only on its own loopback (``cluster/nodeimage.py``).

One run at a time uses a folder (a file lock). The registry dies with this process
(``PR_SET_PDEATHSIG``); a registry left over anyway (recorded in ``folder/registry.json``) is
stopped at the next start only if ``/proc/PID/cmdline`` shows docker-registry serving *our*
config: nothing else is ever signalled. (``PR_SET_PDEATHSIG`` follows the *thread* that
started it: enter the context from a thread that outlives its use, such as the main one.)
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from tkedistro.core import console, files
from tkedistro.core.errors import ClusterError
from tkedistro.core.files import log_tail, write_text
from tkedistro.core.locks import exclusive_lock
from tkedistro.core.runner import child_setup, clean_env
from tkedistro.engine.protocols import RegistryLogin
from tkedistro.model.refs import parse_image_ref

BINARY = "docker-registry"
STATE_VERSION = 1
HOST = "127.0.0.1"
USER = "tkedistro"
REALM = "tkedistro local registry"
# bcrypt's lowest cost: the password is 256 random bits (no guessing to slow down), and the
# registry checks it on every request of a push
BCRYPT_ROUNDS = 4
INSTALL_HINT = ("apt-get install docker-registry (or `sudo tkedistro host-setup`, which "
                "installs it)")
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass(frozen=True)
class RegistryState:
    """What a running registry leaves in its folder, so a crashed run's one can be found."""

    pid: int
    port: int
    config: Path

    def to_json(self) -> bytes:
        data = {"version": STATE_VERSION, "pid": self.pid, "port": self.port,
                "config": str(self.config)}
        return (json.dumps(data, indent=2) + "\n").encode()

    @classmethod
    def load(cls, path: Path) -> RegistryState | None:
        """The recorded state; None when absent, unreadable or of an unknown version."""
        try:
            data = json.loads(files.read_text(path, max_bytes=1 << 16))
            if data.get("version") != STATE_VERSION:
                return None
            pid, port = data["pid"], data["port"]
            if type(pid) is not int or type(port) is not int or pid < 1 or not 0 < port < 65536:
                return None
            return cls(pid, port, Path(str(data["config"])))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None


def new_login() -> RegistryLogin:
    """A fresh user and random password for one registry start."""
    return RegistryLogin(USER, secrets.token_urlsafe(32))


def htpasswd_line(login: RegistryLogin) -> str:
    """``user:<bcrypt hash>``, the one line of the registry's htpasswd file."""
    import bcrypt

    hashed = bcrypt.hashpw(login.password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS))
    return f"{login.username}:{hashed.decode()}\n"


def render_config(data_dir: Path, port: int, htpasswd: Path) -> str:
    """The registry's config.yml (JSON is YAML): htpasswd auth, deletes off, no debug
    listener."""
    config = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(data_dir)},
            "delete": {"enabled": False},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "auth": {"htpasswd": {"realm": REALM, "path": str(htpasswd)}},
        "http": {"addr": f"{HOST}:{port}"},
    }
    return json.dumps(config, indent=2) + "\n"


def find_binary(explicit: Path | None = None) -> Path:
    """The docker-registry program, or a ``ClusterError`` saying how to install it."""
    found = explicit if explicit is not None else shutil.which(BINARY)
    if found is None or not os.access(found, os.X_OK):
        raise ClusterError(f"{explicit or BINARY} not found: the local image registry needs "
                           "Debian's docker-registry (CNCF Distribution)", hint=INSTALL_HINT)
    return Path(found)


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when nothing listens there on 127.0.0.1, else a port the kernel picks."""
    for port in ((preferred,) if preferred else ()) + (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise AssertionError("the kernel gave no free port")  # pragma: no cover


def is_our_registry(pid: int, config: Path) -> bool:
    """Whether ``pid`` is a live docker-registry serving ``config`` (its /proc cmdline)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return False
    if not argv or os.path.basename(argv[0]) != BINARY.encode():
        return False
    return argv[1:] == [b"serve", os.fsencode(config)]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return not Path(f"/proc/{pid}").exists() or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def terminate(pid: int, grace: float = 5.0) -> None:
    """SIGTERM ``pid``, then SIGKILL when it is still there after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _gone(pid):
                return
            time.sleep(0.05)


def stop_leftover(state_file: Path, config: Path) -> RegistryState | None:
    """Stop the registry a crashed run left (only if it is ours); returns the old state."""
    state = RegistryState.load(state_file)
    if state is None:
        return None
    if state.config == config and is_our_registry(state.pid, config):
        console.warn(f"stopping the local registry a previous run left running "
                     f"(pid {state.pid}, port {state.port})")
        terminate(state.pid)
    files.remove(state_file)
    return state


class LocalRegistry:
    """``with LocalRegistry(cache / "registry") as reg:`` a registry at ``reg.address``."""

    def __init__(self, folder: Path, *, binary: Path | None = None,
                 start_timeout: float = 30.0, lock_wait: float = 600.0):
        self.folder = folder
        self.binary = binary
        self.start_timeout = start_timeout
        self.lock_wait = lock_wait
        self.config = folder / "config.yml"
        self.log = folder / "registry.log"
        self.state_file = folder / "registry.json"
        self.htpasswd = folder / "htpasswd"
        self.password_file = folder / "password"
        self.auth_file = folder / "auth.json"
        self.port = 0
        self.login = new_login()
        self._process: subprocess.Popen[bytes] | None = None
        self._stack = ExitStack()

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def __enter__(self) -> LocalRegistry:
        binary = find_binary(self.binary)
        with ExitStack() as stack:
            lock = self.folder / "registry.lock"
            stack.enter_context(exclusive_lock(
                lock, f"another tkedistro run is using the local registry in {self.folder} "
                f"(lock {lock})", wait=self.lock_wait,
                waiting=f"waiting for another run to finish with the registry in {self.folder}"))
            stack.callback(self._forget_login)  # after the registry stopped
            stack.callback(self._stop)
            old = stop_leftover(self.state_file, self.config)
            self.login = new_login()
            write_text(self.htpasswd, htpasswd_line(self.login), mode=0o600)
            self._start(binary, old.port if old else None)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.close()

    def _start(self, binary: Path, preferred: int | None) -> None:
        for attempt in range(3):
            self.port = free_port(preferred if attempt == 0 else None)
            write_text(self.config, render_config(self.folder / "data", self.port, self.htpasswd))
            self._process = self._spawn(binary)
            files.write_atomic(self.state_file, RegistryState(
                self._process.pid, self.port, self.config).to_json())
            if self._wait_ready():
                console.verbose(f"local registry at {self.address} (data {self.folder / 'data'})")
                return
            if "address already in use" not in log_tail(self.log, 15):
                break  # only a port taken between our probe and its bind is worth a retry
        raise ClusterError(
            f"the local registry (docker-registry) did not answer on {self.url}/v2/ within "
            f"{self.start_timeout:.0f}s", details=log_tail(self.log, 15),
            hint=f"its log: {self.log}")

    def _spawn(self, binary: Path) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in clean_env().items() if not k.startswith("REGISTRY_")}
        with files.open_for_writing(self.log) as log:
            return subprocess.Popen(
                [os.fspath(binary), "serve", os.fspath(self.config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=self.folder, start_new_session=True, preexec_fn=child_setup(os.getpid()))

    def _wait_ready(self) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                if self._request("GET", "/v2/", timeout=1)[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        self._stop()
        return False

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        state = RegistryState.load(self.state_file)
        if state is not None and state.pid == process.pid:
            files.remove(self.state_file)

    def _forget_login(self) -> None:
        files.remove(self.htpasswd)
        files.remove(self.password_file)
        files.remove(self.auth_file)

    def write_auth_file(self) -> Path:
        """The login as a containers-auth.json (``folder/auth.json``, 0600 from creation,
        removed when the registry stops), for skopeo's ``--dest-authfile``."""
        token = base64.b64encode(f"{self.login.username}:{self.login.password}".encode())
        data = {"auths": {self.address: {"auth": token.decode()}}}
        write_text(self.auth_file, json.dumps(data) + "\n", mode=0o600)
        return self.auth_file

    def write_password(self) -> Path:
        """The password in ``folder/password`` (0600 from creation, removed when the registry
        stops), for a user to log in to a registry kept serving (``--serve``)."""
        write_text(self.password_file, self.login.password + "\n", mode=0o600)
        return self.password_file

    def _request(self, method: str, path: str, headers: dict[str, str] | None = None,
                 timeout: float = 30) -> tuple[int, Any, bytes]:
        """One HTTP request to the registry: (status, headers, body); 4xx/5xx are returned."""
        token = base64.b64encode(f"{self.login.username}:{self.login.password}".encode())
        sent = {**(headers or {}), "Authorization": f"Basic {token.decode()}"}
        request = urllib.request.Request(self.url + path, method=method, headers=sent)
        try:
            with _NO_PROXY.open(request, timeout=timeout) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers, exc.read()

    def _checked(self, method: str, path: str, headers: dict[str, str] | None = None,
                 ok: tuple[int, ...] = (200,)) -> tuple[int, Any, bytes]:
        try:
            status, found, body = self._request(method, path, headers)
        except OSError as exc:
            raise ClusterError(f"the local registry at {self.url} did not answer {method} "
                               f"{path}: {exc}", hint=f"its log: {self.log}") from exc
        if status not in ok:
            raise ClusterError(f"the local registry answered HTTP {status} to {method} {path}",
                               details=body.decode(errors="replace")[:2000],
                               hint=f"its log: {self.log}")
        return status, found, body

    def catalog(self) -> list[str]:
        """Every repository the registry holds (``GET /v2/_catalog``, all pages), sorted."""
        names: list[str] = []
        path: str | None = "/v2/_catalog?n=1000"
        while path:
            _, headers, body = self._checked("GET", path)
            names.extend(json.loads(body).get("repositories") or [])
            link = _NEXT_LINK.search(headers.get("Link") or "")
            path = None
            if link:
                target = urllib.parse.urlsplit(link.group(1))
                path = target.path + (f"?{target.query}" if target.query else "")
        return sorted(names)

    def manifest_digest(self, repo: str, tag: str) -> str | None:
        """The digest of ``repo:tag``'s manifest (or index); None when the registry has none."""
        path = f"/v2/{urllib.parse.quote(repo)}/manifests/{urllib.parse.quote(tag)}"
        status, headers, _ = self._checked("HEAD", path, {"Accept": ", ".join(MANIFEST_TYPES)},
                                           ok=(200, 404))
        if status == 404:
            return None
        return str(headers.get("Docker-Content-Digest") or "") or None

    def ref(self, name: str) -> str:
        """``name`` (``repo:tag`` or ``repo@sha256:...``) in this registry."""
        return f"{self.address}/{name}"

    def has(self, ref: str) -> bool:
        """Whether ``ref`` (``ADDRESS/repo:tag`` or ``ADDRESS/repo@digest``) is here."""
        prefix = self.address + "/"
        if not ref.startswith(prefix):
            raise ValueError(f"{ref} is not an image of the registry at {self.address}")
        repo, tag = split_ref(ref.removeprefix(prefix))
        return self.manifest_digest(repo, tag) is not None


def split_ref(name: str) -> tuple[str, str]:
    """``repo:tag`` / ``repo@sha256:...`` / ``repo`` -> (repo, tag or digest or ``latest``)."""
    parsed = parse_image_ref(name)
    return parsed.repository, parsed.version or "latest"
