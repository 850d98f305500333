"""An ``Engines`` bundle for tests: the fakes a test gives, and for the rest an engine that
fails the test when it is used (so a test says which engines its code path may touch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tkedistro.engine.engines import Engines


class Unused:
    """An engine the test did not expect to be used."""

    def __init__(self, role: str) -> None:
        self.role = role

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the test's {self.role} engine was used ({name})")


def fake_engines(containers: Any = None, images: Any = None, nodes: Any = None,
                 oci: Any = None) -> Engines:
    def no_oci(storage: Path) -> Any:
        raise AssertionError(f"the test's OCI builder was used (storage {storage})")

    return Engines(containers=containers or Unused("container"), images=images or
                   Unused("image"), nodes=nodes or Unused("node"), oci=oci or no_oci)


def use_engines(monkeypatch: Any, **fakes: Any) -> Engines:
    """The CLI's engines for this test: ``fake_engines(**fakes)`` instead of Docker's."""
    from tkedistro.engine import engines as engines_mod

    made = fake_engines(**fakes)
    monkeypatch.setattr(engines_mod, "docker_engines", lambda: made)
    return made
