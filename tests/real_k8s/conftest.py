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
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO
from tkedistro.core.workspace import Workspace

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


_BUILT: set[Path] = set()  # built with the conformance tools in this session


def build_persistent_distro(monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The persistent distro, built with the conformance tools through the CLI (a no-op when
    warm; once a session)."""
    from typer.testing import CliRunner

    from tkedistro.cli.app import app

    root = refresh_persistent_distro(monkeypatch)
    if root not in _BUILT:
        result = CliRunner().invoke(
            app, ["--root", str(root), "build", "1.20", "--with-conformance-tools"])
        assert result.exit_code == 0, result.output
        _BUILT.add(root)
    return Workspace(root=root, cache=PERSIST / "cache")


def cluster_skip_reason() -> str | None:
    """Why a local cluster cannot start here (node containers and their image need root)."""
    if os.geteuid() != 0:
        return "the local cluster needs root"
    return None


@dataclass
class Tool:
    """``python -m tkedistro --root R --cache-dir C ...`` as a user runs it, each in a session
    of its own (so ``kill -9`` can reach everything it started); ``sessions`` lists them."""

    ws: Workspace
    log_dir: Path
    sessions: list[int] = field(default_factory=list)

    def start(self, *args: str) -> tuple[subprocess.Popen[str], Path]:
        """Started with stdout to ``<log>`` and stderr (progress) to ``<log>.err``."""
        log = self.log_dir / f"{len(self.sessions):02d}-{'-'.join(args[:2])}.log"
        argv = [sys.executable, "-m", "tkedistro", "--root", str(self.ws.root),
                "--cache-dir", str(self.ws.cache), *args]
        env = {**os.environ, "PYTHONPATH": str(REPO), "CI": "1"}
        with log.open("w") as out, log.with_suffix(".err").open("w") as err:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=env,
                                    cwd=self.ws.root, start_new_session=True)
        self.sessions.append(proc.pid)
        return proc, log

    def run(self, *args: str, timeout: float = 900) -> Ran:
        proc, log = self.start(*args)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"tkedistro {' '.join(args)} still ran after {timeout:.0f}s:\n"
                        + log.with_suffix(".err").read_text()[-4000:])
        return Ran(args, proc.returncode, log.read_text(), log.with_suffix(".err").read_text())


@dataclass(frozen=True)
class Ran:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str  # progress and errors

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def ok(self) -> Ran:
        assert self.code == 0, f"tkedistro {' '.join(self.args)}: exit {self.code}\n" \
                               + self.stdout[-2000:] + self.stderr[-6000:]
        return self


def cluster_objects(name: str) -> dict[str, list[str]]:
    """What the engine holds with the cluster's label."""
    label = f"label=org.tkedistro.cluster={name}"

    def ls(fmt: str, *argv: str) -> list[str]:
        out = subprocess.run(["docker", *argv, "--filter", label, "--format", fmt],
                             capture_output=True, text=True, check=True).stdout
        return sorted(out.split())

    return {"containers": ls("{{.Names}}", "ps", "-a"), "volumes": ls("{{.Name}}", "volume", "ls"),
            "networks": ls("{{.Name}}", "network", "ls")}


def cgroup_parents(name: str) -> list[str]:
    """``/sys/fs/cgroup/<hierarchy>/<name>`` folders that exist."""
    return sorted(str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{name}") if p.is_dir())


@pytest.fixture(scope="module")
def built_release() -> Workspace:
    """The persistent distro built for both platforms with its artifacts (a no-op when warm);
    the component bases need root (debootstrap), the arm64 smoke needs emulation registered."""
    from tkedistro.engine.emulation import can_run

    if os.geteuid() != 0:
        pytest.skip("the component bases are made with debootstrap (root)")
    able, why = can_run("linux/arm64")
    if not able:
        pytest.fail(f"arm64 emulation is not registered: {why} (make install registers it)")
    with pytest.MonkeyPatch.context() as monkeypatch:
        return build_persistent_distro(monkeypatch)


SHIPPED_IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
                  "pause")


def shipped_digests(output: Path) -> dict[str, dict[str, object]]:
    """``_output/<release>/images/images.json`` by component."""
    import json

    data = json.loads((output / "images" / "images.json").read_text())
    return {e["component"]: e for e in data["images"]}


def assert_ran_shipped_images(record: dict[str, object], output: Path) -> None:
    """A results folder's ``running-images.json``: every shipped image ran, on each node with
    images.json's index digest and the amd64 manifest digest of that index (and the pods'
    imageID the kubelet reports is that index too)."""
    recorded = shipped_digests(output)
    assert (record["ok"], record["missing"]) == (True, []), record
    rows = record["images"]
    assert isinstance(rows, list)
    assert {r["component"] for r in rows} == set(SHIPPED_IMAGES), rows
    for row in rows:
        entry = recorded[row["component"]]
        manifests = entry["manifests"]
        assert isinstance(manifests, dict)
        assert row["index_digest"] == entry["index_digest"], row
        assert (row["platform"], row["manifest_digest"]) == (
            "linux/amd64", manifests["linux/amd64"]), row
        if row["component"] != "pause":
            assert row["pod_image_id"] == entry["index_digest"], row
