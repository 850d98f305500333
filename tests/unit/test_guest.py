"""The cgroup v2 guest without qemu: the kernel package apt names, the shares a user gives
(``--share``), qemu's command line, the script the guest runs, reading a run's results back,
a whole run against a fake qemu (overlay made and removed, exit code returned, timeout exit 25),
and the cache key. The vm tier (tests/vm) boots the real guest."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
from typer.testing import CliRunner

from tkedistro.cli.app import app
from tkedistro.core import runner
from tkedistro.core.errors import CommandTimeoutError, GuestError, GuestTimeoutError
from tkedistro.guest import build, kernel, session
from tkedistro.guest.machine import MachineSpec, RunFiles, kernel_cmdline, qemu_argv
from tkedistro.guest.recipe import GuestRecipe
from tkedistro.guest.result import parse_timings, read_result
from tkedistro.guest.share import Share, parse_share, python_shares, share_list

DEPENDS = """linux-image-amd64
  Depends: linux-image-6.1.0-57-amd64
"""


def test_the_kernel_package_is_the_one_apt_names() -> None:
    assert kernel.image_package(DEPENDS) == "linux-image-6.1.0-57-amd64"
    assert kernel.version_of("linux-image-6.1.0-57-amd64") == "6.1.0-57-amd64"
    with pytest.raises(GuestError, match=r"`apt-cache depends linux-image-amd64` names no "
                                         r"linux-image-\* package"):
        kernel.image_package("linux-image-amd64\n")


def test_an_unpacked_kernel_without_its_image_is_refused(tmp_path: Path) -> None:
    (tmp_path / "usr/lib/modules/6.1.0-57-amd64").mkdir(parents=True)
    with pytest.raises(GuestError, match="has no boot/vmlinuz-6.1.0-57-amd64"):
        kernel.unpacked(tmp_path, "6.1.0-57-amd64")
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot/vmlinuz-6.1.0-57-amd64").write_bytes(b"k")
    found = kernel.unpacked(tmp_path, "6.1.0-57-amd64")
    assert found.modules == tmp_path / "usr/lib/modules/6.1.0-57-amd64"


def test_a_share_is_read_only_unless_rw(tmp_path: Path) -> None:
    assert parse_share(f"{tmp_path}:/srv/in") == Share(tmp_path, PurePosixPath("/srv/in"), True)
    assert parse_share(f"{tmp_path}:/srv/in:ro").readonly
    assert not parse_share(f"{tmp_path}:/srv/out:rw").readonly


@pytest.mark.parametrize(("value", "problem"), [
    ("{d}", "expected HOST:GUEST or HOST:GUEST:ro|rw"),
    ("{d}:/a:rx", "the mode is 'rx'; expected ro or rw"),
    ("{d}:relative", "the guest path relative must be an absolute folder other than /, "
                     "without .."),
    ("{d}:/", "the guest path / must be an absolute folder other than /, without .."),
    ("{d}:/a/../etc", "the guest path /a/../etc must be an absolute folder other than /, "
                      "without .."),
    ("{d}:/with space", "the guest path /with space may hold only letters, digits and "
                        "._/+@=- (no spaces)"),
    ("{d}:/tkedistro", "the guest path /tkedistro overlaps the run's work folder "
                       "/tkedistro/work"),
    ("{d}:/tkedistro/work/x", "the guest path /tkedistro/work/x overlaps the run's work "
                              "folder /tkedistro/work"),
    ("{d}/missing:/a", "the host folder {d}/missing does not exist or is not a folder"),
])
def test_a_bad_share_says_what_is_wrong(tmp_path: Path, value: str, problem: str) -> None:
    text = value.format(d=tmp_path)
    with pytest.raises(ValueError) as raised:
        parse_share(text)
    assert str(raised.value) == f"--share {text!r}: {problem.format(d=tmp_path)}"


def test_a_bad_share_on_the_command_line_exits_2_naming_the_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["guest", "run", "--share", f"{tmp_path}:/a:rx", "--",
                                      "true"], env={"COLUMNS": "1000"})
    assert result.exit_code == 2
    assert f"--share '{tmp_path}:/a:rx': the mode is 'rx'; expected ro or rw" in result.output


def test_qemu_boots_cgroup_v2_emulated_without_network_with_the_shares(tmp_path: Path) -> None:
    run = RunFiles(tmp_path / "vmlinuz", tmp_path / "initrd.img", tmp_path / "a,b/disk.qcow2",
                   tmp_path / "console.log", tmp_path / "work")
    shares = (Share(Path("/src,x"), PurePosixPath("/src"), True),
              Share(Path("/out"), PurePosixPath("/out"), False))
    argv = qemu_argv(run, shares, MachineSpec(smp=3, memory_mb=4096))
    assert argv[0] == "qemu-system-x86_64"
    assert argv[argv.index("-accel") + 1] == "tcg"
    assert argv[argv.index("-cpu") + 1] == "max"
    assert argv[argv.index("-smp") + 1] == "3"
    assert argv[argv.index("-m") + 1] == "4096"
    assert argv[argv.index("-nic") + 1] == "none"
    assert "-no-reboot" in argv
    assert argv[argv.index("-kernel") + 1] == str(tmp_path / "vmlinuz")
    assert argv[argv.index("-initrd") + 1] == str(tmp_path / "initrd.img")
    cmdline = argv[argv.index("-append") + 1]
    assert cmdline == kernel_cmdline()
    assert {"systemd.unified_cgroup_hierarchy=1", "console=ttyS0", "root=/dev/vda",
            "tkedistro.run=1"} <= set(cmdline.split())
    drive = argv[argv.index("-drive") + 1]
    assert drive.startswith(f"file={tmp_path}/a,,b/disk.qcow2,format=qcow2,if=virtio")
    virtfs = [argv[i + 1] for i, a in enumerate(argv) if a == "-virtfs"]
    assert virtfs == [
        f"local,path={tmp_path}/work,mount_tag=work,security_model=none,multidevs=remap",
        "local,path=/src,,x,mount_tag=share0,security_model=none,multidevs=remap,readonly=on",
        "local,path=/out,mount_tag=share1,security_model=none,multidevs=remap"]
    assert MachineSpec() == MachineSpec(smp=2, memory_mb=8192)


def test_the_guest_reads_its_shares_and_command_from_the_work_folder() -> None:
    shares = (Share(Path("/a"), PurePosixPath("/srv/a"), True),
              Share(Path("/b"), PurePosixPath("/srv/b"), False))
    assert share_list(shares) == "share0 /srv/a ro\nshare1 /srv/b rw\n"
    script = session.command_script(["sh", "-c", "echo 'it''s' $HOME; exit 3"],
                                    {"PYTHONPATH": "/x y:/z"})
    lines = script.splitlines()
    assert lines[0] == "#!/bin/sh"
    assert lines[1] == "export PYTHONPATH='/x y:/z'"
    assert shlex.split(lines[2]) == ["exec", "sh", "-c", "echo 'it''s' $HOME; exit 3"]
    with pytest.raises(GuestError, match="no command to run in the guest"):
        session.command_script([], {})


def test_the_tool_runs_in_the_guest_from_the_checkout_and_this_pythons_packages(
        tmp_path: Path) -> None:
    shares, env = python_shares(tmp_path)
    assert shares[0] == Share(tmp_path, PurePosixPath(tmp_path.as_posix()), True)
    assert all(s.readonly and str(s.guest) == str(s.host) for s in shares)
    assert env["PYTHONPATH"].split(":") == [str(s.host) for s in shares]
    assert any(p.endswith("site-packages") for p in env["PYTHONPATH"].split(":"))


def test_timings_say_where_the_boot_went() -> None:
    text = ("command_service_start 43.25\ndocker_monotonic_us 27616776 42990958 \n"
            "images_loaded 43.68\ncommand_done 45.07\n")
    assert parse_timings(text) == {"boot_s": 43.25, "docker_start_s": 15.37, "load_s": 0.43,
                                   "command_s": 1.39}
    assert parse_timings("command_service_start 40\ndocker_monotonic_us  \n") == {"boot_s": 40.0}
    assert parse_timings("garbage\nimages_loaded x\n") == {}


def _run_dir(tmp_path: Path, **work_files: str) -> Path:
    (tmp_path / "work").mkdir(parents=True)
    for name, text in work_files.items():
        (tmp_path / "work" / name.replace("_", "-")).write_text(text)
    (tmp_path / "console.log").write_text("".join(f"line {i}\n" for i in range(100)))
    return tmp_path


def test_a_result_brings_back_output_and_exit_code(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path, exit_code="7\n", stdout="out\n", stderr="err\n",
                       timings="command_service_start 30\n")
    result = read_result(run_dir, 50.0)
    assert (result.exit_code, result.stdout, result.stderr) == (7, "out\n", "err\n")
    assert result.timings == {"boot_s": 30.0, "total_s": 50.0}
    assert result.timing_line() == "boot 30.0 s, total 50.0 s"
    full = read_result(_run_dir(tmp_path / "full", exit_code="0", timings=(
        "command_service_start 43.25\ndocker_monotonic_us 27616776 42990958\n"
        "images_loaded 43.68\ncommand_done 45.07\n")), 50.27)
    assert full.timing_line() == ("boot 43.2 s (Docker 15.4 s), images 0.4 s, command 1.4 s, "
                                  "total 50.3 s")
    assert result.console_log == tmp_path / "console.log"


def test_a_guest_that_wrote_no_exit_code_names_its_console_log(tmp_path: Path) -> None:
    with pytest.raises(GuestError) as raised:
        read_result(_run_dir(tmp_path), 5.0)
    assert raised.value.message == (f"the guest did not run the command: the guest wrote no "
                                     f"exit code (console log: {tmp_path}/console.log)")
    assert raised.value.details is not None and raised.value.details.endswith("line 99")
    with pytest.raises(GuestError, match=r"the guest did not run the command: cannot mount "
                                         r"share share0 at /srv/a \(console log: "):
        read_result(_run_dir(tmp_path / "b", setup_error="cannot mount share share0 at /srv/a\n"),
                    5.0)


def _guest(tmp_path: Path) -> build.Guest:
    folder = tmp_path / "cache/guest-0123456789abcdef"
    folder.mkdir(parents=True)
    for name in ("vmlinuz", "initrd.img", "disk.img"):
        (folder / name).write_bytes(b"x")
    return build.Guest(folder, "sha256:0123", "6.1.0-57-amd64", {})


class FakeMachine:
    """Stands in for qemu-img and qemu: records argv, answers as the guest's runner would."""

    def __init__(self, exit_code: int | None = 3, hang: bool = False) -> None:
        self.exit_code, self.hang = exit_code, hang
        self.calls: list[tuple[list[str], dict[str, object]]] = []
        self.boots: list[tuple[Path, list[str], str]] = []

    def __call__(self, argv: list[object], **kwargs: object) -> runner.Result:
        args = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in argv]
        self.calls.append((args, kwargs))
        if args[:3] == ["docker", "image", "inspect"]:
            return runner.Result(tuple(args), 0, "".join(f"sha256:{r}\n" for r in args[6:]), "")
        if args[:2] == ["docker", "save"]:
            Path(args[3]).write_bytes(b"saved " + " ".join(args[5:]).encode())
        elif args[0] == "qemu-img":
            Path(args[-1]).write_bytes(b"overlay of " + args[args.index("-b") + 1].encode())
        elif args[0] == "qemu-system-x86_64":
            work = Path(next(a for a in args if "mount_tag=work" in a).split("path=")[1]
                        .split(",mount_tag")[0])
            self.boots.append((work, sorted(p.name for p in (work / "images").iterdir()),
                               (work / "command.sh").read_text().splitlines()[-1]))
            if self.hang:
                raise CommandTimeoutError(args, float(kwargs["timeout"]))  # type: ignore[arg-type]
            (work / "stdout").write_text("hi\n")
            if self.exit_code is not None:
                (work / "exit-code").write_text(f"{self.exit_code}\n")
        return runner.Result(tuple(args), 0, "", "")


def test_a_run_uses_a_fresh_overlay_and_removes_it(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeMachine(exit_code=3)
    monkeypatch.setattr(session, "run", fake)
    monkeypatch.setattr("tkedistro.guest.disk.run", fake)
    archive = tmp_path / "image.tar"
    archive.write_bytes(b"tar")
    guest = _guest(tmp_path)
    result = session.run_in_guest(guest, ["echo", "hi"], archives=[archive], timeout_s=60)
    assert (result.exit_code, result.stdout) == (3, "hi\n")
    assert fake.boots == [(result.run_dir / "work", ["001-archive.tar"], "exec echo hi")]
    qemu_img = fake.calls[0][0]
    assert qemu_img[:7] == ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(guest.disk)]
    assert qemu_img[7:9] == ["-F", "raw"]
    assert fake.calls[1][1]["timeout"] == 60
    assert result.run_dir.parent == guest.folder.parent / "runs"
    assert not (result.run_dir / "disk.qcow2").exists()
    assert not (result.run_dir / "work/images").exists()
    assert (guest.disk.read_bytes()) == b"x"


def test_images_are_loaded_once_into_a_kept_layer_and_later_runs_start_on_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeMachine(exit_code=0)
    monkeypatch.setattr(session, "run", fake)
    monkeypatch.setattr("tkedistro.guest.disk.run", fake)
    monkeypatch.setattr("tkedistro.guest.imagelayer.run", fake)
    guest = _guest(tmp_path)
    first = session.run_in_guest(guest, ["echo", "hi"], images=["node:1"])
    # a boot that only loads the image, with a clean power-off; then the command's own boot
    (load_work, load_images, load_command), (run_work, run_images, run_command) = fake.boots
    assert (load_images, load_command) == (["000-images.tar"], "exec true")
    assert (load_work / "clean-poweroff").exists() and not (run_work / "clean-poweroff").exists()
    assert (run_images, run_command, run_work) == ([], "exec echo hi", first.run_dir / "work")
    layers = list((guest.folder / "images").glob("*.qcow2"))
    assert len(layers) == 1 and layers[0].read_bytes() == b"overlay of " + bytes(guest.disk)
    assert fake.calls[-2][0][-3:] == ["-F", "qcow2", str(first.run_dir / "disk.qcow2")]
    session.run_in_guest(guest, ["echo", "again"], images=["node:1"])
    assert [b[1:] for b in fake.boots[2:]] == [([], "exec echo again")]
    session.run_in_guest(guest, ["echo", "fresh"], images=["node:1"], cache_images=False)
    assert [b[1:] for b in fake.boots[3:]] == [(["000-images.tar"], "exec echo fresh")]


def test_a_guest_past_its_timeout_is_exit_25_naming_the_console_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeMachine(hang=True)
    monkeypatch.setattr(session, "run", fake)
    monkeypatch.setattr("tkedistro.guest.disk.run", fake)
    archive = tmp_path / "image.tar"
    archive.write_bytes(b"tar")
    with pytest.raises(GuestTimeoutError) as raised:
        session.run_in_guest(_guest(tmp_path), ["echo", "hi"], archives=[archive],
                             timeout_s=20)
    assert raised.value.exit_code == 25
    assert raised.value.message.startswith("the guest ran past its timeout of 20 s and was "
                                           "killed (console log: ")
    assert not list((tmp_path / "cache/runs").glob("*/disk.qcow2"))


def test_the_cli_prints_the_output_and_exits_with_the_commands_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeMachine(exit_code=3)
    monkeypatch.setattr(session, "run", fake)
    monkeypatch.setattr("tkedistro.guest.disk.run", fake)
    monkeypatch.setattr(build, "ensure_guest", lambda **_: (_guest(tmp_path), False))
    archive = tmp_path / "image.tar"
    archive.write_bytes(b"tar")
    monkeypatch.setattr(session, "_put_images", lambda folder, images, archives:
                        (folder.mkdir(), (folder / "000-archive.tar").write_bytes(b"t")))
    result = CliRunner().invoke(app, ["guest", "run", "--smp", "1", "--", "echo", "hi"])
    assert result.exit_code == 3, result.output
    assert result.stdout == "hi\n"
    assert re.search(r"guest run /\S+/runs/run-\S+: total [0-9.]+ s\n", result.stderr)
    qemu = fake.calls[1][0]
    assert qemu[qemu.index("-smp") + 1] == "1"
    assert qemu[qemu.index("-m") + 1] == "8192"


def test_a_changed_input_makes_another_guest() -> None:
    recipe = GuestRecipe("linux-image-6.1.0-57-amd64", "http://deb.debian.org/debian",
                         (("/etc/hostname", "g\n"),))
    assert recipe.digest() == GuestRecipe(*recipe.__dict__.values()).digest()
    others = [GuestRecipe("linux-image-6.1.0-58-amd64", recipe.mirror, recipe.guest_files),
              GuestRecipe(recipe.kernel_package, recipe.mirror, recipe.guest_files,
                          packages=(*recipe.packages, "strace")),
              GuestRecipe(recipe.kernel_package, recipe.mirror, (("/etc/hostname", "h\n"),))]
    assert len({recipe.digest(), *(o.digest() for o in others)}) == 4
    assert build.folder_name(recipe.digest()) == "guest-" + recipe.digest()[7:23]


def test_a_command_past_its_timeout_is_killed() -> None:
    with pytest.raises(CommandTimeoutError) as raised:
        runner.run(["sleep", "5"], timeout=0.2)
    assert raised.value.message == "command killed after 0.2 s: sleep 5"
    assert raised.value.exit_code == 14


def test_guest_build_says_whether_it_built_or_reused(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    guest = _guest(tmp_path)
    monkeypatch.setattr(build, "ensure_guest", lambda **kw: (guest, kw["force"]))
    reused = CliRunner().invoke(app, ["guest", "build"])
    assert (reused.exit_code, reused.stdout) == (
        0, f"reused the guest {guest.folder} (kernel 6.1.0-57-amd64)\n")
    built = CliRunner().invoke(app, ["guest", "build", "--force"])
    assert built.stdout.startswith("built the guest ")


def test_the_guests_boot_runner_passes_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    script = Path(build.__file__).parents[1] / "templates/guest/tkedistro-guest-run"
    checked = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True,
                             text=True, check=False)
    assert checked.returncode == 0, checked.stdout


def test_a_guest_with_a_missing_part_or_a_damaged_manifest_is_built_again(
        tmp_path: Path) -> None:
    folder = _guest(tmp_path).folder
    assert build.load_guest(folder) is None  # no guest.json yet
    (folder / "guest.json").write_text('{"digest": "sha256:1", "kernel_version": "6.1.0-57-amd64"}')
    found = build.load_guest(folder)
    assert found is not None and found.disk == folder / "disk.img"
    for damaged in ("{", "[]", '{"digest": 1}', '{"digest": "x", "kernel_version": "k", '
                                                 '"built_s": 3}'):
        (folder / "guest.json").write_text(damaged)
        assert build.load_guest(folder) is None
    (folder / "guest.json").write_text('{"digest": "sha256:1", "kernel_version": "k"}')
    (folder / "disk.img").unlink()
    assert build.load_guest(folder) is None
