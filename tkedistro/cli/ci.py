"""``tkedistro ci render|check``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from tkedistro.cli.common import G, guarded
from tkedistro.core import console

if TYPE_CHECKING:
    from tkedistro.model.repoconfig import InstallSource

ci_app = typer.Typer(help="GitHub Actions workflows rendered from packaged templates.")


def register(app: typer.Typer) -> None:
    ci_app.command("render")(guarded(ci_render))
    ci_app.command("check")(guarded(ci_check))
    app.add_typer(ci_app, name="ci")


def check_install_from(value: str | None) -> str | None:
    """``--install-from``: ``git+URL@COMMIT`` or a wheel's path (exit 2 otherwise)."""
    if value is not None:
        _install_source(value)
    return value


def _install_source(value: str) -> InstallSource:
    from tkedistro.model.repoconfig import parse_install_from

    try:
        return parse_install_from(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def ci_render(
    install_from: Annotated[str | None, typer.Option(
        "--install-from", metavar="SOURCE", callback=check_install_from,
        help="Record where a distro repo's nightly installs tkedistro from in tkedistro.yaml "
             "(ci.install), then render: git+URL@COMMIT (a full 40-hex commit) or the repo "
             "path of a tkedistro wheel (PATH.whl).")] = None,
) -> None:
    """Write .github/workflows/*.yml from the templates, the release manifests and
    tkedistro.yaml (ci.runs-on, ci.install)."""
    from tkedistro.ci import install
    from tkedistro.ci import workflows as ci

    ws = G.workspace()
    if install_from is not None:
        install.record_source(ws, _install_source(install_from))
        console.out(f"recorded ci.install in {ws.rel(ws.root / 'tkedistro.yaml')}")
    written = ci.write_workflows(ws)
    console.out("\n".join(f"wrote {ws.rel(p)}" for p in written) or "workflows up to date")


def ci_check() -> None:
    """Fail (exit 3) when a checked-in workflow differs from its render, or when
    tkedistro.yaml names no pinned install source (a git URL + commit, or a wheel)."""
    from tkedistro.ci import workflows as ci

    ci.check_workflows(G.workspace())
    console.out("workflows match their templates")
