"""The local cluster runs the release's shipped OCI images: ``cluster up``, ``conformance`` and
``cluster prove`` refuse without them (naming the file and the command that makes it), the
archives go into the registry with every platform and digest unchanged, kubeadm and containerd
name them, and what each node runs is read back and compared with images.json."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner, Result

from tests.helpers.engines import use_engines
from tests.helpers.fake_nodes import FakeNodes, install_fake_nodes
from tests.helpers.shipped import (
    SHIPPED,
    VERSION,
    Shipped,
    cluster_manifest_text,
    containerd_answers,
    kube_system_pods,
    make_shipped,
    write_shipped_images,
)
from tkedistro.cli.app import app
from tkedistro.cluster import lifecycle, nodeimage, shippedimages
from tkedistro.cluster.config import ClusterConfig, init_config
from tkedistro.cluster.runningimages import read_running_images
from tkedistro.core.errors import ClusterError
from tkedistro.core.runner import Result as RunnerResult
from tkedistro.core.workspace import Workspace
from tkedistro.engine import skopeo
from tkedistro.model.manifest import load_release

HINT = "hint: make them: tkedistro build 1.20 (or tkedistro images 1.20)"
CP, WORKER = "tke-x-control-plane", "tke-x-worker"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A built release: the node's binaries, the conformance tools and the shipped images."""
    root = tmp_path / "distro"
    (root / "releases").mkdir(parents=True)
    (root / "releases" / "1.20.yaml").write_text(cluster_manifest_text())
    bin_dir = root / "_output" / "1.20" / "bin" / "linux" / "amd64"
    bin_dir.mkdir(parents=True)
    for name in (*lifecycle.NODE_BINARIES, "e2e.test", "ginkgo"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    write_shipped_images(root / "_output" / "1.20")
    return Workspace(root=root, cache=tmp_path / "cache")


def cli(ws: Workspace, *args: str) -> Result:
    return CliRunner().invoke(app, ["--root", str(ws.root), *args], env={"COLUMNS": "1000"})


# --- refused without them -------------------------------------------------------------------
COMMANDS = [("cluster", "up", "1.20"), ("conformance", "1.20", "--quick", "--no-build"),
            ("cluster", "prove", "1.20")]


@pytest.mark.parametrize("command", COMMANDS, ids=["up", "conformance", "prove"])
def test_without_images_json_each_command_names_it_and_the_build(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]) -> None:
    nodes = install_fake_nodes(monkeypatch)
    (ws.output_dir("1.20") / "images" / "images.json").unlink()
    result = cli(ws, *command)
    assert result.exit_code == 16, result.output
    assert result.stderr.splitlines() == [
        "error: _output/1.20/images/images.json is missing: the cluster runs the release's "
        "shipped images", HINT]
    assert nodes.runs == [] and nodes.containers == {}
    assert not (ws.root / "_results").exists()


def test_every_missing_archive_is_named(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_nodes(monkeypatch)
    for component in ("kube-proxy", "pause"):
        (ws.output_dir("1.20") / "images" / f"{component}.oci.tar").unlink()
    result = cli(ws, "cluster", "up", "1.20")
    assert result.exit_code == 16, result.output
    assert result.stderr.splitlines() == [
        "error: the cluster runs the release's shipped images; missing: "
        "_output/1.20/images/kube-proxy.oci.tar, _output/1.20/images/pause.oci.tar", HINT]


def test_an_archive_that_changed_after_the_build_is_refused(ws: Workspace) -> None:
    (ws.output_dir("1.20") / "images" / "kube-scheduler.oci.tar").write_bytes(
        (ws.output_dir("1.20") / "images" / "pause.oci.tar").read_bytes())
    with pytest.raises(ClusterError) as caught:
        shippedimages.release_images(ws, load_release(ws, "1.20"))
    assert caught.value.message.startswith(
        "_output/1.20/images/images.json: images[2]: ")
    assert "kube-scheduler.oci.tar holds the image index sha256:" in caught.value.message


def test_a_release_that_does_not_ship_them_says_which_and_where(ws: Workspace) -> None:
    (ws.root / "releases" / "1.20.yaml").write_text(
        cluster_manifest_text(images=("kube-apiserver", "kube-proxy")))
    with pytest.raises(ClusterError) as caught:
        shippedimages.release_images(ws, load_release(ws, "1.20"))
    assert caught.value.message == (
        "releases/1.20.yaml: images: the cluster runs the shipped images of kube-apiserver, "
        "kube-controller-manager, kube-scheduler, kube-proxy, pause; kube-controller-manager, "
        "kube-scheduler, pause not listed")
    assert caught.value.hint == "add them to images:, then tkedistro build 1.20 (or " \
                                "tkedistro images 1.20)"


# --- into the registry ----------------------------------------------------------------------
@dataclass
class FakeRegistry:
    """The registry a run starts: what it serves (repo:tag -> digest), its login file."""

    folder: Path
    served: dict[str, str] = field(default_factory=dict)
    address: str = "127.0.0.1:40123"

    @property
    def log(self) -> Path:
        return self.folder / "registry.log"

    def manifest_digest(self, repo: str, tag: str) -> str | None:
        return self.served.get(f"{repo}:{tag}")

    def ref(self, name: str) -> str:
        return f"{self.address}/{name}"

    def write_auth_file(self) -> Path:
        path = self.folder / "auth.json"
        path.write_text("{}")
        return path


class FakeSkopeo:
    """Each ``copy`` makes the registry serve what the archive's images.json entry says
    (``rewrite``: a registry that changes the index instead)."""

    def __init__(self, registry: FakeRegistry, made: dict[str, Shipped],
                 rewrite: bool = False) -> None:
        self.registry, self.made, self.rewrite = registry, made, rewrite
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], **kwargs: object) -> RunnerResult:
        self.calls.append(list(argv))
        dest = argv[-1].removeprefix(f"docker://{self.registry.address}/")
        component = Path(argv[-2]).name.removesuffix(".oci.tar")
        index = self.made[component].index_digest
        self.registry.served[dest] = "sha256:" + "f" * 64 if self.rewrite else index
        return RunnerResult(tuple(argv), 0, "", "")


@pytest.fixture
def registry(tmp_path: Path) -> FakeRegistry:
    return FakeRegistry(tmp_path)


def _push(ws: Workspace, registry: FakeRegistry, monkeypatch: pytest.MonkeyPatch,
          rewrite: bool = False) -> tuple[list[shippedimages.ClusterImage], FakeSkopeo]:
    made = {c: make_shipped(c) for c in SHIPPED}
    fake = FakeSkopeo(registry, made, rewrite)
    monkeypatch.setattr(skopeo, "run", fake)
    monkeypatch.setattr(skopeo.shutil, "which", lambda name: f"/usr/bin/{name}")
    archives = shippedimages.release_images(ws, load_release(ws, "1.20"))
    pushed = shippedimages.push_release_images(archives, registry, VERSION)  # type: ignore[arg-type]
    return pushed, fake


def test_each_archive_is_copied_with_all_platforms_and_its_digests(
        ws: Workspace, registry: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    pushed, fake = _push(ws, registry, monkeypatch)
    images = ws.output_dir("1.20") / "images"
    auth = str(registry.folder / "auth.json")
    dest = f"docker://{registry.address}/tkedistro"
    assert [(Path(a[-2]).name, a[-1].removeprefix(dest + "/")) for a in fake.calls] == [
        ("kube-apiserver.oci.tar", f"kube-apiserver:{VERSION}"),
        ("kube-controller-manager.oci.tar", f"kube-controller-manager:{VERSION}"),
        ("kube-scheduler.oci.tar", f"kube-scheduler:{VERSION}"),
        ("kube-proxy.oci.tar", f"kube-proxy:{VERSION}"),
        ("pause.oci.tar", f"pause:{VERSION}"), ("pause.oci.tar", "pause:3.2")]
    for argv in fake.calls:
        assert argv[:8] == ["skopeo", "copy", "--all", "--preserve-digests", "--retry-times",
                            "2", "--dest-tls-verify=false", "--dest-authfile"]
        assert argv[8] == auth and argv[9].startswith(f"oci-archive:{images}/")
        assert registry.address not in " ".join(argv[:9])  # no password on the command line
    recorded = {e["component"]: e for e in json.loads((images / "images.json").read_text())[
        "images"]}
    assert [(p.component, p.ref, p.index_digest, dict(p.manifests)) for p in pushed] == [
        (c, f"127.0.0.1:5000/tkedistro/{c}:{VERSION}", recorded[c]["index_digest"],
         recorded[c]["manifests"]) for c in SHIPPED]


def test_an_image_the_registry_already_holds_is_not_copied_again(
        ws: Workspace, registry: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    _push(ws, registry, monkeypatch)
    _, again = _push(ws, registry, monkeypatch)
    assert again.calls == []


def test_a_registry_that_serves_another_index_is_named(
        ws: Workspace, registry: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ClusterError) as caught:
        _push(ws, registry, monkeypatch, rewrite=True)
    index = make_shipped("kube-apiserver").index_digest
    assert caught.value.message == (
        f"the local registry serves tkedistro/kube-apiserver:{VERSION} with the index "
        f"sha256:{'f' * 64}, not {ws.output_dir('1.20')}/images/kube-apiserver.oci.tar's "
        f"{index}")
    assert caught.value.hint == f"its log: {registry.log}"


# --- kubeadm and containerd name them -------------------------------------------------------
def test_kubeadm_and_containerd_name_the_shipped_images(tmp_path: Path) -> None:
    config = ClusterConfig("1.20", "tke-x", 2, VERSION, tmp_path)
    docs = list(YAML(typ="safe", pure=True).load_all(init_config(config, CP, "172.18.0.2",
                                                                 "abcdef.0123456789abcdef")))
    cluster = docs[1]
    # kubeadm's name for a control-plane image: <imageRepository>/<component>:<version>
    for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler",
                      "kube-proxy"):
        assert f"{cluster['imageRepository']}/{component}:{cluster['kubernetesVersion']}" == \
            config.shipped_image(component) == f"127.0.0.1:5000/tkedistro/{component}:{VERSION}"
    toml = nodeimage.node_files(config)["containerd.toml"].decode()
    assert f'sandbox_image = "127.0.0.1:5000/tkedistro/pause:{VERSION}"' in toml
    plus = ClusterConfig("1.20", "tke-x", 2, "v1.20.2+tke.1", tmp_path)
    assert plus.sandbox_image == "127.0.0.1:5000/tkedistro/pause:v1.20.2_tke.1"


# --- what the nodes run ---------------------------------------------------------------------
def _nodes(made: dict[str, Shipped]) -> FakeNodes:
    nodes = FakeNodes()
    nodes.add_cluster("tke-x", [CP, WORKER])
    nodes.answers = {"get pods -n kube-system -o json": (0, kube_system_pods(made, [CP, WORKER])),
                     **containerd_answers(made)}
    return nodes


def _read(ws: Workspace, nodes: FakeNodes) -> dict[str, object]:
    config = ClusterConfig("1.20", "tke-x", 2, VERSION, ws.cluster_dir("1.20"))
    expected = shippedimages.release_images(ws, load_release(ws, "1.20"))
    running = read_running_images(nodes, config, [CP, WORKER], expected)
    return {"ok": running.ok, "line": running.format_text(), **running.to_json()}


def test_what_each_node_runs_is_read_back_and_equals_images_json(ws: Workspace) -> None:
    made = {c: make_shipped(c) for c in SHIPPED}
    found = _read(ws, _nodes(made))
    recorded = {e["component"]: e for e in json.loads(
        (ws.output_dir("1.20") / "images" / "images.json").read_text())["images"]}
    assert found["ok"] is True and found["missing"] == []
    rows = found["images"]
    assert isinstance(rows, list)
    assert [(r["component"], r["node"]) for r in rows] == [
        ("kube-apiserver", CP), ("kube-controller-manager", CP), ("kube-scheduler", CP),
        ("kube-proxy", CP), ("pause", CP), ("kube-proxy", WORKER), ("pause", WORKER)]
    for row in rows:
        entry = recorded[row["component"]]
        assert row["index_digest"] == row["expected_index_digest"] == entry["index_digest"]
        assert row["platform"] == "linux/amd64"
        assert row["manifest_digest"] == entry["manifests"]["linux/amd64"]
        assert row["pod_image_id"] == ("" if row["component"] == "pause"
                                       else entry["index_digest"])
        assert row["matches"] is True
    assert found["line"] == (
        "shipped images running: 5 of 5 with the index and platform manifest digests of "
        "images.json (kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, "
        "pause)")


def test_a_node_running_another_image_is_named(ws: Workspace) -> None:
    made = {c: make_shipped(c) for c in SHIPPED}
    nodes = _nodes(made)
    other = {**made, "kube-proxy": make_shipped("an older kube-proxy")}
    nodes.answers["get pods -n kube-system -o json"] = (0, kube_system_pods(other, [CP]))
    found = _read(ws, nodes)
    assert found["ok"] is False
    assert found["line"] == ("shipped images running: digests differ from images.json: "
                             f"kube-proxy on {CP}")


def test_a_shipped_image_running_nowhere_is_named(ws: Workspace) -> None:
    made = {c: make_shipped(c) for c in SHIPPED}
    nodes = _nodes(made)
    nodes.answers["get pods -n kube-system -o json"] = (0, kube_system_pods(
        {c: s for c, s in made.items() if c != "kube-proxy"}, [CP, WORKER]))
    found = _read(ws, nodes)
    assert (found["ok"], found["missing"]) == (False, ["kube-proxy"])
    assert found["line"] == "shipped images running: not running: kube-proxy"


def test_conformance_records_what_the_nodes_ran_in_its_results(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from tkedistro.cluster.config import cluster_name
    from tkedistro.conformance import pipeline as conf
    from tkedistro.conformance.offline import OfflineImages

    made = {c: make_shipped(c) for c in SHIPPED}
    nodes = FakeNodes()
    use_engines(monkeypatch, nodes=nodes)
    name = cluster_name("1.20", ws.root)
    cp, worker = f"{name}-control-plane", f"{name}-worker"
    nodes.answers = {"get pods -n kube-system -o json": (0, kube_system_pods(made, [cp, worker])),
                     **containerd_answers(made)}
    handed: list[list[str]] = []

    def up(ws_: Workspace, manifest: object, bin_dir: Path, *, shipped: list[object],
           **kwargs: object) -> lifecycle.ClusterState:
        handed.append([i.component for i in shipped])  # type: ignore[attr-defined]
        nodes.add_cluster(name, [cp, worker])
        return lifecycle.ClusterState(name, "1.20", (cp, worker), ("172.18.0.2", "172.18.0.3"),
                                      "node", "sha256:1", str(ws.root / "kubeconfig"), "dns",
                                      0.0, 1.0)

    def passing(options: object, bins: Path, kubeconfig: Path, report_dir: Path,
                repo_list: Path | None, skip: str) -> bool:
        (report_dir / "junit_01.xml").write_text(
            '<testsuite tests="1"><testcase name="[sig-x] y [Conformance]" time="1"/>'
            '</testsuite>\n')
        return False

    class Registry:
        address, login = "127.0.0.1:5001", None

        def __init__(self, folder: Path) -> None:
            self.folder = folder

        def has(self, ref: str) -> bool:
            return False

        def __enter__(self) -> Registry:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(lifecycle, "up", up)
    monkeypatch.setattr(lifecycle, "remove_cgroup_parent", lambda parent: [])
    monkeypatch.setattr(conf, "LocalRegistry", Registry)
    monkeypatch.setattr(conf, "prepare_images", lambda *a, **k: OfflineImages(
        registry="127.0.0.1:5001", repo_list=ws.root / "repo-list"))
    monkeypatch.setattr(conf, "require_root", lambda: None)
    monkeypatch.setattr(conf, "support_images", lambda *a: None)
    monkeypatch.setattr(conf, "_suite", passing)
    result = cli(ws, "conformance", "1.20", "--quick", "--no-build", "--json")
    assert result.exit_code == 0, result.output
    assert handed == [list(SHIPPED)]
    summary = json.loads(result.stdout)
    run = Path(summary["report_dir"])
    record = json.loads((run / "running-images.json").read_text())
    assert record == summary["running_images"] and record["ok"] is True
    assert {(r["component"], r["index_digest"]) for r in record["images"]} == {
        (c, made[c].index_digest) for c in SHIPPED}
    assert json.loads((run / "summary.json").read_text())["running_images"] == record
    text = cli(ws, "conformance", "1.20", "--quick", "--no-build")
    assert "  shipped images running: 5 of 5 with the index and platform manifest digests " \
           "of images.json" in text.stdout
    assert os.path.islink(run.parent / "latest")


def test_static_pods_the_kubelet_has_not_reported_yet_are_waited_for(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after kubeadm init the control plane's mirror pods are Pending, without container
    statuses: the record asks again until the kubelet reports their images."""
    from tkedistro.cluster import runningimages

    monkeypatch.setattr(runningimages, "REPORT_POLL_S", 0.0)
    made = {c: make_shipped(c) for c in SHIPPED}
    nodes = _nodes(made)
    reported = json.loads(kube_system_pods(made, [CP, WORKER]))
    pending = json.loads(kube_system_pods(made, [CP, WORKER]))
    for pod in pending["items"][:3]:  # the three static pods
        pod["metadata"]["labels"] = {"component": pod["status"]["containerStatuses"][0]["name"]}
        pod["status"] = {"phase": "Pending"}
    answers = [json.dumps(pending), json.dumps(pending), json.dumps(reported)]
    asked = []
    real_exec = nodes.exec

    def exec_(name: str, argv: Sequence[str]) -> object:
        if "pods" in argv:
            asked.append(name)
            nodes.answers["get pods -n kube-system -o json"] = (0, answers[min(len(asked),
                                                                              3) - 1])
        return real_exec(name, argv)

    monkeypatch.setattr(nodes, "exec", exec_)
    found = _read(ws, nodes)
    assert len(asked) == 3
    assert (found["ok"], found["missing"]) == (True, [])


def test_a_static_pod_whose_mirror_pod_is_not_there_yet_is_waited_for(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from tkedistro.cluster import runningimages

    monkeypatch.setattr(runningimages, "REPORT_POLL_S", 0.0)
    made = {c: make_shipped(c) for c in SHIPPED}
    nodes = _nodes(made)
    early = json.loads(kube_system_pods(made, [CP, WORKER]))
    early["items"] = [p for p in early["items"] if "kube-scheduler" not in p["metadata"]["name"]]
    answers = [json.dumps(early), kube_system_pods(made, [CP, WORKER])]
    asked = []
    real_exec = nodes.exec

    def exec_(name: str, argv: Sequence[str]) -> object:
        if "pods" in argv:
            asked.append(name)
            nodes.answers["get pods -n kube-system -o json"] = (0, answers[min(len(asked), 2) - 1])
        return real_exec(name, argv)

    monkeypatch.setattr(nodes, "exec", exec_)
    found = _read(ws, nodes)
    assert len(asked) == 2
    assert (found["ok"], found["missing"]) == (True, [])
