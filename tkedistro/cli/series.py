"""Maintainer commands: rebase, forecast, new release line, patches export/import/reorder/
confirm.

Mounted by ``tkedistro.cli.app`` through ``register(app)``; no business logic here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tkedistro.cli.common import (
    G,
    JsonOpt,
    UpstreamOpt,
    check_commit,
    check_folder,
    check_tag,
    check_tags,
    emit,
    guarded,
)

patches_app = typer.Typer(help="Work on a release's patch series.", no_args_is_help=True)


def rebase_cmd(
    release: str,
    onto: Annotated[
        str | None,
        typer.Option("--onto", callback=check_tag, help="The upstream tag to rebase onto."),
    ] = None,
    commit: Annotated[
        str | None,
        typer.Option("--commit", callback=check_commit, help="Pin the tag's commit SHA (checked)."),
    ] = None,
    upstream: UpstreamOpt = None,
    cont: Annotated[bool, typer.Option("--continue", help="Carry on after resolving.")] = False,
    skip: Annotated[bool, typer.Option("--skip", help="Drop the conflicting patch.")] = False,
    abort: Annotated[bool, typer.Option("--abort", help="Put everything back.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Replay RELEASE's patch series on a new upstream tag (resumable)."""
    from tkedistro.series import rebase as rb

    chosen = [name for name, on in (("--onto", onto is not None), ("--continue", cont),
                                    ("--skip", skip), ("--abort", abort)) if on]
    if len(chosen) != 1:
        raise typer.BadParameter("give exactly one of --onto TAG, --continue, --skip, --abort")
    ws = G.settled(release)
    if abort:
        result = rb.abort_rebase(ws, release)
    elif skip:
        result = rb.skip_patch(ws, release)
    elif cont:
        result = rb.continue_rebase(ws, release)
    else:
        assert onto is not None
        result = rb.rebase(ws, release, onto, commit=commit, upstream=upstream)
    emit(result.to_json(), result.format_text(), as_json)
    result.raise_for_conflict()


def forecast_cmd(
    release: str,
    onto: Annotated[
        list[str],
        typer.Option("--onto", callback=check_tags, help="Tags to try (repeat or list)."),
    ],
    more: Annotated[
        list[str] | None,
        typer.Argument(callback=check_tags, help="More tags to try.", metavar="[TAG]..."),
    ] = None,
    upstream: UpstreamOpt = None,
    fail_on_conflict: Annotated[
        bool,
        typer.Option("--fail-on-conflict",
                     help="Exit 20 when a patch would conflict on any tag (for CI)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Dry run: how the series would fare on each tag (changes nothing)."""
    from tkedistro.series import forecast as fc

    result = fc.forecast(G.settled(release), release, [*onto, *(more or [])], upstream=upstream)
    emit(result.to_json(), result.format_text(), as_json)
    result.raise_for_errors()
    if fail_on_conflict:
        result.raise_for_conflicts()


def new_cmd(
    release: str,
    from_release: Annotated[
        str | None, typer.Option("--from", help="The release line to start from.")
    ] = None,
    onto: Annotated[
        str | None,
        typer.Option("--onto", callback=check_tag, help="The upstream tag of the new line."),
    ] = None,
    commit: Annotated[
        str | None, typer.Option("--commit", callback=check_commit, help="Pin the tag's commit.")
    ] = None,
    upstream: UpstreamOpt = None,
    abort: Annotated[
        bool, typer.Option("--abort", help="Take the line away again (as `tkedistro drop`).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start release line RELEASE from OLD's series, rebased onto TAG."""
    from tkedistro.series import newline as newrelease

    if abort:
        if from_release is not None or onto is not None:
            raise typer.BadParameter("--abort takes no --from or --onto")
        _drop(release, "new --abort", as_json)
        return
    if from_release is None or onto is None:
        raise typer.BadParameter("give --from OLD and --onto TAG (or --abort)")
    result = newrelease.new_release(G.settled(from_release), release, from_release, onto,
                                    commit=commit, upstream=upstream)
    emit(result.to_json(), result.format_text(), as_json)
    result.raise_for_conflict()


def drop_cmd(release: str, as_json: JsonOpt = False) -> None:
    """Remove release line RELEASE that `tkedistro new` made, backing up edits first."""
    _drop(release, "drop", as_json)


def _drop(release: str, doing: str, as_json: bool) -> None:
    from tkedistro.series import drop

    result = drop.drop_release(G.workspace(), release, doing=doing)
    emit(result.to_json(), result.format_text(), as_json)


def export_cmd(
    release: str,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="Patch-Kind for each new or changed commit that lacks "
                     "one (backport, carry, fix)."),
    ] = None,
    upstream_ref: Annotated[
        str | None,
        typer.Option("--upstream-ref", help="Upstream-Ref (a PR or commit URL, or none) for "
                     "each new or changed commit that lacks one."),
    ] = None,
    upstream_status: Annotated[
        str | None,
        typer.Option("--upstream-status", help="Upstream-Status (merged, submitted, "
                     "not-submitted, rejected, superseded) for each one that lacks it."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the commits of _src/RELEASE back as patch files (only what changed); a new or
    changed commit whose message lacks a required trailer gets it from --kind, --upstream-ref,
    --upstream-status (only what is missing, for every such commit; the commit in _src is
    reworded to match), else export refuses (exit 4) naming the commit. Commits that need
    different values: write the trailers into each commit's message and export again."""
    from tkedistro.series import export

    fill = export.TrailerFill(kind, upstream_ref, upstream_status)
    result = export.export_series(G.workspace(), release, fill)
    emit(result.to_json(), result.format_text(), as_json)


def import_cmd(
    release: str,
    from_dir: Annotated[
        Path,
        typer.Option("--from", callback=check_folder, help="Folder of plain git diff files."),
    ],
    text_only: Annotated[
        bool,
        typer.Option("--text-only", help="Import the text part of a patch whose binary diffs "
                     "lack full index lines (the files left out are recorded in it)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a folder of plain `git diff` files (file-name order) as this release's patches."""
    from tkedistro.series import importer as series_import

    result = series_import.import_series(G.workspace(), release, from_dir, text_only=text_only)
    emit(result.to_json(), result.format_text(), as_json)
    result.raise_for_problems()


def reorder_cmd(
    release: str,
    move: Annotated[str, typer.Option("--move", help="The patch to move (file name or NNNN).")],
    before: Annotated[
        str | None, typer.Option("--before", help="Put it before this patch.")
    ] = None,
    after: Annotated[str | None, typer.Option("--after", help="Put it after this patch.")] = None,
    renumber: Annotated[
        bool, typer.Option("--renumber", help="Number every NNNN- file by its new position "
                           "(else only the moved file gets a free number between its neighbours).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Move one patch of the series; the other files keep their names (or --renumber)."""
    from tkedistro.series import reorder

    if (before is None) == (after is None):
        raise typer.BadParameter("give exactly one of --before FILE, --after FILE")
    result = reorder.reorder_series(G.workspace(), release, move, before=before, after=after,
                                    renumber=renumber)
    emit(result.to_json(), result.format_text(), as_json)


def confirm_cmd(
    release: str,
    patches: Annotated[
        list[str] | None,
        typer.Argument(help="Patches to confirm (file name or NNNN); all when none given.",
                       metavar="[PATCH]..."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Confirm the trailers `patches import` inferred or defaulted (removes the markers)."""
    from tkedistro.series import confirm

    result = confirm.confirm_trailers(G.workspace(), release, patches or [])
    emit(result.to_json(), result.format_text(), as_json)


def register(app: typer.Typer, patches: typer.Typer | None = None) -> None:
    """Add the maintainer commands to ``app`` (``patches`` defaults to a new group)."""
    app.command("rebase")(guarded(rebase_cmd))
    app.command("forecast")(guarded(forecast_cmd))
    app.command("new")(guarded(new_cmd))
    app.command("drop")(guarded(drop_cmd))
    group = patches if patches is not None else patches_app
    group.command("export")(guarded(export_cmd))
    group.command("import")(guarded(import_cmd))
    group.command("reorder")(guarded(reorder_cmd))
    group.command("confirm")(guarded(confirm_cmd))
    if patches is None:
        app.add_typer(patches_app, name="patches")
