"""The component images' runtime base: Debian 13 trixie, its identity recorded and followed.

A made Debian base is labelled with the archive state it came from (the suite's InRelease as
debootstrap fetched it); a shipped image names its base with the standard OCI keys (labels of
its config and annotations of its manifest) and inherits those archive labels; images.json
and the provenance list the base and the InRelease as materials; a new base id rebuilds the
server images and an unchanged one reuses them. No debootstrap, Docker or buildah: the fakes
of ``test_images`` and ``test_release_images`` (the docker tier debootstraps trixie for real).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from tests.unit.test_images import (
    FakeEngine,
    no_debootstrap,  # noqa: F401  (autouse: no debootstrap here)
)
from tests.unit.test_release_images import (
    BASES,
    FakeBuilder,
    _ctx,
    _fake_buildah,
    _out,
)
from tests.unit.test_release_operation import root  # noqa: F401  (the faked build's repo)
from tests.unit.test_sbom import STATEMENT_SCHEMA
from tkedistro.artifacts import finish
from tkedistro.artifacts.provenance import release_subjects, write_provenance
from tkedistro.build import builderimage
from tkedistro.cli.app import app
from tkedistro.core.runner import run as real_run
from tkedistro.debian import release, source
from tkedistro.debian import rootfs as debian
from tkedistro.engine.buildah import Buildah
from tkedistro.engine.protocols import ImageConfig
from tkedistro.images import base
from tkedistro.images.shipped import ShippedImage, make_release_images, read_images_json

MIRROR = "http://deb.debian.org/debian"
SIGNED = """-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Origin: Debian
Label: Debian
Suite: stable
Version: 13.8
Codename: trixie
Date: Sat, 21 Nov 2026 09:15:44 UTC
Architectures: all amd64 arm64
SHA256:
 0123 1234 main/binary-amd64/Packages
-----BEGIN PGP SIGNATURE-----
Version: GnuPG v2

iQIzBAEBCgAdFiEE
-----END PGP SIGNATURE-----
"""
INRELEASE_SHA = "sha256:" + hashlib.sha256(SIGNED.encode()).hexdigest()
INRELEASE_URI = f"{MIRROR}/dists/trixie/InRelease"
ARCHIVE_LABELS = {
    release.SUITE_LABEL: "trixie", release.MIRROR_LABEL: MIRROR,
    release.RELEASE_LABEL: INRELEASE_URI, release.RELEASE_SHA256_LABEL: INRELEASE_SHA,
    release.RELEASE_DATE_LABEL: "Sat, 21 Nov 2026 09:15:44 UTC",
    release.RELEASE_VERSION_LABEL: "13.8"}
IDS = {"docker-daemon:base:amd64": "sha256:" + "1" * 64,
       "docker-daemon:base:arm64": "sha256:" + "2" * 64}


def _lists(rootfs: Path) -> Path:
    lists = rootfs / "var/lib/apt/lists"
    lists.mkdir(parents=True, exist_ok=True)
    return lists


def test_the_component_bases_are_trixie_and_the_builder_stays_on_bullseye() -> None:
    for platform, arch in (("linux/amd64", "amd64"), ("linux/arm64", "arm64")):
        recipe = base.base_recipe(platform)
        assert (recipe.ref, recipe.suite) == (f"tkedistro/component-base:trixie-{arch}",
                                              "trixie")
    builder = builderimage.builder_recipe("tkedistro/builder:go1.15-bullseye", "1.15.15",
                                          "releases/1.20.yaml")
    assert builder.suite == "bullseye"
    # trixie's Debian LTS ends 2030-06-30: only after it would the archive mirror be tried
    assert source.end_of_life("trixie", datetime.date(2030, 6, 30)) is None
    assert source.end_of_life("trixie", datetime.date(2030, 7, 1)) == datetime.date(2030, 6, 30)


def test_the_inrelease_is_read_as_served_with_its_date_and_point_release(
        tmp_path: Path) -> None:
    lists = _lists(tmp_path)
    (lists / "deb.debian.org_debian_dists_trixie_InRelease").write_text(SIGNED)
    (lists / "deb.debian.org_debian_dists_trixie_Release").write_text("Version: 13.0\n")
    found = release.read_release(tmp_path, "trixie", MIRROR + "/")
    assert found == release.ReleaseFile(INRELEASE_URI, INRELEASE_SHA,
                                        "Sat, 21 Nov 2026 09:15:44 UTC", "13.8")
    assert found.labels() == {k: v for k, v in ARCHIVE_LABELS.items()
                              if k not in (release.SUITE_LABEL, release.MIRROR_LABEL)}


def test_without_an_inrelease_the_release_is_read_and_without_either_nothing(
        tmp_path: Path) -> None:
    assert release.read_release(tmp_path, "trixie", MIRROR) is None
    lists = _lists(tmp_path)
    (lists / "deb.debian.org_debian_dists_sid_Release").write_text("Suite: unstable\n")
    (lists / "mirror_debian_dists_trixie_Release").write_text("Suite: stable\n")
    found = release.read_release(tmp_path, "trixie", MIRROR)
    assert found is not None and found.uri == f"{MIRROR}/dists/trixie/Release"
    assert (found.date, found.version) == ("", "")
    assert release.RELEASE_DATE_LABEL not in found.labels()


def test_a_made_base_is_labelled_with_the_archive_it_came_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def debootstrap(rootfs: Path, recipe: debian.DebianRecipe,
                    log: Path) -> tuple[tuple[str, ...], str]:
        (_lists(rootfs) / "deb.debian.org_debian_dists_trixie_InRelease").write_text(SIGNED)
        return ("iptables=1.8.11-2",), MIRROR

    def fake_run(argv: Sequence[object], **kwargs: object) -> object:
        return None if argv[0] == "chroot" else real_run(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(debian, "_debootstrap", debootstrap)
    monkeypatch.setattr(debian, "run", fake_run)
    monkeypatch.setattr(debian.os, "geteuid", lambda: 0)
    engine = FakeEngine()
    made = base.ensure_component_base(engine, tmp_path, "linux/amd64")
    labels = engine.labels(made.ref)
    assert labels is not None
    assert {k: labels[k] for k in ARCHIVE_LABELS} == ARCHIVE_LABELS
    assert labels["org.opencontainers.image.source"] == f"debootstrap trixie minbase from {MIRROR}"
    # the package lists (with the InRelease) are not shipped in the image
    assert not (tmp_path / "debian-rootfs").exists()


def _builder(ids: dict[str, str] | None = None) -> FakeBuilder:
    ids = ids or IDS
    return FakeBuilder(ids=ids, labels={image_id: ARCHIVE_LABELS for image_id in ids.values()})


def _make(tmp: Path, name: str, builder: FakeBuilder,
          previous: Path | None = None) -> list[ShippedImage]:
    return make_release_images(_out(tmp, name), _ctx(tmp), tmp / "work", builder, BASES,
                               previous)


def _manifest_and_config(archive: Path, platform: str) -> tuple[dict, dict]:  # type: ignore[type-arg]
    with tarfile.open(archive) as tar:
        def blob(digest: str) -> dict:  # type: ignore[type-arg]
            return json.load(tar.extractfile(f"blobs/sha256/{digest[7:]}"))  # type: ignore[arg-type]
        index = blob(json.load(tar.extractfile("index.json"))["manifests"][0]["digest"])  # type: ignore[arg-type]
        entry = next(m for m in index["manifests"]
                     if f"{m['platform']['os']}/{m['platform']['architecture']}" == platform)
        manifest = blob(entry["digest"])
        return manifest, blob(manifest["config"]["digest"])


def test_a_server_image_names_its_base_in_its_labels_annotations_and_images_json(
        tmp_path: Path) -> None:
    made = {i.component: i for i in _make(tmp_path, "out", _builder())}
    for platform, arch in (("linux/amd64", "amd64"), ("linux/arm64", "arm64")):
        manifest, config = _manifest_and_config(
            tmp_path / "out" / made["kube-proxy"].archive, platform)
        wanted = {"org.opencontainers.image.base.name": f"base:{arch}",
                  "org.opencontainers.image.base.digest": IDS[f"docker-daemon:base:{arch}"]}
        assert manifest["annotations"] == wanted
        assert {k: config["labels"][k] for k in wanted} == wanted
        # inherited from the base: the archive state a scanner follows back
        assert {k: config["labels"][k] for k in ARCHIVE_LABELS} == ARCHIVE_LABELS
        assert made["kube-proxy"].bases[platform] == {
            "name": f"base:{arch}", "digest": IDS[f"docker-daemon:base:{arch}"],
            "labels": ARCHIVE_LABELS}
    pause_manifest, pause_config = _manifest_and_config(
        tmp_path / "out" / made["pause"].archive, "linux/amd64")
    assert pause_manifest["annotations"] == {} and made["pause"].bases == {}
    assert not [k for k in pause_config["labels"] if k.startswith("org.opencontainers.image.base")]
    assert read_images_json(tmp_path / "out") == sorted(made.values(), key=lambda i: i.component)


def test_an_unchanged_base_reuses_the_images_and_a_new_base_rebuilds_the_servers(
        tmp_path: Path) -> None:
    first = _make(tmp_path, "published", _builder())
    same = _make(tmp_path, "same", _builder(), previous=tmp_path / "published")
    assert [i.reused for i in same] == [True] * 3
    assert [i.bases for i in same] == [i.bases for i in first]
    assert (tmp_path / "same/images/images.json").read_bytes() == (
        tmp_path / "published/images/images.json").read_bytes()
    remade = {**IDS, "docker-daemon:base:arm64": "sha256:" + "3" * 64}
    moved = _make(tmp_path, "moved", _builder(remade), previous=tmp_path / "published")
    assert {i.component: i.reused for i in moved} == {
        "kube-apiserver": False, "kube-proxy": False, "pause": True}
    proxy = next(i for i in moved if i.component == "kube-proxy")
    assert proxy.bases["linux/arm64"]["digest"] == "sha256:" + "3" * 64


def test_the_provenance_lists_each_base_and_the_inrelease_as_materials(
        tmp_path: Path) -> None:
    made = _make(tmp_path, "out", _builder())
    out, ctx = tmp_path / "out", _ctx(tmp_path)
    shipped = [image.to_json() for image in made if image.component != "kube-apiserver"]
    statement = json.loads(write_provenance(out, ctx, release_subjects({}, shipped)).read_text())
    jsonschema.validate(statement, STATEMENT_SCHEMA)
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert [d.get("name") for d in deps[:2]] == ["kubernetes", ctx.builder_image]
    bases = {d["name"]: d for d in deps if d.get("name", "").startswith("base:")}
    assert bases == {f"base:{arch}": {
        "name": f"base:{arch}", "digest": {"sha256": IDS[f"docker-daemon:base:{arch}"][7:]},
        "annotations": {"digestOf": "image id (config digest)", "platforms": [f"linux/{arch}"],
                        "debianSuite": "trixie", "debianMirror": MIRROR,
                        "debianRelease": INRELEASE_URI}} for arch in ("amd64", "arm64")}
    # both bases came from the same InRelease: listed once
    assert [d for d in deps if "uri" in d and d["uri"].startswith(MIRROR)] == [{
        "uri": INRELEASE_URI, "digest": {"sha256": INRELEASE_SHA[7:]},
        "annotations": {"date": "Sat, 21 Nov 2026 09:15:44 UTC", "version": "13.8"}}]


def test_the_provenance_lists_no_base_of_an_image_that_is_not_a_subject(
        tmp_path: Path) -> None:
    made = _make(tmp_path, "out", _builder())
    pause = [image.to_json() for image in made if image.component == "pause"]
    statement = json.loads(write_provenance(tmp_path / "out", _ctx(tmp_path),
                                            release_subjects({}, pause)).read_text())
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert [d.get("name") for d in deps] == ["kubernetes", "builder"]


def test_buildah_sets_the_annotations_and_reads_an_images_labels(tmp_path: Path) -> None:
    log = tmp_path / "argv"
    inspected = json.dumps({"OCIv1": {"config": {"Labels": ARCHIVE_LABELS}}})
    fake = _fake_buildah(tmp_path, f"echo \"$@\" >> {log}\ncat <<'EOF'\n{inspected}\nEOF\n")
    builder = Buildah(tmp_path / "oci", str(fake))
    assert builder.image_labels("sha256:" + "1" * 64) == ARCHIVE_LABELS
    assert builder.image_labels("scratch") == {}
    builder.config("c1", ImageConfig("linux", "amd64", {"a": "b"},
                                     annotations={"org.opencontainers.image.base.name": "x"}))
    lines = log.read_text().splitlines()
    assert lines[0].endswith(f"inspect --type image sha256:{'1' * 64}")
    assert lines[1].endswith("config --os linux --arch amd64 --label a=b "
                             "--annotation org.opencontainers.image.base.name=x c1")
    assert len(lines) == 2


def _build(repo: Path) -> str:
    result = CliRunner().invoke(app, ["--root", str(repo), "build", "1.20", "--json"])
    assert result.exit_code == 0, result.output
    status: str = json.loads(result.stdout)["status"]
    return status


def test_a_second_build_is_up_to_date_and_a_moved_base_remakes_the_images(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    made: list[Any] = []
    faked = finish.make_images  # test_release_operation's fake: one small archive per image
    monkeypatch.setattr(finish, "make_images", lambda *a: made.append(1) or faked(*a))
    assert (_build(root), _build(root), len(made)) == ("built", "up_to_date", 1)
    monkeypatch.setattr(base, "SUITE", "forky")  # the next Debian: the bases' recipe moved
    assert (_build(root), len(made)) == ("finished", 2)
    assert _build(root) == "up_to_date"
