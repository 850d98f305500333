"""Conformance images: every ref v1.20.2 lists has a recipe or is reported as having none;
labels say where an image came from; an unchanged second run rebuilds nothing (fake engine)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tkedistro.core.errors import BuildError, UnsafePathError
from tkedistro.debian import rootfs as debian
from tkedistro.engine.imagerecord import ImageRecord
from tkedistro.engine.protocols import BuiltImage
from tkedistro.images.upstream import debianbase, imageset, recipes

# e2e.test --list-images of v1.20.2 (the suite's defaults; the order is the suite's).
V1202_IMAGES = """\
gcr.io/kubernetes-e2e-test-images/cuda-vector-add:2.0
k8s.gcr.io/e2e-test-images/agnhost:2.21
k8s.gcr.io/build-image/debian-iptables:buster-v1.3.0
gcr.io/kubernetes-e2e-test-images/echoserver:2.2
k8s.gcr.io/etcd:3.4.13-0
invalid.com/invalid/alpine:3.1
k8s.gcr.io/prometheus-dummy-exporter:v0.1.0
k8s.gcr.io/sd-dummy-exporter:v0.2.0
gcr.io/kubernetes-e2e-test-images/volume/gluster:1.0
docker.io/library/busybox:1.29
gcr.io/kubernetes-e2e-test-images/volume/rbd:1.0.1
gcr.io/kubernetes-e2e-test-images/sample-apiserver:1.17
gcr.io/kubernetes-e2e-test-images/apparmor-loader:1.0
gcr.io/kubernetes-e2e-test-images/nonroot:1.0
docker.io/library/redis:5.0.5-alpine
gcr.io/k8s-authenticated-test/agnhost:2.6
gcr.io/kubernetes-e2e-test-images/metadata-concealment:1.2
gcr.io/kubernetes-e2e-test-images/nonewprivs:1.0
docker.io/library/perl:5.26
gcr.io/kubernetes-e2e-test-images/regression-issue-74839-amd64:1.0
gcr.io/authenticated-image-pulling/alpine:3.7
docker.io/library/httpd:2.4.38-alpine
docker.io/library/httpd:2.4.39-alpine
gcr.io/kubernetes-e2e-test-images/nautilus:1.0
docker.io/library/nginx:1.15-alpine
gcr.io/kubernetes-e2e-test-images/volume/iscsi:2.0
gcr.io/authenticated-image-pulling/windows-nanoserver:v1
gcr.io/kubernetes-e2e-test-images/ipc-utils:1.0
gcr.io/kubernetes-e2e-test-images/jessie-dnsutils:1.0
k8s.gcr.io/sig-storage/nfs-provisioner:v2.2.2
gcr.io/kubernetes-e2e-test-images/resource-consumer:1.5
gcr.io/kubernetes-e2e-test-images/cuda-vector-add:1.0
docker.io/gluster/glusterdynamic-provisioner:v1.0
docker.io/library/nginx:1.14-alpine
k8s.gcr.io/pause:3.2
k8s.gcr.io/prometheus-to-sd:v0.5.0
gcr.io/kubernetes-e2e-test-images/volume/nfs:1.0
gcr.io/kubernetes-e2e-test-images/kitten:1.0
""".split()

# Images the conformance specs of v1.20.2 pull (test/e2e/**, [Conformance]).
CONFORMANCE = ("agnhost:2.21", "busybox:1.29", "pause:3.2", "httpd:2.4.38-alpine",
               "httpd:2.4.39-alpine", "nginx:1.14-alpine", "nginx:1.15-alpine",
               "jessie-dnsutils:1.0", "sample-apiserver:1.17", "etcd:3.4.13-0",
               "nonroot:1.0", "redis:5.0.5-alpine", "perl:5.26", "kitten:1.0", "nautilus:1.0",
               "resource-consumer:1.5", "nonewprivs:1.0", "ipc-utils:1.0")


class FakeEngine:
    """Records builds; keeps images (labels + a made-up id) in a dict like a local store."""

    def __init__(self) -> None:
        self.images: dict[str, BuiltImage] = {}
        self.builds: list[str] = []
        self.contexts: dict[str, Path] = {}
        self.platforms: dict[str, str] = {}

    def labels(self, ref: str) -> Mapping[str, str] | None:
        image = self.images.get(ref)
        return None if image is None else image.labels

    def _store(self, ref: str, labels: Mapping[str, str], salt: str) -> BuiltImage:
        image_id = "sha256:" + hashlib.sha256((ref + salt).encode()).hexdigest()
        self.images[ref] = BuiltImage(ref, image_id, dict(labels))
        return self.images[ref]

    def build(self, context: Path, tag: str, labels: Mapping[str, str],
              dockerfile: str = "Dockerfile") -> BuiltImage:
        if (context / dockerfile).read_text() == f"FROM {tag}\n" and not labels:
            return self.images[tag]  # adds nothing: Docker answers with the same image
        self.builds.append(tag)
        self.contexts[tag] = context
        content = "".join(f.name + f.read_text() for f in sorted(context.iterdir()))
        return self._store(tag, labels, content)

    def import_rootfs(self, rootfs_tar: Path, tag: str, changes: Sequence[str] = (),
                      platform: str = "") -> BuiltImage:
        self.builds.append(tag)
        self.platforms[tag] = platform
        labels = dict(c[6:].split("=", 1) for c in changes if c.startswith("LABEL "))
        return self._store(tag, {k: v.strip('"') for k, v in labels.items()}, "")

    def tag(self, ref: str, new_ref: str) -> None: ...
    def push(self, ref: str, login: object = None) -> str: return ""
    def pull(self, ref: str, login: object = None) -> BuiltImage: raise NotImplementedError
    def remove(self, ref: str) -> None: ...


@pytest.fixture(autouse=True)
def no_debootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("a unit test must not debootstrap")
    monkeypatch.setattr(debian, "_debootstrap", refuse)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path / "work"


@pytest.fixture
def engine(work: Path) -> FakeEngine:
    fake = FakeEngine()  # the Debian base is already imported, with the current inputs
    digest = debianbase.inputs_digest()
    base = fake._store(debianbase.BASE_REF, {
        debianbase.INPUTS_LABEL: digest,
        debianbase.PACKAGES_LABEL: "apache2=2.4.56-1~deb11u2,busybox-static=1:1.30.1-6+b3"}, "")
    ImageRecord(work / "images.json").remember(debianbase.BASE_REF, digest, base.id)
    return fake


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for recipe in recipes.RECIPES:
        for path in recipe.tree_files:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(f"{path}\n")
    return root


def fake_tool(calls: list[list[str]]) -> imageset.BuildTool:
    def tool(src: Path, out: Path, argv: list[str]) -> None:
        calls.append(argv)
        (out / Path(argv[argv.index("-o") + 1]).name).write_text(" ".join(argv))
    return tool


def test_every_listed_image_has_a_recipe_or_is_reported_without_one() -> None:
    order, missing = imageset.plan(V1202_IMAGES)
    made = {f"{recipes.short_name(ref)}:{recipes.tag_of(ref)}" for ref, _ in order}
    assert made == set(CONFORMANCE) | {"regression-issue-74839-amd64:1.0"}
    assert sorted([r for r, _ in order] + list(missing)) == sorted(V1202_IMAGES)
    assert "gcr.io/k8s-authenticated-test/agnhost:2.6" in missing  # must never pull
    assert "invalid.com/invalid/alpine:3.1" in missing


def test_parent_image_is_built_first_even_when_not_wanted() -> None:
    order, _ = imageset.plan(["gcr.io/kubernetes-e2e-test-images/kitten:1.0"])
    assert [ref for ref, _ in order] == [recipes.AGNHOST_REF,
                                         "gcr.io/kubernetes-e2e-test-images/kitten:1.0"]


def test_images_carry_their_source_and_inputs(tree: Path, work: Path,
                                              engine: FakeEngine) -> None:
    wanted = ["k8s.gcr.io/e2e-test-images/agnhost:2.21", "docker.io/library/httpd:2.4.38-alpine"]
    result = imageset.build_image_set(tree, "c0ffee" * 6 + "abcd", wanted, engine,
                                    fake_tool([]), work)
    agnhost, httpd = result.built
    assert agnhost.labels["org.opencontainers.image.revision"] == "c0ffee" * 6 + "abcd"
    assert "test/images/agnhost at c0ffeec0ffee" in agnhost.source
    assert "Debian apache2=2.4.56-1~deb11u2" in httpd.source
    assert httpd.labels["org.tkedistro.base"] == engine.images[debianbase.BASE_REF].id
    assert agnhost.labels["org.tkedistro.inputs"].startswith("sha256:")
    assert agnhost.local == f"tkedistro.local/conformance/{wanted[0]}"  # never the real name
    assert set(engine.contexts) == {agnhost.local, httpd.local}
    context = engine.contexts[agnhost.local]
    assert (context / "Dockerfile").read_text().startswith(f"FROM {debianbase.BASE_REF}\n")
    assert sorted(p.name for p in context.iterdir()) == [
        "Dockerfile", "agnhost", "localhost.crt", "localhost.key"]


def test_second_run_reuses_everything_and_builds_no_binary(tree: Path, work: Path,
                                                           engine: FakeEngine) -> None:
    calls: list[list[str]] = []
    wanted = V1202_IMAGES
    first = imageset.build_image_set(tree, "a" * 40, wanted, engine, fake_tool(calls), work)
    assert not any(o.reused for o in first.built)
    built, compiled = len(engine.builds), len(calls)
    second = imageset.build_image_set(tree, "a" * 40, wanted, engine, fake_tool(calls), work)
    assert all(o.reused for o in second.built)
    assert [o.image_id for o in second.built] == [o.image_id for o in first.built]
    assert (len(engine.builds), len(calls)) == (built, compiled)


def test_a_changed_tree_file_rebuilds_that_image_and_its_children(
        tree: Path, work: Path, engine: FakeEngine) -> None:
    wanted = ["gcr.io/kubernetes-e2e-test-images/kitten:1.0", "k8s.gcr.io/pause:3.2"]
    imageset.build_image_set(tree, "a" * 40, wanted, engine, fake_tool([]), work)
    (tree / "test/images/agnhost/porter/localhost.crt").write_text("new cert\n")
    again = imageset.build_image_set(tree, "a" * 40, wanted, engine, fake_tool([]), work)
    assert {o.ref: o.reused for o in again.built} == {
        recipes.AGNHOST_REF: False, wanted[0]: False, wanted[1]: True}


def test_go_binaries_are_cached_per_commit(tree: Path, work: Path,
                                           engine: FakeEngine) -> None:
    calls: list[list[str]] = []
    wanted = ["k8s.gcr.io/pause:3.2"]
    imageset.build_image_set(tree, "a" * 40, wanted, engine, fake_tool(calls), work)
    imageset.build_image_set(tree, "b" * 40, wanted, engine, fake_tool(calls), work)
    assert [c[0] for c in calls] == ["gcc", "gcc"]
    assert (work / "bin" / ("b" * 40) / "pause").is_file()


def test_debian_base_needs_root_and_says_so(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debian.os, "geteuid", lambda: 1000)
    with pytest.raises(BuildError, match="needs root"):
        debianbase.ensure_base(FakeEngine(), tmp_path)


def test_debian_base_inputs_change_with_mirror_and_packages(
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = debianbase.inputs_digest()
    monkeypatch.setenv("DEBIAN_MIRROR", "http://mirror.example/debian")
    assert debianbase.inputs_digest() != before
    assert debianbase.inputs_digest(("bash",)) != debianbase.inputs_digest()


def test_nothing_wanted_needs_no_base(tmp_path: Path) -> None:
    result = imageset.build_image_set(tmp_path, "a" * 40, ["invalid.com/invalid/alpine:3.1"],
                                    FakeEngine(), fake_tool([]), tmp_path)
    assert result.built == () and result.no_recipe == ("invalid.com/invalid/alpine:3.1",)


def test_a_lost_record_still_reuses_by_label(tree: Path, work: Path, engine: FakeEngine) -> None:
    wanted = ["k8s.gcr.io/pause:3.2", "docker.io/library/busybox:1.29"]
    first = imageset.build_image_set(tree, "a" * 40, wanted, engine, fake_tool([]), work)
    (work / "images.json").unlink()
    builds = len(engine.builds)
    again = imageset.build_image_set(tree, "a" * 40, wanted, engine, fake_tool([]), work)
    assert [(o.reused, o.image_id) for o in again.built] == [
        (True, o.image_id) for o in first.built]
    assert len(engine.builds) == builds


def test_debian_base_is_labelled_with_its_packages_and_reused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[Path] = []

    def debootstrap(rootfs: Path, recipe: debian.DebianRecipe,
                    log: Path) -> tuple[tuple[str, ...], str]:
        runs.append(rootfs)
        (rootfs / "etc").mkdir(parents=True)
        (rootfs / "etc/os-release").write_text("ID=debian\n")
        return ("apache2=2.4.62-1~deb11u1", "bash=5.1-2+deb11u1"), debian.mirror()

    monkeypatch.setattr(debian, "_debootstrap", debootstrap)
    monkeypatch.setattr(debian.os, "geteuid", lambda: 0)
    engine = FakeEngine()
    first = debianbase.ensure_base(engine, tmp_path)
    labels = engine.labels(debianbase.BASE_REF) or {}
    assert labels[debianbase.PACKAGES_LABEL] == "apache2=2.4.62-1~deb11u1,bash=5.1-2+deb11u1"
    assert labels[debianbase.INPUTS_LABEL] == debianbase.inputs_digest()
    again = debianbase.ensure_base(engine, tmp_path)
    assert (first.reused, again.reused, len(runs)) == (False, True, 1)
    assert again.image_id == first.image_id and again.version("bash") == "5.1-2+deb11u1"
    assert not (tmp_path / "debian-rootfs").exists()


def test_a_tree_file_that_is_a_symlink_is_refused_not_put_in_the_image(
        tree: Path, work: Path, engine: FakeEngine, tmp_path: Path) -> None:
    """The build context is assembled through the safe file layer: a tree file that is a
    symlink (to a host secret) is refused (exit 3, naming it), not linked or copied in."""
    secret = tmp_path / "secret"
    secret.write_text("host key\n")
    crt = tree / "test/images/agnhost/porter/localhost.crt"
    crt.unlink()
    crt.symlink_to(secret)
    with pytest.raises(UnsafePathError) as err:
        imageset.build_image_set(tree, "a" * 40, ["k8s.gcr.io/e2e-test-images/agnhost:2.21"],
                                 engine, fake_tool([]), work)
    assert err.value.exit_code == 3
    assert str(err.value).startswith(f"{crt} is a symlink; tkedistro does not follow symlinks")
    assert engine.builds == []
    assert not any(p.read_bytes() == b"host key\n" for p in work.rglob("*")
                   if p.is_file() and not p.is_symlink())


def test_a_symlinked_context_folder_is_refused_and_what_it_points_at_is_kept(
        tree: Path, work: Path, engine: FakeEngine, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep\n")
    (work / "context").symlink_to(outside)
    with pytest.raises(UnsafePathError) as err:
        imageset.build_image_set(tree, "a" * 40, ["k8s.gcr.io/pause:3.2"], engine,
                                 fake_tool([]), work)
    assert err.value.exit_code == 3
    assert str(err.value).startswith(f"{work / 'context'} is a symlink")
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]
    assert (outside / "precious").read_text() == "keep\n"


def test_the_image_record_is_not_read_through_a_symlink(work: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"x": {"inputs": "i", "id": "sha256:planted"}}')
    work.mkdir()
    (work / "images.json").symlink_to(elsewhere)
    with pytest.raises(UnsafePathError) as err:
        ImageRecord(work / "images.json")
    assert err.value.exit_code == 3 and str(err.value).startswith(
        f"{work / 'images.json'} is a symlink")
