"""``ImageEngine`` on the Docker engine (docker SDK): build, import, tag, push, pull, remove.

Beside ``docker.py`` (containers) and, like it, one of the only modules that import
``docker``. No SDK object leaves this module: callers get ``BuiltImage`` values, digests and
``BuildError``s that carry the engine's own words. Registries on 127.0.0.0/8 are plain HTTP to
the engine, so a ``LocalRegistry`` needs no configuration of the daemon.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tkedistro.core import console, files
from tkedistro.core.errors import BuildError
from tkedistro.engine.docker import connect
from tkedistro.engine.docker_archive import write_load_archive
from tkedistro.engine.protocols import BuiltImage, RegistryLogin
from tkedistro.model.refs import parse_image_ref

LOG_TAIL_LINES = 40
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def _auth(login: RegistryLogin | None) -> dict[str, str] | None:
    """The SDK's ``auth_config`` for ``login`` (None: the engine's own credentials)."""
    return None if login is None else {"username": login.username, "password": login.password}


def _tail(lines: Sequence[str], count: int = LOG_TAIL_LINES) -> str:
    return "".join(lines[-count:]).rstrip()


class DockerImages:
    """``ImageEngine`` for the local (or ``DOCKER_HOST``) Docker engine."""

    name = "docker"

    def __init__(self) -> None:
        self._client: Any = None

    @property
    def _api(self) -> Any:
        if self._client is None:
            self._client = connect()
        return self._client.api

    def _inspect(self, ref: str) -> dict[str, Any] | None:
        import docker.errors  # type: ignore[import-untyped]

        try:
            found: dict[str, Any] = self._api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            if exc.status_code == 404:
                return None
            raise BuildError(f"could not inspect image {ref}: {exc.explanation or exc}") from exc
        return found

    def _built(self, ref: str) -> BuiltImage:
        found = self._inspect(ref)
        if found is None:
            raise BuildError(f"the engine reports no image {ref} right after making it")
        labels = (found.get("Config") or {}).get("Labels") or {}
        return BuiltImage(ref=ref, id=str(found["Id"]), labels=dict(labels))

    def labels(self, ref: str) -> Mapping[str, str] | None:
        found = self._inspect(ref)
        if found is None:
            return None
        return dict((found.get("Config") or {}).get("Labels") or {})

    def build(self, context: Path, tag: str, labels: Mapping[str, str],
              dockerfile: str = "Dockerfile") -> BuiltImage:
        import docker.errors

        console.verbose(f"docker build {context} -t {tag} (network none)")
        log: list[str] = []
        try:
            stream = self._api.build(
                path=str(context), tag=tag, labels=dict(labels), dockerfile=dockerfile,
                rm=True, forcerm=True, pull=False, network_mode="none", decode=True)
            for entry in stream:
                log.append(str(entry.get("stream") or ""))
                if "error" in entry:
                    raise BuildError(f"docker build of {tag} from {context} failed: "
                                     f"{str(entry['error']).strip()}", details=_tail(log))
        except docker.errors.APIError as exc:
            raise BuildError(f"docker build of {tag} from {context} failed: "
                             f"{exc.explanation or exc}", details=_tail(log)) from exc
        return self._built(tag)

    def import_rootfs(self, rootfs_tar: Path, tag: str, changes: Sequence[str] = (),
                      platform: str = "") -> BuiltImage:
        import docker.errors

        parsed = parse_image_ref(tag)
        repo, version = parsed.repository, parsed.version
        ref = tag if version else f"{tag}:latest"
        if platform:
            return self._load_rootfs(rootfs_tar, ref, changes, platform)
        console.verbose(f"docker import {rootfs_tar} {tag}")
        try:
            with rootfs_tar.open("rb") as handle:
                self._api.import_image(src=handle, repository=repo, tag=version or "latest",
                                       changes=list(changes) or None)
        except (docker.errors.APIError, OSError) as exc:
            reason = getattr(exc, "explanation", None) or exc
            raise BuildError(f"docker import of {rootfs_tar} as {tag} failed: {reason}") from exc
        return self._built(ref)

    def _load_rootfs(self, rootfs_tar: Path, ref: str, changes: Sequence[str],
                     platform: str) -> BuiltImage:
        """The import for ``platform``: a ``docker load`` archive whose config names it (the
        engine's import keeps its own architecture; ``engine/docker_archive.py``)."""
        import docker.errors

        archive = rootfs_tar.with_name(rootfs_tar.name + ".load.tar")
        console.verbose(f"docker load {rootfs_tar} as {ref} ({platform})")
        log: list[str] = []
        try:
            write_load_archive(rootfs_tar, archive, ref, platform, changes)
            with archive.open("rb") as handle:
                for entry in self._api.load_image(handle):
                    log.append(str(entry.get("stream") or entry.get("status") or ""))
                    if "error" in entry:
                        raise BuildError(f"docker load of {rootfs_tar} as {ref} failed: "
                                         f"{str(entry['error']).strip()}", details=_tail(log))
        except (docker.errors.APIError, OSError) as exc:
            reason = getattr(exc, "explanation", None) or exc
            raise BuildError(f"docker load of {rootfs_tar} as {ref} failed: {reason}") from exc
        finally:
            files.remove(archive)
        return self._built(ref)

    def tag(self, ref: str, new_ref: str) -> None:
        import docker.errors

        repo, version = _repository_version(new_ref)
        try:
            self._api.tag(ref, repo, version or "latest")
        except docker.errors.APIError as exc:
            raise BuildError(f"could not tag {ref} as {new_ref}: "
                             f"{exc.explanation or exc}") from exc

    def push(self, ref: str, login: RegistryLogin | None = None) -> str:
        import docker.errors

        repo, version = _repository_version(ref)
        console.verbose(f"docker push {ref}")
        try:
            stream = self._api.push(repo, tag=version or "latest", stream=True, decode=True,
                                    auth_config=_auth(login))
            digest = _push_digest(ref, stream)
        except docker.errors.APIError as exc:
            raise BuildError(f"docker push {ref} failed: {exc.explanation or exc}") from exc
        return digest

    def pull(self, ref: str, login: RegistryLogin | None = None) -> BuiltImage:
        import docker.errors

        repo, version = _repository_version(ref)
        console.verbose(f"docker pull {ref}")
        try:
            stream = self._api.pull(repo, tag=version or "latest", stream=True, decode=True,
                                    auth_config=_auth(login))
            for _ in _drain(f"docker pull {ref}", stream):
                pass
        except docker.errors.APIError as exc:
            raise BuildError(f"docker pull {ref} failed: {exc.explanation or exc}") from exc
        return self._built(ref if version else f"{ref}:latest")

    def remove(self, ref: str) -> None:
        import docker.errors

        try:
            self._api.remove_image(ref, force=True)
        except docker.errors.ImageNotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code == 404:
                return
            raise BuildError(f"could not remove image {ref}: {exc.explanation or exc}") from exc


def _drain(what: str, stream: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Raise ``BuildError`` on the first ``error`` entry of a push/pull progress stream."""
    seen: list[str] = []
    for entry in stream:
        if entry.get("status"):
            seen.append(f"{entry.get('id', '')} {entry['status']}".strip() + "\n")
        if "error" in entry:
            detail = (entry.get("errorDetail") or {}).get("message") or entry["error"]
            raise BuildError(f"{what} failed: {str(detail).strip()}", details=_tail(seen))
        yield entry


def _push_digest(ref: str, stream: Iterable[Mapping[str, Any]]) -> str:
    """The manifest digest a push reports (its ``aux`` entry, else its last status line)."""
    digest = ""
    for entry in _drain(f"docker push {ref}", stream):
        aux = entry.get("aux") or {}
        if aux.get("Digest"):
            digest = str(aux["Digest"])
        elif not digest and (found := _DIGEST.search(str(entry.get("status") or ""))):
            digest = found.group(1)
    if not digest:
        raise BuildError(f"docker push {ref} reported no digest")
    return digest


def _repository_version(ref: str) -> tuple[str, str]:
    """(name, digest or tag) of ``ref``, as the Docker SDK takes them apart."""
    parsed = parse_image_ref(ref)
    return parsed.repository, parsed.version
