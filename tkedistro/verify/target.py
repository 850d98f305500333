"""What ``tkedistro verify TARGET`` names, and the run of it.

TARGET is, in this order: a folder that exists (an unpacked release anywhere), a release
name (``1.20``: the workspace's ``_output/1.20``, whose manifest pin and patch files the
provenance is also held against), else an image reference (``host/repo:tag``,
``host/repo@sha256:...``: one with a ``/``, ``:`` or ``@``). A path that does not exist, or a
bare word, is named as no such folder, never taken for an image.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core.errors import ReleaseNotFoundError, SigningError
from tkedistro.core.workspace import RELEASE_NAME, Workspace, shorten
from tkedistro.model.refs import image_problem
from tkedistro.signing.keys import PublicKey, load_public_key
from tkedistro.verify.image import Fetch, verify_image
from tkedistro.verify.release import Pins, check_folder_shape, verify_folder
from tkedistro.verify.report import Report

KEY_ENV = "TKEDISTRO_VERIFY_KEY"


@dataclass(frozen=True)
class VerifyRequest:
    """The command line, resolved: the target, the key file (and the flag or variable that
    gave it), whether signatures are required, and where the run may write (``work``)."""

    target: str
    key: Path | None
    key_source: str
    require_signatures: bool
    work: Path


def kind_of(target: str) -> str:
    """``folder``, ``release`` or ``image``; ``ReleaseNotFoundError`` for neither."""
    if os.path.lexists(target):
        return "folder"
    if RELEASE_NAME.fullmatch(target):
        return "release"
    if target.startswith((".", "/", "~")) or image_problem(target) is not None \
            or not any(mark in target for mark in "/:@"):  # a bare word: a folder's typo
        raise ReleaseNotFoundError(
            [f"{shorten(target)}: no such folder, and not a release name or an image reference"],
            hint="give a release (1.20), a release folder or an image (host/repo:tag)")
    return "image"


def read_key(request: VerifyRequest) -> PublicKey | None:
    if request.key is None:
        if request.require_signatures:
            raise SigningError("--require-signatures: no key to check them with",
                               hint=f"give the release's public key with --key PATH (or "
                                    f"{KEY_ENV})")
        return None
    return load_public_key(request.key, request.key_source)


def verify_target(request: VerifyRequest, workspace: Callable[[], Workspace],
                  fetch: Fetch) -> Report:
    """Verify ``request.target``; ``workspace`` is asked for only for a release name,
    ``fetch`` only for an image."""
    kind = kind_of(request.target)
    key = read_key(request)
    if kind == "image":
        return verify_image(request.target, request.work, fetch, key,
                            request.require_signatures)
    if kind == "folder":
        folder = Path(request.target)
        check_folder_shape(folder)
        return verify_folder(folder, key)
    ws = workspace()
    folder = ws.release(request.target).output
    if not folder.is_dir():
        raise ReleaseNotFoundError([f"{ws.rel(folder)}: release {request.target} is not built"],
                                   hint=f"run `tkedistro build {request.target}` first")
    check_folder_shape(folder)
    report = verify_folder(folder, key, release_pins(ws, request.target))
    report.target = ws.rel(folder)
    return report


def release_pins(ws: Workspace, release: str) -> Pins:
    """The manifest's pinned commit and each patch file's sha256 (``ManifestError`` when
    the manifest or a patch file cannot be read)."""
    from tkedistro.model.manifest import load_release
    from tkedistro.source.prepared import patch_infos

    manifest = load_release(ws, release)
    patches = {info.file: info.sha256 for info in patch_infos(ws, manifest)}
    return Pins(ws.rel(ws.manifest_path(release)), manifest.upstream.commit, patches)
