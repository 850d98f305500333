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


@pytest.fixture(scope="session")
def k8s_upstream() -> Path:
    """The bare fixture repository (made by the project's script when missing)."""
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
