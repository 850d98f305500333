"""The cluster DNS responder built from the real v1.20.2 tree answers the way the conformance
DNS specs ask, and a second call rebuilds nothing.

The build runs ``cluster/dns/responder/build.sh`` in the builder container with the persistent
tree (``/var/tmp/tkedistro-realk8s/distro/_src/1.20``, or ``TKEDISTRO_IMAGES_TREE``) mounted
read-only: gofmt, ``go vet``, the Go unit tests (record logic on client-go's fake clientset and
real informers, UDP truncation and TCP, forwarding) and the build. Then the image runs in
``--static`` test mode and ``dig`` (in the image, from the Debian base) asks it the spec's
questions over UDP and TCP, with ``+search`` as the probe pods do; the container runs with the
Deployment's restrictions (read-only root, only ``NET_BIND_SERVICE``).
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.real_k8s.conftest import PERSIST, build_persistent_distro
from tkedistro.cluster.dns import image as dnsimage
from tkedistro.core.errors import BuildError
from tkedistro.engine.docker import DockerBackend
from tkedistro.engine.docker_images import DockerImages
from tkedistro.images.upstream.debianbase import INPUTS_LABEL

pytestmark = [pytest.mark.real_k8s, pytest.mark.docker, pytest.mark.timeout(1800)]

TREE = Path(os.environ.get("TKEDISTRO_IMAGES_TREE") or PERSIST / "distro/_src/1.20")
BUILDER = "tkedistro/builder:go1.15-bullseye"
WORK = PERSIST / "cluster-dns"

OBJECTS = textwrap.dedent("""\
    apiVersion: v1
    kind: Service
    metadata: {name: kubernetes, namespace: default}
    spec: {clusterIP: 10.96.0.1, ports: [{name: https, port: 443, protocol: TCP}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: test-service-2, namespace: dns-1}
    spec: {clusterIP: 10.96.7.7, ports: [{name: http, port: 80, protocol: TCP}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: dns-test-service, namespace: dns-1}
    spec: {clusterIP: None, ports: [{name: http, port: 80, protocol: TCP}]}
    ---
    apiVersion: v1
    kind: Endpoints
    metadata: {name: dns-test-service, namespace: dns-1}
    subsets:
    - addresses: [{ip: 10.244.1.5, hostname: dns-querier-1}]
      ports: [{name: http, port: 80, protocol: TCP}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: dns-test-service-3, namespace: dns-1}
    spec: {type: ExternalName, externalName: foo.example.com}
    """)

# The probe pod's resolv.conf: namespace dns-1, ndots 5, as the kubelet writes it.
RESOLV = "search dns-1.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"

# (dig arguments, expected +short output) -- the questions of test/e2e/network/dnsimage.go
QUESTIONS = [
    (["kubernetes.default", "A", "+search"], "10.96.0.1"),
    (["kubernetes.default.svc", "A", "+search"], "10.96.0.1"),
    (["kubernetes.default.svc.cluster.local", "A"], "10.96.0.1"),
    (["dns-test-service", "A", "+search"], "10.244.1.5"),
    (["dns-test-service.dns-1", "A", "+search"], "10.244.1.5"),
    (["dns-querier-1.dns-test-service.dns-1.svc.cluster.local", "A"], "10.244.1.5"),
    (["_http._tcp.dns-test-service.dns-1.svc", "SRV", "+search"],
     "0 100 80 dns-querier-1.dns-test-service.dns-1.svc.cluster.local."),
    (["_http._tcp.test-service-2", "SRV", "+search"],
     "0 100 80 test-service-2.dns-1.svc.cluster.local."),
    (["7.7.96.10.in-addr.arpa.", "PTR"], "test-service-2.dns-1.svc.cluster.local."),
    (["10-244-1-5.dns-1.pod.cluster.local", "A", "+search"], "10.244.1.5"),
    (["dns-test-service-3.dns-1.svc.cluster.local", "CNAME"], "foo.example.com."),
    (["test-service-2.dns-1.svc.cluster.local", "AAAA"], ""),
]


@pytest.fixture(scope="module")
def built() -> tuple[dnsimage.DnsImage, dnsimage.DnsImage]:
    if not os.environ.get("TKEDISTRO_IMAGES_TREE"):
        with pytest.MonkeyPatch.context() as monkeypatch:
            build_persistent_distro(monkeypatch)  # a no-op when warm; no earlier run needed
    if DockerBackend().image_info(BUILDER) is None:
        pytest.skip(f"needs the builder image {BUILDER} (make install)")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=TREE, capture_output=True,
                            text=True, check=True).stdout.strip()
    first = dnsimage.build_dns_image(TREE, commit, DockerImages(), DockerBackend(), BUILDER, WORK,
                                "1.15")
    second = dnsimage.build_dns_image(TREE, commit, DockerImages(), DockerBackend(), BUILDER, WORK,
                                "1.15")
    return first, second


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=120)


def test_the_image_is_built_from_the_tree_and_then_reused(
        built: tuple[dnsimage.DnsImage, dnsimage.DnsImage]) -> None:
    first, second = built
    assert second.reused and second.ref == first.ref
    assert first.ref.startswith("tkedistro.local/cluster/dns-responder:")
    labels = DockerImages().labels(first.ref) or {}
    assert labels[INPUTS_LABEL].removeprefix("sha256:")[:12] == first.ref.rsplit(":", 1)[1]
    out = _docker("run", "--rm", "--network", "none", first.ref, "--version").stdout
    assert out.startswith("tkedistro-dns tree-")
    usage = _docker("run", "--rm", "--network", "none", first.ref, "--help").stderr
    assert "-static string" in usage and "TEST MODE" in usage and "-domain string" in usage


def test_dig_gets_the_spec_answers_over_udp_and_tcp(
        built: tuple[dnsimage.DnsImage, dnsimage.DnsImage], tmp_path: Path) -> None:
    (tmp_path / "objects.yaml").write_text(OBJECTS)
    (tmp_path / "resolv.conf").write_text(RESOLV)
    tmp_path.chmod(0o755)
    name = f"tkedistro-dns-test-{os.getpid()}"
    # as the Deployment runs it: read-only root, every capability dropped but NET_BIND_SERVICE
    _docker("run", "-d", "--rm", "--name", name, "--network", "none", "--read-only",
            "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE",
            "-v", f"{tmp_path}:/t:ro", "-v", f"{tmp_path / 'resolv.conf'}:/etc/resolv.conf:ro",
            "--entrypoint", str(dnsimage.BINARY_PATH), built[0].ref,
            "--static=/t/objects.yaml", "--port=53", "--resolv-conf=/nonexistent")
    try:
        failures = []
        for args, want in QUESTIONS:
            for proto in ("+notcp", "+tcp"):
                got = _dig(name, [*args, proto])
                if got != want:
                    failures.append(f"dig {' '.join(args)} {proto}: {got!r}, want {want!r}")
        status = _docker("exec", name, "dig", "@127.0.0.1", "+tries=1", "+time=3",
                         "nosuch.dns-1.svc.cluster.local").stdout
        assert "status: NXDOMAIN" in status and "SOA" in status
        outside = _docker("exec", name, "dig", "@127.0.0.1", "+tries=1", "+time=3",
                          "example.org").stdout
        assert "status: SERVFAIL" in outside  # no upstream here: a quick SERVFAIL
        assert failures == []
        ready = _docker("exec", name, "curl", "-s", "http://127.0.0.1:8080/ready").stdout
        assert ready == "ready\n"
        logs = _docker("logs", name).stderr
        assert len([line for line in logs.splitlines() if "zone cluster.local." in line]) == 1
    finally:
        _docker("rm", "-f", name, check=False)


def _dig(container: str, args: list[str]) -> str:
    """``dig +short`` inside the container (its resolv.conf has the probe pod's search list)."""
    argv = ["exec", container, "dig", "@127.0.0.1", "+short", "+tries=1", "+time=3", *args]
    return _docker(*argv, check=False).stdout.strip()


def test_the_build_container_cannot_write_the_tree(tmp_path: Path) -> None:
    if not (TREE / "vendor/github.com/miekg/dns").is_dir():
        pytest.skip(f"needs the real tree at {TREE}")
    if DockerBackend().image_info(BUILDER) is None:
        pytest.skip(f"needs the builder image {BUILDER} (make install)")
    for folder in ("src", "cache", "out"):
        (tmp_path / folder).mkdir()
    tool = dnsimage.dns_build_tool(DockerBackend(), BUILDER, tmp_path / "src", tmp_path / "cache",
                              "1.15")
    with pytest.raises(BuildError) as caught:
        tool(TREE, tmp_path / "out", ["touch", "/src/vendor/tkedistro-was-here"])
    assert "Read-only file system" in (caught.value.details or "")
    assert not (TREE / "vendor/tkedistro-was-here").exists()
