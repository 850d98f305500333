"""``tkedistro ci render|check``."""

from __future__ import annotations

import typer

from tkedistro.cli.common import G, guarded
from tkedistro.core import console

ci_app = typer.Typer(help="GitHub Actions workflows rendered from packaged templates.")


def register(app: typer.Typer) -> None:
    ci_app.command("render")(guarded(ci_render))
    ci_app.command("check")(guarded(ci_check))
    app.add_typer(ci_app, name="ci")


def ci_render() -> None:
    """Write .github/workflows/*.yml from the templates and the release manifests."""
    from tkedistro.ci import workflows as ci

    ws = G.workspace()
    written = ci.write_workflows(ws)
    console.out("\n".join(f"wrote {ws.rel(p)}" for p in written) or "workflows up to date")


def ci_check() -> None:
    """Fail (exit 3) when a checked-in workflow differs from its render."""
    from tkedistro.ci import workflows as ci

    ci.check_workflows(G.workspace())
    console.out("workflows match their templates")


