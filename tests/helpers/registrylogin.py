"""Log in to a ``LocalRegistry`` the way a user logs in to a registry of their own, for the
tests that use it as a stand-in for one (``images --push``): skopeo's auth file
(``REGISTRY_AUTH_FILE``) and the docker CLI's config (``DOCKER_CONFIG``)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tkedistro.engine.registry import LocalRegistry


def log_in(registry: LocalRegistry, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = base64.b64encode(f"{registry.login.username}:{registry.login.password}".encode())
    auths = json.dumps({"auths": {registry.address: {"auth": token.decode()}}})
    (folder / "docker").mkdir(parents=True, exist_ok=True)
    (folder / "docker" / "config.json").write_text(auths)
    (folder / "auth.json").write_text(auths)
    monkeypatch.setenv("DOCKER_CONFIG", str(folder / "docker"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(folder / "auth.json"))
