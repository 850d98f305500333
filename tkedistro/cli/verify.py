"""``tkedistro verify``: a release (``_output/RELEASE``), a release folder anywhere or a
pushed image, checked on the receiving side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tkedistro.cli.common import G, JsonOpt, emit, guarded

KEY_ENV = "TKEDISTRO_VERIFY_KEY"  # verify/target.py names it in its messages


def register(app: typer.Typer) -> None:
    app.command("verify")(guarded(verify))


def verify(
    target: Annotated[str, typer.Argument(
        metavar="RELEASE|DIR|IMAGE",
        help="A release (1.20: its build output), a release folder copied anywhere, or an image "
             "reference (host/repo:tag or host/repo@sha256:...).")],
    key: Annotated[Path | None, typer.Option(
        "--key", envvar=KEY_ENV, metavar="PATH",
        help="The release's public key (cosign.pub, PEM ECDSA P-256): check every signature "
             "against it.")] = None,
    require_signatures: Annotated[bool, typer.Option(
        "--require-signatures", help="Fail when signatures cannot be checked (no --key).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check sums, signatures, SBOM, provenance and image blobs; list every problem."""
    import os

    from tkedistro.core.workspace import default_cache_dir
    from tkedistro.engine import skopeo
    from tkedistro.verify.target import VerifyRequest, verify_target

    source = "--key" if key is not None and os.environ.get(KEY_ENV) != str(key) else KEY_ENV
    request = VerifyRequest(target, key, source, require_signatures,
                            G.cache_dir or default_cache_dir())
    report = verify_target(request, G.workspace, skopeo.copy_to_layout)
    emit(report.to_json(), report.format_text(), as_json)
    report.raise_for_problems()
