"""The ``OciBuilder`` on buildah: the only module that runs ``buildah``.

Its storage (images, working containers, manifest lists) lives in a folder the caller passes
(the cache's ``oci/``), with the ``vfs`` driver, so it never touches the host's containers
storage and works as root and rootless alike. Nothing here runs a command inside an image
(no ``buildah run``), so no runtime or network is needed. Every failure is an ``ImageError``
naming the command; a missing ``buildah`` says how to install it.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from tkedistro.core.errors import CommandError, ImageError
from tkedistro.core.runner import run
from tkedistro.engine.protocols import ImageConfig

BUILDAH = "buildah"
INSTALL_HINT = "install buildah (Debian/Ubuntu: apt-get install buildah)"
SCRATCH = "scratch"


class Buildah:
    """buildah with its storage under ``storage`` (``storage/root``, ``storage/run``)."""

    def __init__(self, storage: Path, executable: str = BUILDAH) -> None:
        self.storage = storage
        self.executable = executable

    def _argv(self, args: tuple[str, ...]) -> list[str]:
        return [self.executable, "--root", str(self.storage / "root"),
                "--runroot", str(self.storage / "run"), "--storage-driver", "vfs", *args]

    def _run(self, *args: str, check: bool = True) -> str:
        argv = self._argv(args)
        try:
            return run(argv, check=check, die_with_us=True).stdout.strip()
        except CommandError as exc:
            if exc.returncode == 127:
                raise ImageError(f"{self.executable} not found (needed to make the release's "
                                 f"OCI images): {' '.join(argv)}", hint=INSTALL_HINT) from exc
            raise ImageError(f"buildah {args[0]} failed (exit {exc.returncode}): "
                             f"{' '.join(argv)}", details=(exc.stderr or exc.stdout).strip()
                             or None) from exc

    def version(self) -> str:
        return _version(self.executable, self._run("version", "--json"))

    def pull(self, source: str) -> str:
        if source == SCRATCH:
            return SCRATCH
        image_id = self._run("pull", "--quiet", source).splitlines()[-1].strip()
        return image_id if image_id.startswith("sha256:") else "sha256:" + image_id

    def image_labels(self, image: str) -> dict[str, str]:
        if image == SCRATCH:
            return {}
        output = self._run("inspect", "--type", "image", image)
        try:
            labels = json.loads(output)["OCIv1"]["config"].get("Labels") or {}
        except (ValueError, KeyError, TypeError, AttributeError):
            labels = None
        if not isinstance(labels, dict):
            raise ImageError(f"buildah inspect {image} answered something unexpected",
                             details=output[:500])
        return {str(key): str(value) for key, value in labels.items()}

    def from_image(self, image: str) -> str:
        return self._run("from", "--quiet", "--pull-never", image).splitlines()[-1].strip()

    def copy(self, container: str, source: Path, dest: PurePosixPath) -> None:
        self._run("copy", "--quiet", "--chown", "0:0", container, f"{source}/", str(dest))

    def config(self, container: str, config: ImageConfig) -> None:
        args = ["--os", config.os, "--arch", config.arch]
        for key, value in sorted(config.labels.items()):
            args += ["--label", f"{key}={value}"]
        if config.entrypoint:
            args += ["--entrypoint", json.dumps(list(config.entrypoint))]
        if config.user:
            args += ["--user", config.user]
        for key, value in sorted(config.annotations.items()):
            args += ["--annotation", f"{key}={value}"]
        self._run("config", *args, container)

    def commit(self, container: str, layout: Path, tag: str, timestamp: int) -> None:
        self._run("commit", "--quiet", "--timestamp", str(timestamp), "--format", "oci",
                  container, _oci(layout, tag))

    def remove(self, container: str) -> None:
        self._run("rm", container, check=False)

    def manifest_create(self, name: str) -> None:
        self._run("manifest", "create", name)

    def manifest_add(self, name: str, layout: Path, tag: str) -> None:
        self._run("manifest", "add", name, _oci(layout, tag))

    def manifest_push_all(self, name: str, layout: Path, tag: str) -> None:
        self._run("manifest", "push", "--quiet", "--all", "--format", "oci", name,
                  _oci(layout, tag))

    def manifest_remove(self, name: str) -> None:
        self._run("manifest", "rm", name, check=False)


def _oci(layout: Path, tag: str) -> str:
    return f"oci:{layout}:{tag}"


def _version(executable: str, output: str) -> str:
    try:
        return str(json.loads(output)["version"])
    except (ValueError, KeyError, TypeError):
        raise ImageError(f"{executable} version --json answered something unexpected",
                         details=output[:500], hint=INSTALL_HINT) from None
