"""The local cluster's pure parts: host checks, config files, image archives, suite argv."""

from __future__ import annotations

import json
import shlex
import sys
import tarfile
import time
from pathlib import Path, PurePosixPath

import pytest

from tkedistro.conformance import cluster, hostcheck, images
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


def test_image_archive_is_docker_save_layout(tmp_path: Path) -> None:
    binary = tmp_path / "pause"
    binary.write_bytes(b"\x7fELF fake")
    dest = tmp_path / "pause.tar"
    images.write_archive(images.pause_plan("k8s.gcr.io/pause:3.2", binary), dest)
    with tarfile.open(dest) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert manifest[0]["RepoTags"] == ["k8s.gcr.io/pause:3.2"]
        config = json.load(tar.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        assert config["config"]["Entrypoint"] == ["/pause"]
        layer = tar.extractfile("layer/layer.tar")
        assert layer is not None
        with tarfile.open(fileobj=layer) as inner:
            assert inner.getnames() == ["pause"]
            assert inner.extractfile("pause").read() == b"\x7fELF fake"  # type: ignore[union-attr]


def test_ldd_output_gives_libraries_and_loader_by_lookup_path() -> None:
    text = ("\tlinux-vdso.so.1 (0x00007ffc)\n"
            "\tlibcurl.so.4 => /lib/x86_64-linux-gnu/libcurl.so.4 (0x00007f01)\n"
            "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f02)\n"
            "\t/lib64/ld-linux-x86-64.so.2 (0x00007f03)\n")
    assert images.parse_ldd(text) == [PurePosixPath("/lib/x86_64-linux-gnu/libcurl.so.4"),
                                      PurePosixPath("/lib/x86_64-linux-gnu/libc.so.6"),
                                      PurePosixPath("/lib64/ld-linux-x86-64.so.2")]


def test_only_buildable_images_are_planned(tmp_path: Path) -> None:
    expected = ["k8s.gcr.io/pause:3.2", "docker.io/library/nginx:1.14-alpine",
                "gcr.io/k8s-authenticated-test/agnhost:2.6"]
    plans = images.plans(expected, {"pause": tmp_path / "pause"}, tmp_path)
    assert [p.name for p in plans] == ["k8s.gcr.io/pause:3.2"]
    assert images.short_name("k8s.gcr.io/e2e-test-images/agnhost:2.21") == "agnhost"
    assert plans[0].files[0].inside == PurePosixPath("/pause")


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
