"""The suite's own redirect to a local registry: the ``KUBE_TEST_REPO_LIST`` file.

``e2e.test`` reads the YAML file named by ``KUBE_TEST_REPO_LIST`` over its registry defaults
(``initReg()`` in ``test/utils/image/manifest.go``; keys as in ``Catalog.registries``). Each
key is redirected to ``<registry>/<default value>``: the original host stays a path segment
(``127.0.0.1:5000/docker.io/library/busybox:1.29``), so images of different hosts never
collide and the local name says where the image came from.

Every key is redirected, also those no needed image uses: harmless, and the suite then never
reaches for the internet, so a spec outside the catalogue fails fast on a local miss. The keys
whose pulls specs expect to fail (``Catalog`` marks them ``expect_failure``) keep their
default value, so those pulls still fail.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from ruamel.yaml import YAML

from tkedistro.conformance.catalog import Catalog, expect_failure_key
from tkedistro.core.errors import ClusterError
from tkedistro.core.files import write_atomic


def repo_list(catalog: Catalog, registry: str) -> dict[str, str]:
    """The KUBE_TEST_REPO_LIST mapping: yaml key -> where the suite pulls that registry from."""
    host = _registry(registry)
    return {key: default if expect_failure_key(key) else f"{host}/{default}"
            for key, default in sorted(catalog.registries.items())}


def redirect(ref: str, catalog: Catalog, registry: str) -> str:
    """The name ``ref`` (a default image reference) has in the local registry; unchanged for
    an image of an expect-failure registry."""
    host = _registry(registry)
    keys = [k for k, v in catalog.registries.items() if ref.startswith(v + "/")]
    if not keys:
        raise ClusterError(f"{ref}: no registry of the suite's image manifest serves this image",
                           hint="known registries: " + ", ".join(
                               sorted(catalog.registries.values())))
    key = max(keys, key=lambda k: len(catalog.registries[k]))
    return ref if expect_failure_key(key) else f"{host}/{ref}"


def render_repo_list(mapping: Mapping[str, str]) -> bytes:
    """The YAML text of ``mapping`` (one ``key: value`` line each, in key order)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = io.BytesIO()
    yaml.dump(dict(sorted(mapping.items())), out)
    return out.getvalue()


def write_repo_list(path: Path, mapping: Mapping[str, str]) -> Path:
    """Write the KUBE_TEST_REPO_LIST file atomically; returns ``path``."""
    write_atomic(path, render_repo_list(mapping))
    return path


def _registry(registry: str) -> str:
    host = registry.strip().rstrip("/")
    if not host or "://" in host or any(c.isspace() for c in host):
        raise ClusterError(f"{registry!r}: expected a registry address such as 127.0.0.1:5000 "
                           "(host[:port][/path], no scheme)")
    return host
