"""real_k8s tier: the 1.20 patch series on the real Kubernetes v1.20.2 tree.

``tkedistro source 1.20`` applies ``patches/1.20`` to the local v1.20.2 fixture in the tier's
persistent distro (tests/real_k8s/conftest.py), then, in the offline builder image (Go 1.15),
``go test`` runs for every package the series touches, ``tkedistro build 1.20`` builds the
components, and the patched kube-controller-manager is checked against etcd and the built
kube-apiserver. Kubernetes' Go cache in the tree survives between runs: the first run takes
tens of minutes on 2 cores, later ones a few.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from tests.conftest import REPO
from tests.real_k8s.conftest import PERSIST, refresh_persistent_distro
from tkedistro.cli.app import app

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(7200)]

FIXTURE_COMMIT = "84fe13fd02837506d4ca9e4dbfcd087bb2f26e17"  # scripts/make-k8s-upstream.sh
BUILDER = "tkedistro/builder:go1.15-bullseye"

# Packages whose code or tests the series changes.
TOUCHED_PACKAGES = [
    "./vendor/k8s.io/controller-manager/app/",  # 0001: /debug/flags/v on kcm
    "./pkg/kubelet/server/",  # 0002: container="POD" for containerd sandboxes
    "./pkg/kubelet/cm/",  # 0003: no implicit kmem accounting
]
# Tests the series adds: each must be run (not silently skipped or filtered out).
NEW_TESTS = [
    "TestDebugFlagsVerbosityHandler",
    "TestDebugFlagsFollowProfiling",
    "TestContainerPrometheusLabels",
    "TestSandboxLabelsMatchAcrossRuntimes",
    "TestCreatedCgroupsLeaveKernelMemoryAccountingOff",
    "TestKubeletMemorySettingsLeaveKernelMemoryAccountingOff",
    "TestExplicitKernelMemoryLimitStillApplied",
]
COMPONENTS = ["cmd/kube-controller-manager", "cmd/kubelet", "cmd/kube-apiserver"]


def _git(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_COMMITTER_NAME="tkedistro test", GIT_COMMITTER_EMAIL="test@example.invalid",
               GIT_CONFIG_NOSYSTEM="1")
    done = subprocess.run(["git", "-c", "safe.directory=*", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _series() -> list[Path]:
    manifest = YAML(typ="safe").load((REPO / "releases" / "1.20.yaml").read_text(encoding="utf-8"))
    files = [REPO / entry["file"] for entry in manifest.get("patches") or []]
    assert files, "releases/1.20.yaml lists no patches"
    return files


def _go_test(tree: Path, log: Path, *packages: str) -> tuple[int, str]:
    """``go test -v -count=1 PACKAGES`` in the builder as the tool runs it (``build/gotest.py``,
    what `tkedistro bisect --go-test` runs): the invoking user, no network, the tree at the
    path the build uses, so Kubernetes' Go cache in ``_output/local/go/cache`` is shared."""
    from tkedistro.build.gotest import run_go_test
    from tkedistro.core.workspace import Workspace
    from tkedistro.engine.engines import docker_engines

    ws = Workspace(root=tree.parent.parent, cache=PERSIST / "cache")
    done = run_go_test(docker_engines().containers, BUILDER, ws, tree, packages, log,
                       verbose=True, count=1)
    return done.exit_code, log.read_text(errors="replace")


@pytest.fixture(scope="module")
def distro() -> Iterator[Path]:
    """The persistent real-tree distro of this tier (shared Go cache with the build tests)."""
    with pytest.MonkeyPatch.context() as mp:
        yield refresh_persistent_distro(mp)


@pytest.fixture(scope="module")
def patched_tree(distro: Path) -> Path:
    """``tkedistro source 1.20``: the series applied on v1.20.2, one commit per patch."""
    result = CliRunner().invoke(app, ["--root", str(distro), "source", "1.20"])
    assert result.exit_code == 0, result.output
    return distro / "_src" / "1.20"


def test_series_applies_in_order_on_v1_20_2(patched_tree: Path) -> None:
    subjects = _git("log", "--format=%s", f"{FIXTURE_COMMIT}..HEAD", "--reverse",
                    cwd=patched_tree).splitlines()
    assert len(subjects) == len(_series())
    assert "/debug/flags/v" in subjects[0]
    assert "POD" in subjects[1]
    assert "kernel memory" in subjects[2]


def test_go_tests_of_touched_packages_pass(patched_tree: Path, tmp_path: Path) -> None:
    code, output = _go_test(patched_tree, tmp_path / "go-test.log", *TOUCHED_PACKAGES)
    assert code == 0, output[-9000:]
    for name in NEW_TESTS:
        assert f"--- PASS: {name} " in output, f"{name} did not run and pass"
    assert "--- FAIL" not in output


@pytest.fixture(scope="module")
def built_bin(distro: Path, patched_tree: Path) -> Path:
    """``tkedistro build 1.20`` (with the conformance tools, as the conformance test builds,
    so a warm run is a no-op): every component, stamped and smoke-checked."""
    result = CliRunner().invoke(
        app, ["--root", str(distro), "build", "1.20", "--with-conformance-tools"])
    assert result.exit_code == 0, result.output
    return distro / "_output" / "1.20" / "bin" / "linux" / "amd64"


def test_affected_components_compile(built_bin: Path) -> None:
    bin_dir = built_bin
    for component in COMPONENTS:
        binary = bin_dir / Path(component).name
        assert binary.is_file(), f"{binary} was not built"
        ran = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             check=False)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert ran.stdout.strip() == "Kubernetes v1.20.2-tke.1"


# --- functional check of 0001 against etcd and the built kube-apiserver -------------------

ADMIN_TOKEN = "series-admin-token"
KCM_TOKEN = "series-kcm-token"
VIEWER_TOKEN = "series-viewer-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _non_loopback_ip() -> str:
    """An address of this machine outside 127/8 (kube-apiserver refuses to advertise loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
            ip = str(s.getsockname()[0])
        except OSError:
            ip = ""
    if not ip or ip.startswith("127."):
        pytest.skip("no non-loopback IPv4 address to advertise")
    return ip


def _request(url: str, method: str = "GET", token: str | None = None,
             body: bytes | None = None) -> tuple[int, str]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(url, data=body, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _wait(url: str, token: str | None, what: str, procs: list[subprocess.Popen[bytes]],
          timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            assert proc.poll() is None, f"{proc.args!r} exited with {proc.returncode}"
        try:
            if _request(url, token=token)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"{what} did not become healthy at {url}")


@pytest.fixture
def control_plane(built_bin: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """etcd + kube-apiserver + the patched kube-controller-manager on 127.0.0.1.

    Yields kcm's secure base URL and its log file; every process is stopped afterwards.
    """
    etcd = shutil.which("etcd")
    if etcd is None or shutil.which("openssl") is None:
        pytest.skip("needs etcd (Debian etcd-server) and openssl")
    pki = tmp_path / "pki"
    pki.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=pki, check=True, capture_output=True)

    ip = _non_loopback_ip()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "2", "-subj", "/CN=series-test-ca")
    (pki / "san.cnf").write_text(f"[req]\ndistinguished_name=dn\n[dn]\n[ext]\n"
                                 f"subjectAltName=IP:127.0.0.1,IP:{ip}\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=kube-apiserver")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.cnf",
            "-extensions", "ext")
    openssl("genrsa", "-out", "sa.key", "2048")
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(f'{ADMIN_TOKEN},admin,1000,"system:masters"\n'
                      f"{KCM_TOKEN},system:kube-controller-manager,1001\n"
                      f"{VIEWER_TOKEN},viewer,1002\n")
    etcd_port, peer_port, api_port, kcm_port = (_free_port() for _ in range(4))
    kubeconfig = tmp_path / "kcm.kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: local\n  cluster:\n    certificate-authority: {pki / 'ca.crt'}\n"
        f"    server: https://127.0.0.1:{api_port}\n"
        f"users:\n- name: kcm\n  user:\n    token: {KCM_TOKEN}\n"
        "contexts:\n- name: local\n  context: {cluster: local, user: kcm}\n"
        "current-context: local\n")

    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *argv: str) -> Path:
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            procs.append(subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                          cwd=tmp_path))
        return log

    try:
        start("etcd", etcd, "--name", "series", "--data-dir", str(tmp_path / "etcd"),
              "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
              "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
              "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
              "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
              "--initial-cluster", f"series=http://127.0.0.1:{peer_port}")
        start("kube-apiserver", str(built_bin / "kube-apiserver"),
              f"--etcd-servers=http://127.0.0.1:{etcd_port}", "--bind-address=127.0.0.1",
              f"--secure-port={api_port}", f"--advertise-address={ip}", "--insecure-port=0",
              f"--tls-cert-file={pki / 'server.crt'}",
              f"--tls-private-key-file={pki / 'server.key'}",
              f"--client-ca-file={pki / 'ca.crt'}", f"--token-auth-file={tokens}",
              "--authorization-mode=RBAC",
              f"--service-account-key-file={pki / 'sa.pub'}",
              f"--service-account-signing-key-file={pki / 'sa.key'}",
              "--service-account-issuer=https://kubernetes.default.svc",
              "--service-cluster-ip-range=10.0.0.0/24")
        _wait(f"https://127.0.0.1:{api_port}/readyz", ADMIN_TOKEN, "kube-apiserver", procs)
        kcm_log = start("kube-controller-manager", str(built_bin / "kube-controller-manager"),
                        f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
                        f"--authorization-kubeconfig={kubeconfig}", "--bind-address=127.0.0.1",
                        f"--secure-port={kcm_port}", "--port=0", f"--cert-dir={tmp_path / 'kcm'}",
                        "--leader-elect=false", "--controllers=namespace,serviceaccount", "--v=2")
        _wait(f"https://127.0.0.1:{kcm_port}/healthz", None, "kube-controller-manager", procs)
        yield f"https://127.0.0.1:{kcm_port}", kcm_log
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _v5_lines(log: Path) -> int:
    """pathrecorder logs how it matched a path at V(5) only."""
    return log.read_text(errors="replace").count('"/healthz" satisfied by exact match')


def test_kcm_debug_flags_v_changes_verbosity_behind_authz(
        control_plane: tuple[str, Path]) -> None:
    kcm, kcm_log = control_plane
    url = f"{kcm}/debug/flags/v"
    assert _request(f"{kcm}/healthz")[0] == 200
    time.sleep(1)
    assert _v5_lines(kcm_log) == 0, "kcm started with --v=2 already logs V(5)"
    # The delegated authn/authz of kcm's secure port applies, as for /debug/pprof: a caller
    # without a token is system:anonymous, which RBAC refuses like a user without rights.
    assert _request(url, "PUT", None, b"5")[0] == 403
    assert _request(url, "PUT", VIEWER_TOKEN, b"5")[0] == 403
    assert _request(f"{kcm}/healthz")[0] == 200
    time.sleep(1)
    assert _v5_lines(kcm_log) == 0, "verbosity changed by a refused request"
    code, body = _request(url, "PUT", ADMIN_TOKEN, b"5")
    assert (code, body.strip()) == (200, "successfully set klog.logging.verbosity to 5")
    assert _request(f"{kcm}/healthz")[0] == 200
    deadline = time.monotonic() + 30
    while _v5_lines(kcm_log) == 0:
        assert time.monotonic() < deadline, "no V(5) log line after raising the verbosity to 5"
        time.sleep(1)
    assert _request(url, "PUT", ADMIN_TOKEN, b"loud")[0] == 400
