"""``tkedistro keys generate``: the signing key pair a release is signed with."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tkedistro.cli.common import JsonOpt, emit, guarded
from tkedistro.core import console

keys_app = typer.Typer(help="Signing keys (cosign's formats) for releases and images.")


def register(app: typer.Typer) -> None:
    keys_app.command("generate")(guarded(keys_generate))
    app.add_typer(keys_app, name="keys")


def keys_generate(
    output_dir: Annotated[Path, typer.Option(
        "--output-dir", metavar="DIR", file_okay=False,
        help="Write cosign.key and cosign.pub here (default: the current folder).")] = Path(),
    as_json: JsonOpt = False,
) -> None:
    """Make an ECDSA P-256 key pair: cosign.key (encrypted with the passphrase of
    TKEDISTRO_SIGNING_PASSPHRASE_FILE or TKEDISTRO_SIGNING_PASSPHRASE, mode 0600) and
    cosign.pub; never overwrites either."""
    import os

    from tkedistro.signing import keys

    passphrase = keys.read_passphrase(os.environ)
    if not passphrase:
        console.warn(f"the private key is encrypted with an empty passphrase: set "
                     f"{keys.PASSPHRASE_FILE_ENV} or {keys.PASSPHRASE_ENV} to choose one")
    private, public = keys.generate_key_pair(output_dir, passphrase)
    loaded = keys.load_signing_key(private.read_bytes(), passphrase, str(private))
    data = {"private_key": str(private), "public_key": str(public),
            "fingerprint": loaded.fingerprint}
    text = (f"wrote {private} (private, mode 0600: keep it secret) and {public} "
            f"(public: give it to whoever verifies)\nkey {loaded.fingerprint}\n"
            f"sign with: tkedistro build RELEASE --sign-key {private}")
    emit(data, text, as_json)
