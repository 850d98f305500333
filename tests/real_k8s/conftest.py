"""real_k8s tier fixtures: a local stand-in for github.com/kubernetes/kubernetes at v1.20.2.

``scripts/make-k8s-upstream.sh`` builds it once from Debian's copy of the upstream archive
(one commit with fixed identity and dates, so its SHA is ``FIXTURE_COMMIT`` everywhere).
Its folder is resolved at import time, before the autouse fixture of tests/conftest.py
points HOME and the cache at a temporary folder: ``$TKEDISTRO_FIXTURES``, else
``~/.cache/tkedistro/fixtures``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

FIXTURE_COMMIT = "84fe13fd02837506d4ca9e4dbfcd087bb2f26e17"
FIXTURE_TAG = "v1.20.2"
FIXTURES = Path(
    os.environ.get("TKEDISTRO_FIXTURES") or Path("~/.cache/tkedistro/fixtures").expanduser()
).resolve()


def ensure_k8s_upstream() -> Path:
    """The bare fixture repository, made by the project's script when missing."""
    dest = FIXTURES / "kubernetes-v1.20.2.git"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    made = subprocess.run([str(REPO / "scripts" / "make-k8s-upstream.sh"), str(dest)],
                          env=env, capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.fail(f"scripts/make-k8s-upstream.sh failed:\n{made.stderr}")
    found = subprocess.run(["git", "rev-parse", f"{FIXTURE_TAG}^{{commit}}"], cwd=dest, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert found == FIXTURE_COMMIT, f"{dest}: {FIXTURE_TAG} is {found}, expected {FIXTURE_COMMIT}"
    return dest


@pytest.fixture(scope="session")
def k8s_upstream() -> Path:
    return ensure_k8s_upstream()


def copy_distro(dest: Path, upstream: Path) -> Path:
    """This repo's releases/1.20.yaml and patches/ under ``dest``, re-pinned to ``upstream``."""
    (dest / "releases").mkdir(parents=True)
    shutil.copytree(REPO / "patches", dest / "patches")
    text = (REPO / "releases" / "1.20.yaml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(  url:).*$", rf"\1 {upstream.as_uri()}", text)
    text = re.sub(r"(?m)^(  tag:).*$", rf"\1 {FIXTURE_TAG}", text)
    text = re.sub(r"(?m)^(  commit:).*$", rf"\1 {FIXTURE_COMMIT}", text)
    (dest / "releases" / "1.20.yaml").write_text(text, encoding="utf-8")
    return dest


# --- the persistent distro of the build tier ---------------------------------------------
# tests/real_k8s/test_build_real.py keeps a copy of this distro repo and the tkedistro cache
# under /var/tmp/tkedistro-realk8s, so the prepared tree and Kubernetes' Go cache in
# ``_src/1.20/_output`` survive between runs. Tests that need really built binaries build
# there through the tool: a warm second build is a no-op.
PERSIST = Path(os.environ.get("TKEDISTRO_REALK8S_DIR", "/var/tmp/tkedistro-realk8s"))


def refresh_persistent_distro(monkeypatch: pytest.MonkeyPatch) -> Path:
    """``PERSIST/distro`` with this repo's current manifest and series, re-pinned to the local
    fixture; the cache and upstream variables point at the persistent ones."""
    from tkedistro.model.manifest import update_pin

    upstream = ensure_k8s_upstream()
    root = PERSIST / "distro"
    for folder in ("releases", "patches"):
        shutil.rmtree(root / folder, ignore_errors=True)
        shutil.copytree(REPO / folder, root / folder)
    update_pin(root / "releases" / "1.20.yaml", tag=FIXTURE_TAG, commit=FIXTURE_COMMIT)
    monkeypatch.setenv("TKEDISTRO_CACHE", str(PERSIST / "cache"))
    monkeypatch.setenv("TKEDISTRO_UPSTREAM", upstream.as_uri())
    return root
