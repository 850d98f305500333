"""A ``docker load`` archive of one root filesystem for a given platform.

Docker 20.10 takes only the OS from ``docker import --platform``: the image config keeps the
engine's own architecture, so an arm64 root filesystem imported on an amd64 host would claim
to be amd64 (and ``docker run --platform linux/arm64`` would refuse it). ``docker load`` takes
the config as written, so a foreign root filesystem goes in that way: the archive ``docker
save`` makes (``manifest.json``, the image config, the root filesystem tar as its one layer),
with ``os``/``architecture``/``variant`` set and the same ``ENV``/``LABEL`` changes an import
takes. Pure file writing; ``docker_images.py`` hands the archive to the engine.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tkedistro.core import files
from tkedistro.core.errors import BuildError

CHUNK = 1 << 20


def platform_fields(platform: str) -> dict[str, str]:
    """``linux/arm/v7`` -> ``{"os": "linux", "architecture": "arm", "variant": "v7"}``."""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise BuildError(f"expected a platform like linux/arm64, got {platform!r}")
    fields = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        fields["variant"] = parts[2]
    return fields


def container_config(changes: Sequence[str]) -> dict[str, Any]:
    """The ``config`` of an image from ``ENV NAME=VALUE`` and ``LABEL KEY=VALUE`` lines (a
    value may be JSON-quoted, as ``debian/rootfs.py`` writes it); other lines are refused."""
    env: list[str] = []
    labels: dict[str, str] = {}
    for line in changes:
        keyword, _, rest = line.partition(" ")
        key, sep, value = rest.strip().partition("=")
        if keyword not in ("ENV", "LABEL") or not sep or not key:
            raise BuildError(f"a foreign-platform import takes ENV NAME=VALUE and LABEL "
                             f"KEY=VALUE changes, not {line!r}")
        if value.startswith('"'):
            value = str(json.loads(value))
        if keyword == "ENV":
            env.append(f"{key}={value}")
        else:
            labels[key] = value
    return {"Env": env, "Labels": labels}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def write_load_archive(rootfs_tar: Path, dest: Path, ref: str, platform: str,
                       changes: Sequence[str] = ()) -> None:
    """Write to ``dest`` the ``docker load`` archive of ``rootfs_tar`` as image ``ref``
    (``name:tag``) for ``platform`` (never through a symlink at ``dest``: exit 3)."""
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    config = {**platform_fields(platform), "created": created,
              "config": container_config(changes),
              "rootfs": {"type": "layers", "diff_ids": [_sha256(rootfs_tar)]},
              "history": [{"created": created, "created_by": f"rootfs {rootfs_tar.name}"}]}
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": ["layer/layer.tar"]}]
    with files.open_for_writing(dest) as handle, tarfile.open(fileobj=handle, mode="w") as tar:
        _add_bytes(tar, config_name, config_bytes)
        tar.add(rootfs_tar, arcname="layer/layer.tar", recursive=False)
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
