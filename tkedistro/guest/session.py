"""``run_in_guest``: one command in a fresh boot of the guest, its result brought back.

A run gets a folder under ``CACHE/runs/``: ``work/`` (shared read-write at
``/tkedistro/work``: ``command.sh``, the share list, image tarballs; the command's stdout,
stderr, exit code and timings come back there), ``console.log`` (the serial console) and
``disk.qcow2`` (the run's copy-on-write overlay of the cached disk, removed afterwards with the
image tarballs). The last ``KEEP_RUNS`` run folders are kept for diagnosis. Images given by
ref are loaded once per set into a disk layer the later runs' overlays are backed by
(``imagelayer.py``).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core import console, files
from tkedistro.core.errors import CommandTimeoutError, GuestError, GuestTimeoutError
from tkedistro.core.locks import exclusive_lock
from tkedistro.core.runner import run
from tkedistro.guest import disk, imagelayer
from tkedistro.guest.build import Guest
from tkedistro.guest.machine import MachineSpec, RunFiles, qemu_argv
from tkedistro.guest.result import GuestResult, read_result
from tkedistro.guest.share import Share, share_list

DEFAULT_TIMEOUT_S = 1800.0
KEEP_RUNS = 10


def command_script(command: Sequence[str], env: Mapping[str, str]) -> str:
    """The shell script the guest runs: ``env`` exported, then ``command`` (quoted, exec'd)."""
    if not command:
        raise GuestError("no command to run in the guest",
                         hint="give it after `--`: tkedistro guest run -- docker info")
    lines = ["#!/bin/sh\n"]
    for key, value in env.items():
        lines.append(f"export {key}={shlex.quote(value)}\n")
    lines.append("exec " + shlex.join(command) + "\n")
    return "".join(lines)


def run_in_guest(guest: Guest, command: Sequence[str], *, shares: Sequence[Share] = (),
                 images: Sequence[str] = (), archives: Sequence[Path] = (),
                 env: Mapping[str, str] | None = None, spec: MachineSpec | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, runs: Path | None = None,
                 cache_images: bool = True) -> GuestResult:
    """Boot the guest, load ``images`` (refs, ``docker save``d here) and ``archives`` (image
    tarballs), run ``command`` in ``/tkedistro/work``, power off; the command's result.

    With ``cache_images`` the images come from a disk layer kept for that set of images
    (``imagelayer.py``; made by a boot of its own the first time). ``GuestTimeoutError`` when
    the guest runs past ``timeout_s`` (qemu is killed), ``GuestError`` when it did not get as
    far as running the command."""
    boot = Boot(guest, guest.disk, spec or MachineSpec(), timeout_s,
                runs or guest.folder.parent / "runs")
    if images and cache_images:
        boot = Boot(guest, _image_layer(boot, images), boot.spec, timeout_s, boot.runs)
        images = ()
    return _run_once(boot, command, shares, images, archives, env or {})


@dataclass(frozen=True)
class Boot:
    """How one boot is made: the guest, the disk its overlay is backed by, the machine."""

    guest: Guest
    backing: Path
    spec: MachineSpec
    timeout_s: float
    runs: Path


def _image_layer(boot: Boot, images: Sequence[str]) -> Path:
    """The layer holding ``images``, made by a boot that only loads them when missing."""
    layer = imagelayer.layer_path(boot.guest, images)
    if layer.is_file():
        return layer
    files.ensure_dir(layer.parent)
    with exclusive_lock(layer.with_suffix(".lock"), f"another run is loading into {layer}",
                        wait=boot.timeout_s, waiting=f"waiting for {layer} to be made"):
        if not layer.is_file():
            console.info(f"loading {len(images)} image(s) into a guest disk layer, kept for "
                         f"later runs: {layer}")
            _run_once(boot, ["true"], (), images, (), {}, keep_disk=layer)
            imagelayer.prune_layers(layer.parent, layer)
    return layer


def _run_once(boot: Boot, command: Sequence[str], shares: Sequence[Share],
              images: Sequence[str], archives: Sequence[Path], env: Mapping[str, str],
              keep_disk: Path | None = None) -> GuestResult:
    """One boot in a new run folder; ``keep_disk``: a run that exits 0 keeps its overlay
    there (and powers off cleanly, Docker stopped)."""
    files.ensure_dir(boot.runs)
    _prune(boot.runs)
    run_dir = files.make_temp_dir(boot.runs, time.strftime("run-%Y%m%d-%H%M%S-"))
    work = files.ensure_dir(run_dir / "work")
    files.write_text(work / "command.sh", command_script(command, env))
    files.write_text(work / "shares", share_list(tuple(shares)))
    if keep_disk is not None:
        files.write_text(work / "clean-poweroff", "")
    paths = RunFiles(boot.guest.vmlinuz, boot.guest.initrd, run_dir / "disk.qcow2",
                     run_dir / "console.log", work)
    try:
        _put_images(work / "images", images, archives)
        disk.make_overlay(boot.backing, paths.overlay)
        start = time.monotonic()
        _boot(qemu_argv(paths, tuple(shares), boot.spec), boot.timeout_s, paths.console_log)
        result = read_result(run_dir, time.monotonic() - start)
        if keep_disk is not None:
            _keep(result, paths.overlay, keep_disk)
        return result
    finally:
        files.remove(paths.overlay)
        files.remove(work / "images")


def _keep(result: GuestResult, overlay: Path, target: Path) -> None:
    if result.exit_code != 0:
        raise GuestError(f"loading images into the guest failed (exit {result.exit_code}; "
                         f"console log: {result.console_log})",
                         details=(result.stderr or result.stdout)[-2000:])
    files.rename(overlay, target)


def _put_images(folder: Path, images: Sequence[str], archives: Sequence[Path]) -> None:
    """``images`` as ONE ``docker save`` tarball (a layer the images share is written and
    loaded once: conformance images share a 286 MB base), then the given ``archives``."""
    files.ensure_dir(folder)
    if images:
        with console.step("guest_run", f"docker save of {len(images)} image(s)"):
            run(["docker", "save", "-o", folder / "000-images.tar", "--", *images],
                message=f"saving the images {', '.join(images)} for the guest (docker save) "
                        "failed",
                hint="check that each image is in this host's Docker engine (docker images)")
    for index, archive in enumerate(archives, start=1):
        if not archive.is_file():
            raise GuestError(f"the image tarball {archive} does not exist or is not a file")
        files.link_or_copy(archive, folder / f"{index:03d}-archive.tar")


def _boot(argv: list[str], timeout_s: float, console_log: Path) -> None:
    """qemu until the guest powers off, or killed at ``timeout_s``."""
    try:
        with console.step("guest_run", f"boot the guest and run (timeout {timeout_s:g}s)"):
            result = run(argv, timeout=timeout_s, check=False, die_with_us=True,
                         hint="install qemu-system-x86 (qemu-system-x86_64)")
    except CommandTimeoutError as exc:
        raise GuestTimeoutError(
            f"the guest ran past its timeout of {timeout_s:g} s and was killed "
            f"(console log: {console_log})",
            details=files.log_tail(console_log, 20),
            hint="raise --timeout, or read the console log for where it stopped") from exc
    if result.returncode != 0:
        raise GuestError(f"qemu failed with exit code {result.returncode} "
                         f"(console log: {console_log})",
                         details=(result.stderr or result.stdout)[-3000:],
                         hint="install qemu-system-x86; check the console log")


def _prune(runs: Path) -> None:
    """Keep the newest ``KEEP_RUNS - 1`` run folders (this run makes one more)."""
    folders = sorted((p for p in runs.glob("run-*") if p.is_dir()), key=lambda p: p.name)
    for old in folders[:max(0, len(folders) - (KEEP_RUNS - 1))]:
        files.remove(old)
