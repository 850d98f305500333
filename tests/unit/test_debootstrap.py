"""debootstrap as a user meets it: the Release signature always verified, the mirror from
``--debian-mirror`` > ``debian.mirror`` > ``DEBIAN_MIRROR`` > deb.debian.org, the archive mirror
for an end-of-life suite, and a failed run's log kept in the cache.

A fake ``debootstrap`` and ``chroot`` on PATH stand in for the real ones (the real run is in
the report of issue 26); the engine is a fake that records the import.
"""

from __future__ import annotations

import datetime
import json
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO
from tests.helpers.engines import use_engines
from tests.unit.test_host_setup import FakeEngine
from tkedistro.build import builderimage
from tkedistro.cli.app import app
from tkedistro.debian import debootstrap, source
from tkedistro.debian.rootfs import SOURCE_LABEL
from tkedistro.engine.protocols import BuiltImage

runner = CliRunner()
IMAGE = "tkedistro/builder:go1.15-bullseye"
ARCHIVE = "http://archive.debian.org/debian"
FAKE_DEBOOTSTRAP = textwrap.dedent("""\
    #!/usr/bin/env python3
    # A stand-in for debootstrap: its behaviour per mirror comes from modes.json.
    import json, os, pathlib, sys
    here = pathlib.Path(__file__).parent
    args = sys.argv[1:]
    with open(here / "ran.jsonl", "a") as record:
        record.write(json.dumps(args) + "\\n")
    suite, target, mirror = args[-3:]
    mode = json.loads((here / "modes.json").read_text()).get(mirror, "ok")
    root = pathlib.Path(target)
    (root / "debootstrap").mkdir(parents=True, exist_ok=True)
    (root / "debootstrap" / "debootstrap.log").write_text(f"debootstrap's own log ({mirror})\\n")
    print("I: Retrieving InRelease")
    if mode == "norelease":
        print(f"E: Failed getting release file {mirror}/dists/{suite}/InRelease", file=sys.stderr)
        sys.exit(1)
    if mode == "badpackage":
        print("E: Couldn't find these debs: golang-1.15-go", file=sys.stderr)
        sys.exit(1)
    if mode == "badsignature":
        print("E: Release signed by unknown key (key id 6ED0E7B82643E131)", file=sys.stderr)
        sys.exit(1)
    if mode == "unverified":
        print("W: Cannot check Release signature; keyring file not available /x.gpg",
              file=sys.stderr)
    (root / "etc/apt").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list").write_text(f"deb {mirror} {suite} main\\n")
    print("I: Base system installed successfully.")
""")
FAKE_CHROOT = textwrap.dedent("""\
    #!/bin/sh
    # chroot ROOT dpkg-query ...: the installed packages; anything else succeeds
    if [ "$2" = dpkg-query ]; then
      printf 'golang-1.15-go=1.15.15-1~deb11u4\\nbash=5.1-2\\n'
    fi
""")


@dataclass
class ImportingEngine(FakeEngine):
    """The host-setup fake engine, which also takes an imported root filesystem."""

    imported: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def import_rootfs(self, rootfs_tar: Path, tag: str, changes: Any = (),
                      platform: str = "") -> BuiltImage:
        self.imported.append((tag, tuple(changes)))
        self.images[tag] = {}
        return BuiltImage(tag, "sha256:" + "b" * 64)


@dataclass
class Host:
    bin: Path
    keyring: Path
    cache: Path
    engine: ImportingEngine

    def modes(self, **by_mirror: str) -> None:
        (self.bin / "modes.json").write_text(json.dumps(by_mirror))

    def ran(self) -> list[list[str]]:
        record = self.bin / "ran.jsonl"
        if not record.exists():
            return []
        return [json.loads(line) for line in record.read_text().splitlines()]

    def logs(self) -> list[Path]:
        return sorted((self.cache / "logs").glob("*.log"))


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    """Root, a fake debootstrap and chroot first on PATH, Debian's keyring, a fake engine
    without the builder image, no DEBIAN_MIRROR, bullseye past its end of life."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, text in (("debootstrap", FAKE_DEBOOTSTRAP), ("chroot", FAKE_CHROOT)):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    (folder / "modes.json").write_text("{}")
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    monkeypatch.delenv("DEBIAN_MIRROR", raising=False)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    keyring = tmp_path / "keyrings" / "debian-archive-keyring.gpg"
    keyring.parent.mkdir()
    keyring.write_bytes(b"keys")
    monkeypatch.setattr(debootstrap, "KEYRING", keyring)
    monkeypatch.setattr(source, "EOL", {"bullseye": datetime.date(2026, 8, 31)})
    engine = ImportingEngine({})
    use_engines(monkeypatch, containers=engine, images=engine)
    return Host(folder, keyring, tmp_path / "cache", engine)


def _repo(tmp_path: Path, extra: str = "", name: str = "1.20") -> Path:
    root = tmp_path / "distro"
    (root / "releases").mkdir(parents=True, exist_ok=True)
    text = (REPO / "releases" / "1.20.yaml").read_text().replace('release: "1.20"',
                                                                  f'release: "{name}"')
    (root / "releases" / f"{name}.yaml").write_text(text + extra)
    return root


def _error(result: Any) -> list[str]:
    """What the command printed from its error on (after the progress lines)."""
    lines = result.stderr.splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith("error: ")):]


def _builder_image(tmp_path: Path, host: Host, *args: str) -> Any:
    return runner.invoke(app, ["--root", str(_repo(tmp_path)), "--cache-dir", str(host.cache),
                               "builder-image", "1.20", *args])


def test_every_debootstrap_verifies_the_release_signature_against_debians_keyring(
        tmp_path: Path, host: Host) -> None:
    result = _builder_image(tmp_path, host, "--debian-mirror", "https://mirror.example/debian")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith(f"1.20: {IMAGE} made (Go 1.15.15")
    [argv] = host.ran()
    assert argv[:3] == ["--variant=minbase", f"--keyring={host.keyring}", "--force-check-gpg"]
    assert argv[-3:-1] == ["bullseye", str(tmp_path / "cache/builder-images/debian-rootfs")]
    assert argv[-1] == "https://mirror.example/debian"
    assert "--no-check-gpg" not in argv
    [(tag, changes)] = host.engine.imported
    assert f"LABEL {SOURCE_LABEL}=" + json.dumps(
        "debootstrap bullseye minbase from https://mirror.example/debian") in changes


def test_without_debians_keyring_nothing_is_debootstrapped(tmp_path: Path, host: Host) -> None:
    host.keyring.unlink()
    result = _builder_image(tmp_path, host)
    assert result.exit_code == 19
    assert result.stderr.splitlines()[-2:] == [
        f"error: {host.keyring} is missing: debootstrap cannot verify the Debian Release "
        "signature without it, and tkedistro does not install unverified packages",
        "hint: install the debian-archive-keyring package (sudo tkedistro host-setup, or "
        "apt-get install debian-archive-keyring)"]
    assert host.ran() == [] and host.engine.imported == []


def test_a_release_debootstrap_could_not_check_is_refused_and_its_log_kept(
        tmp_path: Path, host: Host) -> None:
    host.modes(**{source.DEFAULT_MIRROR: "unverified"})
    result = _builder_image(tmp_path, host)
    assert result.exit_code == 11
    [kept] = host.logs()
    assert kept.name.startswith("debootstrap-bullseye-host-")
    assert _error(result)[0] == (
        f"error: debootstrap bullseye from {source.DEFAULT_MIRROR} did not verify the Release "
        f"signature (log: {kept})")
    assert "W: Cannot check Release signature" in result.stderr
    assert host.engine.imported == []  # nothing unverified becomes an image
    text = kept.read_text()
    assert text.startswith("$ debootstrap --variant=minbase --keyring=")
    assert "W: Cannot check Release signature" in text
    assert "debootstrap's own log (http://deb.debian.org/debian)" in text


def test_a_failed_debootstrap_keeps_its_log_and_names_it(tmp_path: Path, host: Host) -> None:
    host.modes(**{source.DEFAULT_MIRROR: "badpackage"})
    result = _builder_image(tmp_path, host)
    assert result.exit_code == 11
    [kept] = host.logs()
    assert _error(result)[0] == (
        f"error: debootstrap bullseye from {source.DEFAULT_MIRROR} failed (log: {kept})")
    assert result.stderr.splitlines()[-1].startswith(
        "hint: check that the mirror answers (from the default; --debian-mirror URL picks "
        "another) and the package names exist in bullseye: golang-1.15-go,gcc,")
    text = kept.read_text()
    assert "exit code 1" in text and "E: Couldn't find these debs: golang-1.15-go" in text
    assert f"--- {tmp_path}/cache/builder-images/debian-rootfs/debootstrap/debootstrap.log" \
        in text
    assert "debootstrap's own log" in text


def test_an_end_of_life_suite_the_default_mirror_lacks_comes_from_the_archive_mirror(
        tmp_path: Path, host: Host) -> None:
    host.modes(**{source.DEFAULT_MIRROR: "norelease"})
    result = _builder_image(tmp_path, host)
    assert result.exit_code == 0, result.output
    assert (f"warning: {source.DEFAULT_MIRROR} has no bullseye (end of life 2026-08-31); "
            f"fetching it from the archive mirror {ARCHIVE}") in result.stderr
    assert [argv[-1] for argv in host.ran()] == [source.DEFAULT_MIRROR, ARCHIVE]
    assert all(f"--keyring={host.keyring}" in argv for argv in host.ran())
    [(_, changes)] = host.engine.imported
    assert f"LABEL {SOURCE_LABEL}=" + json.dumps(
        f"debootstrap bullseye minbase from {ARCHIVE}") in changes
    # the inputs are what was asked for: the next run reuses the image, no debootstrap
    recipe = builderimage.builder_recipe(IMAGE, "1.15.15", "releases/1.20.yaml")
    assert dict(c.split(" ", 1)[1].split("=", 1) for c in changes
                if c.startswith("LABEL org.tkedistro.inputs="))[
        "org.tkedistro.inputs"] == json.dumps(recipe.inputs_digest())


def test_a_mirror_the_user_chose_is_not_replaced_the_error_names_the_archive_mirror(
        tmp_path: Path, host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBIAN_MIRROR", "http://mirror.example/debian")
    host.modes(**{"http://mirror.example/debian": "norelease"})
    result = _builder_image(tmp_path, host)
    assert result.exit_code == 11
    [kept] = host.logs()
    assert _error(result)[0] == (
        f"error: debootstrap bullseye from http://mirror.example/debian failed (log: {kept})")
    assert result.stderr.splitlines()[-1] == (
        "hint: bullseye reached its end of life on 2026-08-31 and http://mirror.example/debian "
        f"(from DEBIAN_MIRROR) no longer has it: use the archive mirror, --debian-mirror "
        f"{ARCHIVE} (or debian.mirror in the release manifest)")
    assert len(host.ran()) == 1


def test_a_suite_still_supported_is_never_fetched_from_the_archive(
        tmp_path: Path, host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "EOL", {})
    host.modes(**{source.DEFAULT_MIRROR: "norelease"})
    result = _builder_image(tmp_path, host)
    assert result.exit_code == 11
    assert [argv[-1] for argv in host.ran()] == [source.DEFAULT_MIRROR]
    assert result.stderr.splitlines()[-1] == (
        f"hint: {source.DEFAULT_MIRROR} (from the default) has no bullseye: check that the mirror "
        "answers, or pick another with --debian-mirror URL")


def test_the_mirror_comes_from_the_option_then_the_manifest_then_the_environment(
        tmp_path: Path, host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBIAN_MIRROR", "http://env.example/debian")
    root = _repo(tmp_path, "debian:\n  mirror: http://manifest.example/debian\n")
    base = ["--root", str(root), "--cache-dir", str(host.cache), "builder-image", "--force"]
    assert runner.invoke(app, base).exit_code == 0
    assert runner.invoke(app, [*base, "--debian-mirror", "http://option.example/d"]
                         ).exit_code == 0
    (root / "releases/1.20.yaml").write_text((REPO / "releases/1.20.yaml").read_text())
    assert runner.invoke(app, base).exit_code == 0
    monkeypatch.delenv("DEBIAN_MIRROR")
    assert runner.invoke(app, base).exit_code == 0
    assert [argv[-1] for argv in host.ran()] == [
        "http://manifest.example/debian", "http://option.example/d",
        "http://env.example/debian", source.DEFAULT_MIRROR]


def test_releases_naming_different_mirrors_need_the_option(tmp_path: Path, host: Host) -> None:
    _repo(tmp_path, "debian:\n  mirror: http://one.example/debian\n")
    root = _repo(tmp_path, "debian:\n  mirror: http://two.example/debian\n", name="1.21")
    result = runner.invoke(app, ["--root", str(root), "host-setup", "--check"])
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-2:] == [
        "error: the releases name different Debian mirrors (releases/1.20.yaml: debian.mirror "
        "http://one.example/debian; releases/1.21.yaml: debian.mirror "
        "http://two.example/debian)",
        "hint: run them one release at a time, or pick one mirror with --debian-mirror URL"]


@pytest.mark.parametrize(("value", "problem"), [
    ("ftp://deb.debian.org/debian", "'ftp://deb.debian.org/debian' is not an http or https "
     "URL; expected an http or https URL of a Debian mirror like http://deb.debian.org/debian"),
    ("https://bot:s3cret@mirror.example/debian", "'https://mirror.example/debian' has a user "
     "name or password in it; it would be shown in logs and image labels: use a mirror that "
     "needs none (packages are checked against Debian's keyring, not the connection)"),
    ("http://mirror.example/debian?x=1", "'http://mirror.example/debian?x=1' has a query or "
     "fragment; expected an http or https URL of a Debian mirror like "
     "http://deb.debian.org/debian"),
    ("http://-x/debian", "'http://-x/debian': '-x' is not a host name; expected an http or "
     "https URL of a Debian mirror like http://deb.debian.org/debian"),
])
def test_a_bad_mirror_is_refused_by_the_option_and_the_manifest(
        tmp_path: Path, host: Host, value: str, problem: str) -> None:
    result = _builder_image(tmp_path, host, "--debian-mirror", value)
    assert result.exit_code == 2
    assert problem in " ".join(result.stderr.replace("│", " ").split())
    assert "s3cret" not in result.output
    root = _repo(tmp_path, f"debian:\n  mirror: {value}\n")
    checked = runner.invoke(app, ["--root", str(root), "validate"])
    assert checked.exit_code == 3
    assert f"releases/1.20.yaml:35: debian.mirror: {problem}" in checked.stderr
    assert host.ran() == []


def test_the_keyring_does_not_change_what_existing_images_were_made_from() -> None:
    """--keyring changes how the Release is checked, not what is installed: the inputs
    digests of the default recipes are the ones images made before it carry (no rebuild)."""
    recipe = builderimage.builder_recipe(IMAGE, "1.15.15", "releases/1.20.yaml")
    assert recipe.inputs_digest(source.DEFAULT_MIRROR) == (
        "sha256:be6117fbf4c8ffa79f00027dc5ed94a03335530fcb792cf3411afd4f80259656")


def test_end_of_life_is_known_only_after_the_day() -> None:
    assert source.end_of_life("bullseye", datetime.date(2026, 8, 31)) is None
    assert source.end_of_life("bullseye", datetime.date(2026, 9, 1)) == datetime.date(2026, 8, 31)
    assert source.end_of_life("bookworm", datetime.date(2030, 1, 1)) is None


def test_a_bad_debian_mirror_variable_is_refused_before_debootstrap(
        tmp_path: Path, host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBIAN_MIRROR", "https://bot:s3cret@mirror.example/debian")
    result = _builder_image(tmp_path, host)
    assert result.exit_code == 11
    assert _error(result) == [
        "error: DEBIAN_MIRROR: 'https://mirror.example/debian' has a user name or password in "
        "it; it would be shown in logs and image labels: use a mirror that needs none (packages "
        "are checked against Debian's keyring, not the connection)",
        "hint: set DEBIAN_MIRROR to a mirror like http://deb.debian.org/debian, or pass "
        "--debian-mirror URL"]
    assert host.ran() == []


@pytest.mark.parametrize("command", [["host-setup"], ["builder-image"], ["build", "1.20"],
                                     ["images", "1.20"], ["cluster", "up", "1.20"],
                                     ["conformance", "1.20"], ["conformance", "images", "1.20"]])
def test_every_command_that_debootstraps_takes_and_checks_debian_mirror(
        tmp_path: Path, host: Host, command: list[str]) -> None:
    result = runner.invoke(app, ["--root", str(_repo(tmp_path)), *command,
                                 "--debian-mirror", "file:///srv/debian"])
    assert result.exit_code == 2
    flat = " ".join(result.stderr.replace("│", " ").split())
    assert "Invalid value for '--debian-mirror': 'file:///srv/debian' is not an http or https " \
        "URL" in flat
    assert host.ran() == []


def test_a_release_that_does_not_verify_is_refused_and_the_hint_says_why(
        tmp_path: Path, host: Host) -> None:
    host.modes(**{"http://mirror.example/debian": "badsignature"})
    result = _builder_image(tmp_path, host, "--debian-mirror", "http://mirror.example/debian")
    assert result.exit_code == 11
    [kept] = host.logs()
    assert _error(result)[0] == (
        f"error: debootstrap bullseye from http://mirror.example/debian failed (log: {kept})")
    assert _error(result)[-1] == (
        "hint: the bullseye Release from http://mirror.example/debian (from --debian-mirror) "
        "did not verify against Debian's keyring: update it (apt-get install --only-upgrade "
        "debian-archive-keyring); a mirror serving a Release Debian did not sign is refused")
    assert host.engine.imported == [] and len(host.ran()) == 1


@pytest.mark.parametrize(("command", "target"), [
    (["cluster", "up", "1.20"], "tkedistro.cluster.clustercmd.up"),
    (["conformance", "1.20", "--local"], "tkedistro.conformance.pipeline.run_conformance"),
    (["conformance", "images", "1.20"], "tkedistro.conformance.imagecmd.conformance_images")])
def test_the_cluster_and_conformance_commands_debootstrap_from_the_manifests_mirror(
        tmp_path: Path, host: Host, monkeypatch: pytest.MonkeyPatch, command: list[str],
        target: str) -> None:
    """Their node, upstream-image and conformance bases come from ``debian.mirror`` (or the
    option) like the build's: the source in effect while the command runs."""
    root = _repo(tmp_path, "debian:\n  mirror: http://manifest.example/debian\n")
    seen: list[str] = []

    def record(*_args: object, **_kwargs: object) -> None:
        seen.append(source.current().mirror)
        raise SystemExit(0)

    monkeypatch.setattr(target, record)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    base = ["--root", str(root), "--cache-dir", str(host.cache), *command]
    assert runner.invoke(app, base).exit_code == 0
    assert runner.invoke(app, [*base, "--debian-mirror", "http://option.example/d"]
                         ).exit_code == 0
    assert seen == ["http://manifest.example/debian", "http://option.example/d"]
