"""`tkedistro builder-image` and `host-setup` decisions, with a fake engine, runner and procfs."""

from __future__ import annotations

import ast
import json
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO
from tests.helpers.engines import fake_engines, use_engines
from tkedistro.build import builderimage
from tkedistro.cli.app import app
from tkedistro.core.errors import BuilderImageError
from tkedistro.core.runner import Result
from tkedistro.core.workspace import Workspace
from tkedistro.debian import debootstrap
from tkedistro.debian.rootfs import INPUTS_LABEL
from tkedistro.engine.protocols import BuiltImage, ContainerSpec, ImageInfo, RunResult
from tkedistro.images.base import base_recipe
from tkedistro.setup import hostsetup, packages

runner = CliRunner()
IMAGE = "tkedistro/builder:go1.15-bullseye"
ENTRY = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n"


@dataclass
class FakeSession:
    go: str
    missing: str = ""
    ran: list[tuple[str, ...]] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, log: Path | None = None) -> RunResult:
        self.ran.append(tuple(argv))
        return RunResult(tuple(argv), 0, self.go if argv[0] == "go" else self.missing)


@dataclass
class FakeEngine:
    """ImageEngine and ContainerBackend at once: labels per ref, `go version` in sessions."""

    images: dict[str, dict[str, str]]
    go: str = "go version go1.15.15 linux/amd64\n"
    name: str = "fake"
    sessions: list[FakeSession] = field(default_factory=list)

    def labels(self, ref: str) -> Mapping[str, str] | None:
        return self.images.get(ref)

    def check_available(self) -> None:
        pass

    def image_info(self, image: str) -> ImageInfo | None:
        return ImageInfo(image, "sha256:" + "a" * 64) if image in self.images else None

    @contextmanager
    def session(self, spec: ContainerSpec) -> Iterator[FakeSession]:
        self.sessions.append(FakeSession(self.go))
        yield self.sessions[-1]

    def import_rootfs(self, *args: Any, **kwargs: Any) -> BuiltImage:
        raise AssertionError("nothing is debootstrapped in these tests")


def _repo(tmp_path: Path, go: str = "1.15.15") -> Path:
    root = tmp_path / "distro"
    shutil.copytree(REPO / "releases", root / "releases")
    manifest = root / "releases" / "1.20.yaml"
    manifest.write_text(manifest.read_text().replace('version: "1.15.15"', f'version: "{go}"'))
    return root


def _request() -> builderimage.BuilderRequest:
    return builderimage.BuilderRequest("1.20", "releases/1.20.yaml", IMAGE, "1.15.15",
                                       ("linux/amd64", "linux/arm64"), pause=True)


def test_the_go_1_15_recipe_is_what_the_old_script_installed() -> None:
    recipe = builderimage.builder_recipe(IMAGE, "1.15.15", "releases/1.20.yaml")
    assert recipe.ref == IMAGE and recipe.suite == "bullseye"
    assert recipe.packages == ("golang-1.15-go", "gcc", "libc6-dev", "make", "git", "rsync",
                               "ca-certificates", "bash", "gcc-aarch64-linux-gnu",
                               "libc6-dev-arm64-cross")
    assert recipe.setup == (("ln", "-sf", "/usr/lib/go-1.15/bin/go", "/usr/local/bin/go"),
                            ("ln", "-sf", "/usr/lib/go-1.15/bin/gofmt", "/usr/local/bin/gofmt"))
    assert recipe.changes[:2] == (
        "ENV PATH=/usr/local/bin:/usr/lib/go-1.15/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV HOME=/tmp")
    assert recipe.version_labels == (("org.tkedistro.go-version", "golang-1.15-go"),)
    # the digest is the recipe's, not the name's: any 1.15.x pin gives the same image
    other = builderimage.builder_recipe("x/y:z", "1.15", "releases/1.20.yaml")
    assert other.inputs_digest("http://m") == recipe.inputs_digest("http://m")


def test_a_go_line_without_an_offline_source_is_refused_naming_the_release_file(
        tmp_path: Path) -> None:
    result = runner.invoke(app, ["--root", str(_repo(tmp_path, "1.16.15")), "builder-image"])
    assert result.exit_code == 10
    assert result.stderr.splitlines() == [
        "error: releases/1.20.yaml: go.version 1.16.15: tkedistro knows no offline source for "
        "Go 1.16; known lines: Go 1.15 (Debian bullseye golang-1.15-go)",
        "hint: make an image with Go 1.16 elsewhere and name it in builder.image of "
        "releases/1.20.yaml, or pass --builder-image IMAGE to the build"]


def test_decisions_reuse_keep_or_make() -> None:
    decide = builderimage.decide
    assert decide(None, "d", "1.15.15") == "missing"
    assert decide({INPUTS_LABEL: "d"}, "d", "1.15.15") == "reused"
    assert decide({INPUTS_LABEL: "d"}, "d", "1.15.15", force=True) == "force"
    assert decide({INPUTS_LABEL: "old"}, "d", "1.15.15") == "stale"
    assert decide({"org.tkedistro.go-version": "1.15.15"}, "d", "1.15.15") == "older"
    assert decide({"org.tkedistro.go-version": "1.15.15"}, "d", "1.15") == "older"
    assert decide({"org.tkedistro.go-version": "1.16.1"}, "d", "1.15.15") == "stale"
    assert builderimage.name_warning("b:go1.15-bullseye", "1.16.3") == (
        "builder image b:go1.15-bullseye is named for Go 1.15, but it is made with Go 1.16 "
        "(go.version 1.16.3)")
    assert builderimage.name_warning(IMAGE, "1.15.15") == ""


def test_an_image_from_the_old_script_is_kept_after_its_checks(tmp_path: Path) -> None:
    fake = FakeEngine({IMAGE: {"org.tkedistro.go-version": "1.15.15"}})
    made = builderimage.ensure_builder_image(fake, fake, tmp_path, _request())
    assert (made.action, made.detail) == (
        "kept", "kept (made by an older tkedistro; Go 1.15.15, commands checked)")
    assert [argv[0] for argv in fake.sessions[0].ran] == ["go", "sh"]


def test_a_missing_image_needs_root_and_says_how(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    fake = FakeEngine({})
    with pytest.raises(BuilderImageError) as caught:
        builderimage.ensure_builder_image(fake, fake, tmp_path, _request())
    assert caught.value.message == (
        f"the builder image {IMAGE} of releases/1.20.yaml is missing, and making it needs "
        "root (debootstrap)")
    assert caught.value.hint == ("run `sudo tkedistro builder-image 1.20`, or make it "
                                 "elsewhere and pass --builder-image IMAGE to the build")


# `apt-cache showpkg` of a real package, and of Ubuntu 26.04's virtual qemu-user-static
# (apt ends its section headers with ": ", a trailing space)
LISTS = "/var/lib/apt/lists/archive.ubuntu.com_ubuntu_dists_noble_main_binary-amd64_Packages"
REAL_PKG = "\n".join([
    "Package: {name}", "Versions: ", f"1.0-1 ({LISTS})", " Description Language: ",
    f"                 File: {LISTS}", "", "", "Reverse Depends: ", "Dependencies: ",
    "1.0-1 - libc6 (2 2.34)", "Provides: ", "1.0-1 - ", "Reverse Provides: ", ""])
VIRTUAL_QEMU = "\n".join([
    "Package: qemu-user-static", "Versions: ", "", "Reverse Depends: ",
    "  qemu-user-binfmt-hwe,qemu-user-static", "  qemu-user-binfmt,qemu-user-static",
    "Dependencies: ", "Provides: ", "Reverse Provides: ",
    "qemu-user-binfmt-hwe 1:10.1.0+ds-5ubuntu3 (= 1:10.1.0+ds-5ubuntu3)",
    "qemu-user-binfmt 1:10.1.0+ds-5ubuntu2 (= 1:10.1.0+ds-5ubuntu2)", ""])
CONF_LINE = (r":qemu-aarch64:F::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"
             r"\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff"
             r"\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64:FCP")


@dataclass
class FakeApt:
    """What apt knows: ``virtual`` packages (their showpkg text) and ``unknown`` ones; an
    install makes the packages' programs present (and, for ``binfmt_d``, a binfmt.d file)."""

    virtual: dict[str, str] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    binfmt_d: dict[str, str] = field(default_factory=dict)  # package -> qemu-aarch64.conf

    def showpkg(self, names: Sequence[str]) -> str:
        return "".join(self.virtual.get(n) or REAL_PKG.format(name=n) for n in names
                       if n not in self.unknown)


def _host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, present: set[str],
          mounted: bool = True, entry: str | None = ENTRY, keyring: bool = True,
          apt: FakeApt | None = None) -> tuple[Path, list[list[str]]]:
    """A fake procfs, ``which`` that knows ``present``, Debian's keyring (or not), an empty
    binfmt.d, and a runner that records argv (an apt-get install makes its packages'
    programs present; a write to ``register`` registers the entry)."""
    apt = apt or FakeApt()
    procfs = tmp_path / "binfmt_misc"
    procfs.mkdir()
    if mounted:
        (procfs / "status").write_text("enabled\n")
        if entry:
            (procfs / "qemu-aarch64").write_text(entry)
    conf_dir = tmp_path / "binfmt.d"
    conf_dir.mkdir()
    key = tmp_path / "keyrings" / "debian-archive-keyring.gpg"
    if keyring:
        key.parent.mkdir()
        key.write_bytes(b"keys")
    ran: list[list[str]] = []

    def fake_run(argv: Sequence[Any], **kwargs: Any) -> Result:
        ran.append([str(a) for a in argv])
        if argv[:2] == ["apt-cache", "showpkg"]:
            return Result(tuple(argv), 0, apt.showpkg(argv[2:]), "")
        if argv[:2] == ["apt-get", "install"]:
            present.update(r.program for r in packages.requirements(["linux/arm64"])
                           if r.package in argv)
            if "debian-archive-keyring" in argv:
                key.parent.mkdir(exist_ok=True)
                key.write_bytes(b"keys")
            for package, text in apt.binfmt_d.items():
                if package in argv:
                    (conf_dir / "qemu-aarch64.conf").write_text(text)
        if argv[0] == "update-binfmts" or argv[:2] == ["tee", str(procfs / "register")]:
            (procfs / "status").write_text("enabled\n")
            (procfs / "qemu-aarch64").write_text(ENTRY)
            ran[-1].append(f"<<{kwargs.get('input')!r}")
        return Result(tuple(argv), 0, "", "")

    monkeypatch.setattr(packages.shutil, "which",
                        lambda name: f"/usr/bin/{name}" if name in present else None)
    monkeypatch.setattr(packages, "run", fake_run)
    monkeypatch.setattr(packages, "BINFMT_CONF_DIRS", (conf_dir,))
    monkeypatch.setattr(debootstrap, "KEYRING", key)
    monkeypatch.setattr(packages.emulation, "host_platform", lambda: "linux/amd64")
    monkeypatch.setattr(packages.emulation, "host_arch", lambda machine=None: "amd64")
    return procfs, ran


def _images() -> dict[str, dict[str, str]]:
    recipe = builderimage.builder_recipe(IMAGE, "1.15.15", "releases/1.20.yaml")
    images = {IMAGE: {INPUTS_LABEL: recipe.inputs_digest()}}
    for platform in ("linux/amd64", "linux/arm64"):
        base = base_recipe(platform)
        images[base.ref] = {INPUTS_LABEL: base.inputs_digest()}
    return images


def test_check_lists_what_is_missing_with_the_fix_and_exits_19(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    procfs, ran = _host(tmp_path, monkeypatch, {"debootstrap", "buildah", "apt-get"},
                        mounted=False)
    fake = FakeEngine({})
    monkeypatch.setattr(packages.emulation, "BINFMT_DIR", procfs)
    monkeypatch.setattr(hostsetup.emulation, "BINFMT_DIR", procfs)
    ws = Workspace.discover(_repo(tmp_path))
    report = hostsetup.setup_host(ws, [], fake_engines(fake, fake), check_only=True,
                                  binfmt_dir=procfs)
    lines = report.format_text().splitlines()
    assert lines[0] == ("BAD  host packages                  missing binfmt-support "
                        "docker-registry qemu-user-static skopeo")
    assert lines[1] == "                                    fix: sudo tkedistro host-setup"
    assert lines[2].startswith("BAD  emulation linux/arm64          linux/arm64 binaries cannot")
    assert f"binfmt_misc is not mounted at {procfs}" in lines[2]
    assert f"BAD  builder image 1.20             {IMAGE} missing" in lines
    assert "                                    fix: sudo tkedistro builder-image 1.20" in lines
    assert ("BAD  component base linux/arm64     tkedistro/component-base:trixie-arm64 "
            "missing or out of date") in lines
    assert ran == []  # --check changes nothing
    assert not report.ready


def test_setup_installs_registers_then_a_second_run_does_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    present = {"debootstrap", "buildah", "apt-get"}
    procfs, ran = _host(tmp_path, monkeypatch, present, mounted=False)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    fake = FakeEngine(_images())
    ws = Workspace.discover(_repo(tmp_path))
    report = hostsetup.setup_host(ws, [], fake_engines(fake, fake), binfmt_dir=procfs)
    missing = ["binfmt-support", "docker-registry", "qemu-user-static", "skopeo"]
    assert ran == [["apt-get", "update", "-qq"],
                   ["apt-cache", "showpkg", *missing],
                   ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                   ["mount", "-t", "binfmt_misc", "binfmt_misc", str(procfs)],
                   ["update-binfmts", "--enable", "qemu-aarch64", "<<None"]]
    assert report.ready
    assert report.done == ("installed " + " ".join(missing),
                           "registered qemu-aarch64 with binfmt_misc")
    ran.clear()
    again = hostsetup.setup_host(ws, [], fake_engines(fake, fake), binfmt_dir=procfs)
    assert ran == [] and again.done == ()
    assert again.format_text().splitlines()[-1] == "nothing to do: this host is ready"
    assert json.loads(json.dumps(again.to_json()))["ready"] is True


def test_no_foreign_platform_needs_no_qemu(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _host(tmp_path, monkeypatch, set())
    assert packages.missing_packages([]) == ["buildah", "debootstrap", "docker-registry",
                                             "skopeo"]
    assert "qemu-user-static" in packages.missing_packages(["linux/arm64"])


def _literals(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            yield node.value


def test_no_hint_names_a_script_or_make_target_a_pip_install_lacks() -> None:
    gone = ("scripts/make-builder-image.sh", "scripts/install-host-tools.sh",
            "scripts/install-conformance-host.sh", "make install", "make engine",
            "make host-tools", "make builder-image", "make conformance-host")
    found = [(path.name, text) for path in sorted((REPO / "tkedistro").rglob("*.py"))
             for text in _literals(path) if any(g in text for g in gone)]
    assert found == []


def test_the_go_label_is_the_packages_upstream_version() -> None:
    from tkedistro.debian.rootfs import upstream_version

    assert upstream_version("1.15.15-1~deb11u4") == "1.15.15"
    assert upstream_version("2:1.16.3-1") == "1.16.3"
    assert upstream_version("20210119") == "20210119"


def test_a_host_without_debians_keyring_is_not_ready_and_setup_installs_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    procfs, ran = _host(tmp_path, monkeypatch, {"debootstrap", "buildah", "skopeo",
                                                "docker-registry", "apt-get", "update-binfmts",
                                                "qemu-aarch64-static"}, keyring=False)
    use_engines(monkeypatch, containers=FakeEngine(_images()), images=FakeEngine(_images()))
    monkeypatch.setattr(hostsetup.emulation, "BINFMT_DIR", procfs)
    root = _repo(tmp_path)
    checked = runner.invoke(app, ["--root", str(root), "host-setup", "--check"])
    assert checked.exit_code == 19
    assert checked.stdout.splitlines()[0] == (
        "BAD  host packages                  missing debian-archive-keyring")
    monkeypatch.setattr("os.geteuid", lambda: 0)
    made = runner.invoke(app, ["--root", str(root), "host-setup"])
    assert made.exit_code == 0, made.output
    assert made.stdout.splitlines()[0] == "done: installed debian-archive-keyring"
    assert ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
            "debian-archive-keyring"] in ran


def test_ubuntu_26_04_gets_a_real_provider_of_qemu_user_static_and_its_binfmt_d_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """26.04: qemu-user-static is virtual (two providers, apt refuses it), qemu >= 10 ships
    /usr/lib/binfmt.d/qemu-aarch64.conf and no update-binfmts registration."""
    apt = FakeApt(virtual={"qemu-user-static": VIRTUAL_QEMU},
                  binfmt_d={"qemu-user-binfmt": f"# qemu 10\n{CONF_LINE}\n"})
    procfs, ran = _host(tmp_path, monkeypatch, {"debootstrap", "buildah", "skopeo",
                                                "docker-registry", "apt-get",
                                                "update-binfmts"}, entry=None, apt=apt)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    fake = FakeEngine(_images())
    ws = Workspace.discover(_repo(tmp_path))
    report = hostsetup.setup_host(ws, [], fake_engines(fake, fake), binfmt_dir=procfs)
    assert ran[1:] == [
        ["apt-cache", "showpkg", "qemu-user-static"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "qemu-user-binfmt"],
        ["tee", str(procfs / "register"), f"<<{CONF_LINE + chr(10)!r}"]]
    assert report.done == ("installed qemu-user-binfmt (for qemu-user-static)",
                           "registered qemu-aarch64 with binfmt_misc")
    assert report.ready
    # installed and registered: a second run finds nothing to do
    ran.clear()
    again = hostsetup.setup_host(ws, [], fake_engines(fake, fake), binfmt_dir=procfs)
    assert ran == [] and again.format_text().splitlines() == [
        *again.format_text().splitlines()[:-1], "nothing to do: this host is ready"]


def test_an_entry_left_without_the_f_flag_is_removed_before_the_binfmt_d_line(
        tmp_path: Path) -> None:
    conf = tmp_path / "binfmt.d"
    conf.mkdir()
    (conf / "qemu-aarch64.conf").write_text(f"; comment\n\n{CONF_LINE}\n")
    procfs = tmp_path / "binfmt_misc"
    procfs.mkdir()
    (procfs / "status").write_text("enabled\n")
    (procfs / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: \n")
    assert packages.binfmt_fix("linux/arm64", procfs, [conf]) == [
        (["tee", str(procfs / "qemu-aarch64")], "-1\n"),
        (["tee", str(procfs / "register")], CONF_LINE + "\n")]
    # no binfmt.d file (qemu < 10 without one): update-binfmts, as before
    assert packages.binfmt_fix("linux/arm64", procfs, [tmp_path / "none"]) == [
        (["update-binfmts", "--enable", "qemu-aarch64"], None)]


def test_the_hwe_provider_is_taken_only_when_it_is_the_only_one() -> None:
    entries = packages.parse_showpkg(VIRTUAL_QEMU + REAL_PKG.format(name="skopeo"))
    assert entries == {"qemu-user-static": (False, ["qemu-user-binfmt-hwe", "qemu-user-binfmt"]),
                       "skopeo": (True, [])}
    assert packages.pick_provider(["qemu-user-binfmt-hwe", "qemu-user-binfmt"]) == \
        "qemu-user-binfmt"
    assert packages.pick_provider(["qemu-user-binfmt-hwe"]) == "qemu-user-binfmt-hwe"


def test_a_package_apt_does_not_know_says_to_enable_universe(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    procfs, ran = _host(tmp_path, monkeypatch, {"debootstrap", "buildah", "skopeo", "apt-get"},
                        apt=FakeApt(unknown={"docker-registry"}))
    use_engines(monkeypatch, containers=FakeEngine(_images()), images=FakeEngine(_images()))
    monkeypatch.setattr(hostsetup.emulation, "BINFMT_DIR", procfs)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    result = runner.invoke(app, ["--root", str(_repo(tmp_path)), "host-setup"])
    assert result.exit_code == 19
    assert result.stderr.splitlines()[-2:] == [
        "error: apt knows no package docker-registry (after apt-get update)",
        "hint: on Ubuntu, docker-registry, buildah, skopeo and qemu-user-static are in the "
        "universe component: `sudo add-apt-repository universe` (or add universe to the "
        "sources), then run host-setup again"]
    assert not any(argv[:2] == ["apt-get", "install"] for argv in ran)


# `apt-cache showpkg` of host-setup's whole package list, captured from Ubuntu's own indexes
# (archive.ubuntu.com, main + universe, amd64, December 2026): 24.04 has a real
# qemu-user-static; on 26.04 it is virtual (qemu-user-binfmt, qemu-user-binfmt-hwe), and
# `apt-get install qemu-user-static` there says "has no installation candidate".
UBUNTU_PACKAGES = ["debootstrap", "debian-archive-keyring", "docker-registry", "buildah",
                   "skopeo", "qemu-user-static", "binfmt-support"]


@pytest.mark.parametrize(("suite", "qemu"), [("noble", "qemu-user-static"),
                                             ("resolute", "qemu-user-binfmt")])
def test_ubuntu_runner_package_sets_resolve_to_installable_packages(suite: str,
                                                                    qemu: str) -> None:
    from tkedistro.setup.packages import resolve_packages

    showpkg = (REPO / "tests/unit/data/apt" / f"showpkg-ubuntu-{suite}.txt").read_text()
    resolved = resolve_packages(UBUNTU_PACKAGES, showpkg)
    assert resolved == [qemu if p == "qemu-user-static" else p for p in UBUNTU_PACKAGES]
