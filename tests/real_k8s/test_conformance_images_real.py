"""``tkedistro conformance images 1.20`` on the real tree, through the CLI: every image the
conformance specs need is built (or reused), pushed to the local registry started from Debian's
``docker-registry``, listed by its catalogue and pullable by digest; a second run rebuilds
nothing; the KUBE_TEST_REPO_LIST file it writes makes the real e2e.test name exactly those
images.

Uses the persistent distro of the build tier (conftest.py); ``tkedistro build 1.20
--with-conformance-tools`` is a no-op there when warm. Needs root (the Debian base is
debootstrapped the first time), Docker, the builder image and docker-registry (``make install``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.registrylogin import log_in
from tests.real_k8s.conftest import PERSIST, refresh_persistent_distro
from tkedistro.cli.app import app
from tkedistro.engine.docker_images import DockerImages
from tkedistro.engine.registry import LocalRegistry
from tkedistro.images.upstream.imageset import LOCAL_PREFIX

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(3600)]

# what a full v1.20.2 run pulls most (agnhost, busybox, httpd), the sandbox (pause) and the
# aggregator's pair (sample-apiserver, etcd): each must be in the set
MUST_HAVE = ("k8s.gcr.io/e2e-test-images/agnhost:2.21", "docker.io/library/busybox:1.29",
             "docker.io/library/httpd:2.4.38-alpine", "k8s.gcr.io/pause:3.2",
             "gcr.io/kubernetes-e2e-test-images/sample-apiserver:1.17", "k8s.gcr.io/etcd:3.4.13-0",
             "gcr.io/kubernetes-e2e-test-images/jessie-dnsutils:1.0")


def _images(root: Path) -> dict[str, object]:
    result = CliRunner().invoke(app, ["--root", str(root), "conformance", "images", "1.20",
                                      "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def runs() -> tuple[Path, dict[str, object], dict[str, object]]:
    if os.geteuid() != 0 or shutil.which("docker-registry") is None:
        pytest.skip("needs root and docker-registry (make install)")
    with pytest.MonkeyPatch.context() as monkeypatch:
        root = refresh_persistent_distro(monkeypatch)
        built = CliRunner().invoke(app, ["--root", str(root), "build", "1.20",
                                         "--with-conformance-tools"])
        assert built.exit_code == 0, built.output
        return root, _images(root), _images(root)


def test_every_needed_image_is_in_the_registry_and_nothing_is_missing(
        runs: tuple[Path, dict[str, object], dict[str, object]]) -> None:
    _, first, _ = runs
    images = first["images"]
    assert isinstance(images, list)
    refs = {i["ref"] for i in images}
    assert set(MUST_HAVE) <= refs, sorted(refs)
    assert first["missing"] == []
    catalog = set(first["registry_catalog"])  # type: ignore[arg-type]
    registry = str(first["registry"])
    for image in images:
        repo = image["pushed"].removeprefix(registry + "/").rsplit(":", 1)[0]
        assert repo in catalog, (repo, sorted(catalog))
        assert image["digest"].startswith("sha256:")
        assert "at " in image["source"] or "Debian" in image["source"]


def test_a_second_run_rebuilds_nothing(
        runs: tuple[Path, dict[str, object], dict[str, object]]) -> None:
    _, first, second = runs
    assert second["rebuilt"] == 0
    assert [i["digest"] for i in second["images"]] == \
        [i["digest"] for i in first["images"]]  # type: ignore[union-attr]


def test_the_image_pulls_back_by_digest_from_the_local_registry(
        runs: tuple[Path, dict[str, object], dict[str, object]]) -> None:
    _, _, second = runs
    agnhost = next(i for i in second["images"]  # type: ignore[union-attr]
                   if i["ref"].endswith("agnhost:2.21"))
    repo = agnhost["pushed"].split("/", 1)[1].rsplit(":", 1)[0]
    with LocalRegistry(PERSIST / "cache" / "registry") as registry:
        ref = f"{registry.address}/{repo}@{agnhost['digest']}"
        engine = DockerImages()
        engine.remove(ref)
        pulled = engine.pull(ref, registry.login)
        out = subprocess.run(["docker", "run", "--rm", "--network", "none", pulled.id,
                              "--help"], capture_output=True, text=True, timeout=120)
        engine.remove(ref)
    assert "netexec" in out.stdout  # agnhost's subcommands, which the specs run


def test_the_repo_list_makes_the_real_suite_name_those_images(
        runs: tuple[Path, dict[str, object], dict[str, object]]) -> None:
    root, _, second = runs
    e2e = root / "_output/1.20/bin/linux/amd64/e2e.test"
    env = {"PATH": os.environ["PATH"], "KUBE_TEST_REPO_LIST": str(second["repo_list"])}
    listed = set(subprocess.run([str(e2e), "--list-images"], capture_output=True, text=True,
                                env=env, check=True, timeout=120).stdout.split())
    pushed = {str(i["pushed"]) for i in second["images"]}  # type: ignore[union-attr]
    assert pushed <= listed, sorted(pushed - listed)
    assert "invalid.com/invalid/alpine:3.1" in listed  # still meant to fail


def test_push_to_another_registry_writes_a_repo_list_for_it(
        runs: tuple[Path, dict[str, object], dict[str, object]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The air-gapped path: ``--push REGISTRY`` (here a second registry from Debian's package,
    storage kept between runs) gets every image and a repo list naming it."""
    root = runs[0]
    with LocalRegistry(PERSIST / "push-target-registry") as target:
        log_in(target, tmp_path / "login", monkeypatch)  # as to a registry of one's own
        result = CliRunner().invoke(app, ["--root", str(root), "conformance", "images", "1.20",
                                          "--push", target.address, "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["registry"] == target.address
        assert data["images"] and all(target.has(i["pushed"]) for i in data["images"])
    listing = Path(data["repo_list"]).read_text()
    assert f"gcRegistry: {target.address}/k8s.gcr.io\n" in listing
    assert "invalidRegistry: invalid.com/invalid\n" in listing


# the flags kubeadm v1.20's etcd static pod passes (cmd/kubeadm/app/phases/etcd/local.go)
KUBEADM_ETCD_FLAGS = (
    "name", "listen-client-urls", "advertise-client-urls", "listen-peer-urls",
    "initial-advertise-peer-urls", "data-dir", "cert-file", "key-file", "trusted-ca-file",
    "client-cert-auth", "peer-cert-file", "peer-key-file", "peer-trusted-ca-file",
    "peer-client-cert-auth", "snapshot-count", "listen-metrics-urls", "initial-cluster",
    "initial-cluster-state")


def _docker_run(ref: str, *argv: str) -> str:
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, *argv],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def test_etcd_and_pause_run_as_kubeadm_runs_them(
        runs: tuple[Path, dict[str, object], dict[str, object]]) -> None:
    """The conformance etcd (the one the local cluster's kubeadm runs) and pause (made by
    `runs`): etcd takes every flag kubeadm's static pod passes, pause's entrypoint is /pause."""
    etcd = f"{LOCAL_PREFIX}/k8s.gcr.io/etcd:3.4.13-0"
    pause = f"{LOCAL_PREFIX}/k8s.gcr.io/pause:3.2"
    assert DockerImages().labels(etcd) is not None and DockerImages().labels(pause) is not None
    assert _docker_run(etcd, "sh", "-c", "command -v etcd").strip() == "/usr/local/bin/etcd"
    helptext = _docker_run(etcd, "etcd", "--help")
    assert [f for f in KUBEADM_ETCD_FLAGS if f"--{f} " not in helptext] == []
    entry = subprocess.run(["docker", "image", "inspect", "--format",
                            "{{json .Config.Entrypoint}}", pause], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert entry == '["/pause"]'
