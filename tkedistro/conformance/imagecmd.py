"""``tkedistro conformance images RELEASE [--push REGISTRY] [--serve]``: the image set for
air-gapped clusters, as sonobuoy's ``images push`` offers, built from the distro's own tree."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from tkedistro.conformance.offline import OfflineImages, prepare_images
from tkedistro.conformance.pipeline import registry_dir
from tkedistro.core import console
from tkedistro.core.workspace import Workspace
from tkedistro.engine.engines import Engines
from tkedistro.engine.registry import LocalRegistry
from tkedistro.model.manifest import load_release


def conformance_images(ws: Workspace, release: str, engines: Engines, *,
                       push: str | None = None, serve: bool = False,
                       on_ready: Callable[[OfflineImages], None] | None = None) -> OfflineImages:
    """Build and push the set; with ``serve``, call ``on_ready`` and keep the local registry
    up until Ctrl-C (then return normally)."""
    manifest = load_release(ws, release)
    if push is not None:
        return prepare_images(ws, release, manifest, push, engines=engines)
    with LocalRegistry(registry_dir(ws)) as registry:
        result = prepare_images(ws, release, manifest, registry.address, registry.has,
                                engines=engines, login=registry.login)
        result = dataclasses.replace(result, catalog=tuple(registry.catalog()))
        if serve:
            if on_ready is not None:
                on_ready(result)
            password = registry.write_password()
            console.info(f"serving {registry.url} until Ctrl-C; it asks for user "
                         f"{registry.login.username} and the password in {password} "
                         f"(docker login {registry.address} -u {registry.login.username} "
                         f"--password-stdin < {password})")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                console.info("stopping the registry")
    return result
