"""``tkedistro guest build|run``: the cgroup v2 guest (qemu, software-emulated) as a tool."""

from __future__ import annotations

from typing import Annotated

import typer

from tkedistro.cli.common import JsonOpt, emit, guarded

guest_app = typer.Typer(
    no_args_is_help=True,
    help="A Debian bookworm guest booted under qemu with cgroup v2, Docker on the systemd "
         "cgroup driver: build it once (cached), run commands in it.")

ShareOpt = Annotated[list[str] | None, typer.Option(
    "--share", metavar="HOST:GUEST[:ro|rw]",
    help="Share a host folder into the guest over 9p (read-only unless :rw); repeatable.")]
ImageOpt = Annotated[list[str] | None, typer.Option(
    "--image", metavar="REF", help="docker save this host image and docker load it in the "
                                   "guest before the command; repeatable.")]


def register(app: typer.Typer) -> None:
    guest_app.command("build")(guarded(guest_build))
    guest_app.command("run")(guarded(guest_run))
    app.add_typer(guest_app, name="guest")


def guest_build(
    force: Annotated[bool, typer.Option("--force", help="Build anew even when the cached "
                                                        "guest matches its inputs.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build the guest from Debian packages (kernel, debootstrap root, initrd, disk), or reuse
    the cached one made from the same inputs ($TKEDISTRO_GUEST_CACHE, /var/tmp/tkedistro-guest)."""
    from tkedistro.guest.build import ensure_guest

    guest, built = ensure_guest(force=force)
    data = {"folder": str(guest.folder), "digest": guest.digest, "built": built,
            "kernel": guest.kernel_version, "build_seconds": guest.built_s}
    verb = "built" if built else "reused"
    emit(data, f"{verb} the guest {guest.folder} (kernel {guest.kernel_version})", as_json)


def guest_run(
    command: Annotated[list[str], typer.Argument(help="The command to run in the guest "
                                                     "(after --).")],
    share: ShareOpt = None,
    image: ImageOpt = None,
    smp: Annotated[int, typer.Option("--smp", min=1, max=64, help="Virtual CPUs.")] = 2,
    memory: Annotated[int, typer.Option("--memory", min=512, max=262144,
                                        help="Guest memory in MB.")] = 8192,
    timeout: Annotated[float, typer.Option("--timeout", min=1, max=7 * 24 * 3600,
                                           help="Kill the guest after this many seconds "
                                                "(exit 25).")] = 1800,
    as_json: JsonOpt = False,
) -> None:
    """Boot the guest (building it first when needed), run COMMAND in its work folder and power
    off; prints the command's output and exits with its exit code."""
    from tkedistro.core import console
    from tkedistro.guest.build import ensure_guest
    from tkedistro.guest.machine import MachineSpec
    from tkedistro.guest.session import run_in_guest
    from tkedistro.guest.share import parse_share

    try:
        shares = [parse_share(item) for item in share or []]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--share") from exc
    guest, _ = ensure_guest()
    result = run_in_guest(guest, command, shares=shares, images=image or [],
                          spec=MachineSpec(smp, memory), timeout_s=timeout)
    console.info(f"guest run {result.run_dir}: {result.timing_line()}")
    if as_json:
        emit({"exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr,
              "run_dir": str(result.run_dir), "timings": result.timings}, "", True)
    else:
        typer.echo(result.stdout, nl=False)
        typer.echo(result.stderr, nl=False, err=True)
    if result.exit_code:
        raise typer.Exit(result.exit_code)
