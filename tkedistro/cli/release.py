"""Commands on the release manifests and the source tree: list, show, validate, source."""

from __future__ import annotations

from typing import Annotated

import typer

from tkedistro.cli import quick
from tkedistro.cli.common import G, JsonOpt, UpstreamOpt, emit, guarded


def register(app: typer.Typer) -> None:
    app.command("list")(guarded(list_cmd))
    app.command("show")(guarded(show))
    app.command("validate")(guarded(validate))
    app.command("source")(guarded(source))


def list_cmd(as_json: JsonOpt = False) -> None:
    """List the releases of this distro repo."""
    quick.list_releases(as_json)


def show(release: str, as_json: JsonOpt = False) -> None:
    """Show one release: its pin, components, platforms and patch series."""
    quick.show_release(release, as_json)


def validate(
    releases: Annotated[list[str] | None, typer.Argument(help="Releases (default: all).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check manifests and patch files without network."""
    from tkedistro.model import validation

    result = validation.validate_releases(G.workspace(), releases or [])
    emit(result.to_json(), result.format_text(), as_json)
    result.raise_for_problems()


def source(
    release: str,
    upstream: UpstreamOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Save work in _src to a backup ref, then re-prepare.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fetch and verify the pinned upstream and apply the patch series into _src/RELEASE."""
    from tkedistro.source import prepare as source_mod

    result = source_mod.prepare_source(G.settled(release), release, upstream=upstream, force=force)
    emit(result.to_json(), result.format_text(), as_json)


