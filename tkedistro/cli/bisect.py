"""``tkedistro bisect``: the first patch of a series after which a check fails."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from tkedistro.cli.common import G, JsonOpt, UpstreamOpt, check_image, emit, guarded

if TYPE_CHECKING:
    from tkedistro.bisect.checks import Check


def register(app: typer.Typer) -> None:
    app.command("bisect")(guarded(bisect))


def bisect(
    release: str,
    command: Annotated[list[str] | None, typer.Argument(
        metavar="CMD", help="With --run: the command, after `--`.")] = None,
    run: Annotated[bool, typer.Option(
        "--run", help="Check with the command after `--`, run in the release's tree on the host "
                      "(exit 0 good, 125 skip, other bad; no shell: give `sh -c` yourself).")
    ] = False,
    build: Annotated[str | None, typer.Option(
        "--build", metavar="COMPONENT",
        help="Check by building COMPONENT for this platform in the builder container.")
    ] = None,
    go_test: Annotated[list[str] | None, typer.Option(
        "--go-test", metavar="PKG",
        help="Check with `go test PKG` in the builder container, e.g. ./pkg/kubelet/cm/... "
             "(repeatable).")
    ] = None,
    builder_image: Annotated[str | None, typer.Option(
        "--builder-image", callback=check_image,
        help="Override the manifest's builder image (--build, --go-test).")] = None,
    upstream: UpstreamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the first patch of RELEASE's series after which a check fails: binary search over
    the commits `tkedistro source` made in _src/RELEASE (the whole series must fail, upstream
    alone pass); _src's branch and HEAD are put back. Exit 0 when a patch is named (its
    position is in --json: first_bad.position); 28 when none can be."""
    from tkedistro.bisect.operation import bisect_release

    check = _check(release, command or [], run, build, go_test or [], builder_image)
    result = bisect_release(G.settled(release), release, check, upstream=upstream)
    emit(result.to_json(), result.format_text(), as_json)


def _check(release: str, command: list[str], run: bool, build: str | None,
           go_test: list[str], image: str | None) -> Check:
    """The one check the options name (exactly one of --run, --build, --go-test)."""
    from tkedistro.bisect import checks

    given = [name for name, on in (("--run", run), ("--build", build is not None),
                                   ("--go-test", bool(go_test))) if on]
    if len(given) != 1:
        raise typer.BadParameter(
            "give exactly one check: --run -- CMD..., --build COMPONENT or --go-test PKG"
            + (f" (got {' and '.join(given)})" if given else ""), param_hint="check")
    if bad := next((p for p in go_test if not p or p.startswith("-")), None):
        raise typer.BadParameter(f"{bad!r} is not a package pattern (go would read it as a "
                                 "flag); give one like ./pkg/kubelet/cm/...",
                                 param_hint="--go-test")
    if command and not run:
        raise typer.BadParameter(f"{' '.join(command)!r}: a command is for --run only",
                                 param_hint="CMD")
    if run:
        if not command:
            raise typer.BadParameter("--run needs the command after `--`, e.g. "
                                     f"`tkedistro bisect {release} --run -- make test`",
                                     param_hint="--run")
        return checks.RunCheck(tuple(command))
    from tkedistro.model.manifest import load_release

    ws = G.settled(release)
    manifest = load_release(ws, release)
    backend = G.engines().containers
    chosen = image or manifest.builder.image
    if build is not None:
        return checks.BuildCheck(backend, ws, manifest, build, chosen)
    return checks.GoTestCheck(backend, ws, chosen, tuple(go_test))
