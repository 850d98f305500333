"""The Docker backend (docker SDK). The only module that imports ``docker``.

A session is one long-lived container (``sleep infinity`` under docker's init) in which
commands run with ``exec``; it runs unprivileged (the invoking uid:gid, all capabilities
dropped, no-new-privileges, no network) and is removed on exit.

Importing the SDK (with ``requests``) is a noticeable part of a no-op build's start-up
(``bench/bench_docker_probe.py`` measures it), so ``check_available`` and ``image_info`` speak
the engine's HTTP API over its unix socket with the standard library, and the SDK is imported
only to run containers (or when ``DOCKER_HOST`` is not a unix socket).
"""

from __future__ import annotations

import codecs
import http.client
import io
import json
import os
import socket
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tkedistro.core import console, files
from tkedistro.core.errors import BackendUnavailableError, BuildError
from tkedistro.engine.protocols import (
    KEEP_CONTAINER_ENV,
    ContainerSpec,
    ImageInfo,
    LineFeed,
    OnLine,
    RunResult,
)

TAIL_CHARS = 64_000
CONTAINER_LABEL = "org.tkedistro.build"
DEFAULT_HOST = "unix:///var/run/docker.sock"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(self._path)
        self.sock = sock


def _socket_path() -> str | None:
    host = os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    return host.removeprefix("unix://") if host.startswith("unix://") else None


def _get(path: str) -> tuple[int, bytes]:
    """GET ``path`` from the engine over its unix socket (stdlib only)."""
    sock_path = _socket_path()
    assert sock_path is not None
    conn = _UnixConnection(sock_path)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _unavailable(exc: Exception) -> BackendUnavailableError:
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock (DOCKER_HOST unset)"
    return BackendUnavailableError(
        f"no Docker engine answers at {host}",
        details=f"{type(exc).__name__}: {exc}",
        hint="install Debian's docker.io (apt-get install -y docker.io) and start dockerd "
        "(scripts/ensure-docker.sh in a tkedistro checkout does both), or point DOCKER_HOST at "
        "a running engine",
    )


def connect() -> Any:
    """A docker SDK client that answered a ping (``BackendUnavailableError`` otherwise)."""
    import docker  # type: ignore[import-untyped]

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:  # requests' errors are OSErrors
        raise _unavailable(exc) from exc
    return client


class DockerSession:
    """One running container; ``run`` executes argv in it and streams output to a log."""

    def __init__(self, client: Any, container: Any, spec: ContainerSpec):
        self._client = client
        self._container = container
        self._spec = spec

    @property
    def container_id(self) -> str:
        return str(self._container.id)

    def run(
        self,
        argv: Sequence[str],
        *,
        log: Path | None = None,
        on_line: OnLine | None = None,
    ) -> RunResult:
        api = self._client.api
        exec_id = api.exec_create(
            self._container.id,
            list(argv),
            stdout=True,
            stderr=True,
            workdir=str(self._spec.workdir),
            user=self._spec.user or "",
        )["Id"]
        output = _collect(api.exec_start(exec_id, stream=True), log,
                          LineFeed(on_line) if on_line else None)
        code = api.exec_inspect(exec_id)["ExitCode"]
        return RunResult(tuple(argv), int(code if code is not None else -1), output)


def _collect(chunks: Iterator[bytes], log: Path | None, lines: LineFeed | None) -> str:
    """Decode the output stream; append it to ``log`` (keeping the tail) or keep it all;
    hand each line to ``lines`` once it is in the log."""
    with ExitStack() as stack:
        handle = (io.TextIOWrapper(stack.enter_context(files.open_for_writing(log, append=True)),
                                   encoding="utf-8") if log else None)
        return _feed(chunks, handle, lines)


def _feed(chunks: Iterator[bytes], handle: io.TextIOWrapper | None,
          lines: LineFeed | None) -> str:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    kept = ""
    try:
        for chunk in chunks:
            text = decoder.decode(chunk)
            if handle:
                handle.write(text)
                handle.flush()  # so `tail -f build.log` follows the build
                kept = (kept + text)[-TAIL_CHARS:]
            else:
                kept += text
            if lines:
                lines.feed(text)
        rest = decoder.decode(b"", final=True)
        kept += rest
        if handle:
            handle.write(rest)
        if lines:
            lines.feed(rest)
            lines.close()
    finally:
        if handle:
            handle.flush()
            handle.detach()  # the layer's handle is closed by its own context
    return kept


class DockerBackend:
    """``ContainerBackend`` for a local or remote (``DOCKER_HOST``) Docker engine."""

    name = "docker"

    def __init__(self) -> None:
        self._client: Any = None

    def _connect(self) -> Any:
        if self._client is None:
            self._client = connect()
        return self._client

    def check_available(self) -> None:
        if _socket_path() is None:
            self._connect()
            return
        try:
            status, _ = _get("/_ping")
        except OSError as exc:
            raise _unavailable(exc) from exc
        if status != 200:
            raise _unavailable(RuntimeError(f"GET /_ping answered HTTP {status}"))

    def image_info(self, image: str) -> ImageInfo | None:
        if _socket_path() is not None:
            try:
                status, body = _get(f"/images/{urllib.parse.quote(image, safe='/:@')}/json")
            except OSError as exc:
                raise _unavailable(exc) from exc
            if status == 404:
                return None
            if status == 200:
                return ImageInfo(name=image, id=str(json.loads(body)["Id"]))
        return self._image_info_sdk(image)

    def _image_info_sdk(self, image: str) -> ImageInfo | None:
        import docker.errors  # type: ignore[import-untyped]

        try:
            found = self._connect().images.get(image)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            if exc.status_code == 404:
                return None
            raise _unavailable(exc) from exc
        return ImageInfo(name=image, id=str(found.id))

    @contextmanager
    def session(self, spec: ContainerSpec) -> Iterator[DockerSession]:
        client = self._connect()
        container = _start(client, spec)
        console.verbose(f"container {container.short_id}: {spec.describe()}")
        try:
            yield DockerSession(client, container, spec)
        except BaseException:
            if os.environ.get(KEEP_CONTAINER_ENV) == "1":
                console.warn(
                    f"kept container {container.id[:12]} ({KEEP_CONTAINER_ENV}=1): "
                    f"docker exec -it {container.id[:12]} bash; "
                    f"docker rm -f {container.id[:12]} when done"
                )
                raise
            _remove(container)
            raise
        _remove(container)


def _start(client: Any, spec: ContainerSpec) -> Any:
    import docker.errors
    import docker.types  # type: ignore[import-untyped]

    mounts = [
        docker.types.Mount(str(m.target), str(m.source), type="bind", read_only=m.read_only)
        for m in spec.mounts
    ]
    kwargs: dict[str, Any] = {}
    if spec.cpus:
        kwargs["nano_cpus"] = int(spec.cpus * 1e9)
    if spec.memory:
        kwargs["mem_limit"] = spec.memory
    try:
        return client.containers.run(
            spec.image,
            ["sleep", "infinity"],
            detach=True,
            init=True,
            user=spec.user or None,
            network_mode=spec.network,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            privileged=False,
            environment=dict(spec.env),
            mounts=mounts,
            working_dir=str(spec.workdir),
            labels={CONTAINER_LABEL: "1"},
            **kwargs,
        )
    except docker.errors.APIError as exc:
        raise BuildError(
            f"could not start a container from {spec.image}: {exc.explanation or exc}",
            details=spec.describe(),
        ) from exc
    except docker.errors.DockerException as exc:  # refused by docker-py before the engine
        raise BuildError(
            f"could not start a container from {spec.image}: {exc}",
            details=spec.describe(),
        ) from exc


def _remove(container: Any) -> None:
    import docker.errors

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        console.warn(f"could not remove container {container.id[:12]}: {exc}")
