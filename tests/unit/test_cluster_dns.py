"""Cluster DNS: the manifests the lead applies, and the responder's build (fake engine and
backend): the tree is mounted read-only, the image is tagged with its inputs digest, and an
unchanged second call builds nothing."""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO
from tests.unit.test_images import FakeEngine
from tkedistro.cluster.dns import image as dnsimage
from tkedistro.cluster.dns import manifests as dns
from tkedistro.core.errors import BuilderImageError, BuildError, ClusterError
from tkedistro.debian import rootfs as debian
from tkedistro.engine.imagerecord import ImageRecord
from tkedistro.engine.protocols import ContainerSpec, ImageInfo, RunResult
from tkedistro.images.upstream import debianbase

IMAGE = "tkedistro.local/cluster/dns-responder:0123456789ab"


def _docs(text: str) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in YAML(typ="safe", pure=True).load_all(text)}


def test_the_manifests_parse_and_carry_the_service_ip_rbac_and_image() -> None:
    docs = _docs(dns.dns_manifests(IMAGE))
    assert sorted(docs) == ["ClusterRole", "ClusterRoleBinding", "Deployment", "Service",
                            "ServiceAccount"]
    service = docs["Service"]
    assert (service["metadata"]["name"], service["metadata"]["namespace"]) == ("kube-dns",
                                                                                "kube-system")
    assert service["spec"]["clusterIP"] == "10.96.0.10"
    assert [(p["name"], p["port"], p["protocol"]) for p in service["spec"]["ports"]] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")]
    assert docs["ClusterRole"]["rules"] == [{"apiGroups": [""],
                                             "resources": ["services", "endpoints"],
                                             "verbs": ["get", "list", "watch"]}]
    subject = docs["ClusterRoleBinding"]["subjects"][0]
    assert (subject["name"], subject["namespace"]) == (docs["ServiceAccount"]["metadata"]["name"],
                                                       "kube-system")
    assert docs["ClusterRoleBinding"]["roleRef"]["name"] == docs["ClusterRole"]["metadata"]["name"]


def test_the_deployment_runs_the_image_as_cluster_dns() -> None:
    deployment = _docs(dns.dns_manifests(IMAGE))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == IMAGE and container["imagePullPolicy"] == "IfNotPresent"
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"k8s-app": "kube-dns"}
    assert deployment["spec"]["selector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert pod["dnsPolicy"] == "Default"  # upstream names go to the node's resolv.conf
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert {t["key"] for t in pod["tolerations"]} >= {"node-role.kubernetes.io/master",
                                                      "node-role.kubernetes.io/control-plane"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8080,
                                                      "scheme": "HTTP"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "--domain=cluster.local" in container["args"]
    assert "--reverse-cidrs=10.96.0.0/12,10.244.0.0/16" in container["args"]


def test_other_ip_domain_and_odd_values_stay_values() -> None:
    odd = 'x.local/dns:1"\n- evil: true'
    docs = _docs(dns.dns_manifests(odd, cluster_ip="10.0.0.10", domain="example.test",
                                   reverse_cidrs=("10.0.0.0/16",)))
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == odd  # a YAML library, not string concatenation
    assert docs["Service"]["spec"]["clusterIP"] == "10.0.0.10"
    assert "--domain=example.test" in container["args"]
    assert "--reverse-cidrs=10.0.0.0/16" in container["args"]


def test_the_go_sources_ship_with_the_package() -> None:
    sources = dnsimage.go_sources()
    assert {"main.go", "build.sh", "records.go", "records_test.go"} <= set(sources)
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["tkedistro"]
    for name in sources:
        assert any(fnmatch.fnmatch(f"cluster/dns/responder/{name}", p) for p in patterns), name


def test_the_inputs_digest_follows_commit_sources_builder_and_base() -> None:
    sources = {"main.go": b"package main\n"}
    one = dnsimage.inputs_digest("a" * 40, sources, "sha256:b", "sha256:c")
    assert one == dnsimage.inputs_digest("a" * 40, dict(sources), "sha256:b", "sha256:c")
    assert one != dnsimage.inputs_digest("d" * 40, sources, "sha256:b", "sha256:c")
    assert one != dnsimage.inputs_digest("a" * 40, {"main.go": b"package main // x\n"},
                                    "sha256:b", "sha256:c")
    assert one != dnsimage.inputs_digest("a" * 40, sources, "sha256:e", "sha256:c")
    assert one != dnsimage.inputs_digest("a" * 40, sources, "sha256:b", "sha256:f")
    assert dnsimage.image_ref(one) == f"{dnsimage.IMAGE_REPO}:{one[7:19]}"


class FakeSession:
    def __init__(self, spec: ContainerSpec, ok: bool) -> None:
        self.spec, self.ok = spec, ok

    @property
    def container_id(self) -> str:
        return "fake"

    def run(self, argv: Sequence[str], *, log: Path | None = None,
            on_line: Callable[[str], None] | None = None) -> RunResult:
        if list(argv) == ["go", "version"]:
            return RunResult(tuple(argv), 0, "go version go1.19.8 linux/amd64\n")
        out = next(m.source for m in self.spec.mounts if m.target == PurePosixPath("/out"))
        if self.ok:
            (out / Path(argv[2]).name).write_bytes(b"\x7fELF")
        return RunResult(tuple(argv), 0 if self.ok else 1, "--- FAIL: TestHeadlessService")


class FakeBackend:
    name = "fake"

    def __init__(self, ok: bool = True) -> None:
        self.specs: list[ContainerSpec] = []
        self.argvs: list[Sequence[str]] = []
        self.ok = ok

    def check_available(self) -> None: ...

    def image_info(self, image: str) -> ImageInfo | None:
        return ImageInfo(image, "sha256:builder")

    @contextmanager
    def session(self, spec: ContainerSpec) -> Iterator[FakeSession]:
        self.specs.append(spec)
        yield FakeSession(spec, self.ok)


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    monkeypatch.setattr(debian, "_debootstrap", lambda *a: pytest.fail("debootstrap"))
    fake = FakeEngine()
    digest = debianbase.inputs_digest()
    base = fake._store(debianbase.BASE_REF, {debianbase.INPUTS_LABEL: digest}, "")
    ImageRecord(tmp_path / "work" / "images.json").remember(debianbase.BASE_REF, digest, base.id)
    return fake


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "tree" / "vendor" / "github.com" / "miekg" / "dns").mkdir(parents=True)
    return tmp_path / "tree"


def test_the_build_mounts_the_tree_read_only_and_a_second_call_reuses(
        engine: FakeEngine, tree: Path, tmp_path: Path) -> None:
    backend = FakeBackend()
    first = dnsimage.build_dns_image(tree, "c" * 40, engine, backend, "builder:1",
                                     tmp_path / "work")
    second = dnsimage.build_dns_image(tree, "c" * 40, engine, backend, "builder:1",
                                     tmp_path / "work")
    assert not first.reused and second.reused and first.ref == second.ref
    assert engine.builds == [first.ref] and len(backend.specs) == 1
    spec = backend.specs[0]
    mounts = {str(m.target): m.read_only for m in spec.mounts}
    assert mounts == {"/src": True, "/dns": True, "/cache": False, "/out": False}
    assert spec.network == "none" and spec.env["GOCACHE"] == "/cache"
    dockerfile = (engine.contexts[first.ref] / "Dockerfile").read_text()
    assert dockerfile.startswith(f"FROM {debianbase.BASE_REF}\n")
    assert "COPY tkedistro-dns /usr/local/bin/tkedistro-dns" in dockerfile
    labels = engine.images[first.ref].labels
    assert labels["org.opencontainers.image.revision"] == "c" * 40
    assert first.ref.endswith(":" + labels[debianbase.INPUTS_LABEL][7:19])
    changed = dnsimage.build_dns_image(tree, "d" * 40, engine, backend, "builder:1",
                                       tmp_path / "work")
    assert changed.ref != first.ref and not changed.reused


def test_a_failed_go_build_says_so_with_the_go_output(
        engine: FakeEngine, tree: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError) as caught:
        dnsimage.build_dns_image(tree, "c" * 40, engine, FakeBackend(ok=False), "builder:1",
                            tmp_path / "work")
    assert caught.value.message.startswith("building the cluster DNS responder failed: sh ")
    assert "FAIL: TestHeadlessService" in (caught.value.details or "")


def test_a_builder_with_another_go_than_the_pin_is_refused(
        engine: FakeEngine, tree: Path, tmp_path: Path) -> None:
    with pytest.raises(BuilderImageError, match="has Go 1.19.8, but the manifest pins go.version"):
        dnsimage.build_dns_image(tree, "c" * 40, engine, FakeBackend(), "builder:1",
                            tmp_path / "work", go_version="1.15.15")
    assert engine.builds == []


def test_no_tree_is_a_cluster_error(engine: FakeEngine, tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="no vendor/github.com/miekg/dns"):
        dnsimage.build_dns_image(tmp_path, "c" * 40, engine, FakeBackend(), "builder:1",
                            tmp_path / "work")
