"""The local cluster's pure parts: host checks, config files, image archives, suite argv."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import pytest

from tkedistro.conformance import cluster, hostcheck
from tkedistro.conformance.suite import SuiteRun, suite_argv
from tkedistro.core.errors import ClusterError


def test_refuses_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostcheck.os, "geteuid", lambda: 1000)
    with pytest.raises(ClusterError) as err:
        hostcheck.require_root()
    assert err.value.exit_code == 16
    assert err.value.message.startswith("the local conformance cluster needs root")
    assert "--kubeconfig PATH" in (err.value.hint or "")


def test_missing_host_packages_and_binaries_in_one_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(hostcheck.os, "geteuid", lambda: 0)
    monkeypatch.setattr(hostcheck.shutil, "which",
                        lambda p: None if p in ("etcd", "conntrack") else f"/usr/bin/{p}")
    monkeypatch.setattr(hostcheck, "find_cni_dir", lambda: None)
    (tmp_path / "kubectl").write_text("")
    (tmp_path / "kubectl").chmod(0o755)
    with pytest.raises(ClusterError) as err:
        hostcheck.require_host(tmp_path, ("kubectl", "kubelet"))
    assert err.value.message == (
        "host packages missing: conntrack, containernetworking-plugins, etcd-server; "
        f"built binaries missing in {tmp_path}: kubelet"
    )
    assert (err.value.hint or "").startswith(
        "apt-get install -y conntrack containernetworking-plugins etcd-server"
    )


def _spec(tmp_path: Path) -> cluster.ClusterSpec:
    return cluster.ClusterSpec(bin_dir=tmp_path / "bin", root=tmp_path / "c", address="192.0.2.2")


def test_containerd_is_a_separate_instance_under_the_cluster_dir(tmp_path: Path) -> None:
    text = cluster.containerd_config(_spec(tmp_path), Path("/usr/lib/cni"))
    assert f'address = "{tmp_path}/c/containerd/containerd.sock"' in text
    assert f'root = "{tmp_path}/c/containerd/root"' in text
    assert 'sandbox_image = "k8s.gcr.io/pause:3.2"' in text
    assert "/run/containerd" not in text and "/var/lib/containerd" not in text


def test_cni_bridge_keeps_its_state_in_the_cluster_dir(tmp_path: Path) -> None:
    conf = json.loads(cluster.cni_config(_spec(tmp_path)))
    bridge = conf["plugins"][0]
    assert bridge["bridge"] == cluster.BRIDGE
    assert bridge["ipam"]["dataDir"] == f"{tmp_path}/c/cni/ipam"


def test_apiserver_advertises_the_host_address(tmp_path: Path) -> None:
    argv = cluster.apiserver_argv(_spec(tmp_path))
    assert "--advertise-address=192.0.2.2" in argv
    assert "--authorization-mode=Node,RBAC" in argv


def test_suite_argv_focus_and_skip(tmp_path: Path) -> None:
    run = SuiteRun(e2e_test=tmp_path / "e2e.test", kubectl=tmp_path / "kubectl",
                   kubeconfig=tmp_path / "kc", report_dir=tmp_path / "out", skip=r"\[Serial\]")
    argv = suite_argv(run)
    assert argv[0] == str(tmp_path / "e2e.test")
    assert r"--ginkgo.focus=\[Conformance\]" in argv
    assert r"--ginkgo.skip=\[Serial\]" in argv
    assert f"--report-dir={tmp_path / 'out'}" in argv


def test_supervisor_stops_services_and_their_children(tmp_path: Path) -> None:
    from tkedistro.conformance.processes import Supervisor, pids_matching

    marker = f"{tmp_path}/marker"
    sup = Supervisor(tmp_path / "logs")
    child = f"{shlex.quote(sys.executable)} -c 'import time; time.sleep(300)' {marker}"
    sup.start("parent", ["sh", "-c", f"{child} & {child} & wait"])
    sup.start("quitter", ["sh", "-c", "echo bye; exit 3"])
    for _ in range(200):
        if len(pids_matching(marker)) >= 2 and not sup.services[1].alive():
            break
        time.sleep(0.1)
    with pytest.raises(ClusterError, match="quitter exited with code 3"):
        sup.check_alive()
    sup.stop_all()
    assert [p for p in pids_matching(marker) if Path(f"/proc/{p}").exists()] == []
    assert (tmp_path / "logs" / "quitter.log").read_text() == "bye\n"
