"""``tkedistro verify IMAGE``: a pushed image (``host/repo:tag`` or ``host/repo@sha256:...``)
copied with every platform into a fresh OCI layout (``skopeo copy``, digests kept), then the
blob checks of a release archive (``archives.py``); given by digest, the index must be that
digest. The layout is removed afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tkedistro.core import files
from tkedistro.model.refs import parse_image_ref
from tkedistro.signing.keys import PublicKey
from tkedistro.verify import archives
from tkedistro.verify.findings import Finding
from tkedistro.verify.report import Report

Fetch = Callable[[str, Path], None]  # (ref, empty layout folder): fills the layout


def verify_image(ref: str, work: Path, fetch: Fetch, key: PublicKey | None,
                 require_signatures: bool) -> Report:
    """Copy ``ref`` into a layout under ``work`` with ``fetch`` (``skopeo.copy_to_layout``)
    and check it."""
    report = Report(ref, images=1)
    layout = files.make_temp_dir(files.ensure_dir(work), ".verify-image-")
    try:
        fetch(ref, layout / "layout")
        walked = archives.check_blobs(ref, archives.read_layout(layout / "layout"))
    finally:
        files.remove(layout)
    report.add(walked.findings)
    digest = parse_image_ref(ref).digest
    if digest and walked.index_digest != digest:
        report.add([Finding(archives.CHECK, ref, f"the registry serves {walked.index_digest}, "
                                                 f"not {digest}")])
    report.add(check_image_signature(ref, walked.index_digest, key, require_signatures,
                                     report.notes, work))
    return report


def check_image_signature(ref: str, digest: str | None, key: PublicKey | None,
                          require_signatures: bool, notes: list[str],
                          work: Path | None = None) -> list[Finding]:
    """The image's sigstore signatures (its index and each platform manifest, as
    ``images --push`` signs them: ``signing/images.py``) against ``key``; without a key it is
    said in ``notes`` (a problem when signatures are required)."""
    if key is None:
        notes.append("signatures not checked: no --key (or TKEDISTRO_VERIFY_KEY) given")
        if require_signatures:
            return [Finding("signature", ref, f"{digest or 'the image'}: its signature was "
                                              "not checked (--require-signatures, no key)")]
        return []
    from tkedistro.signing.images import verify_pushed_image

    parsed = parse_image_ref(ref)
    repository = f"{parsed.registry}/{parsed.path}" if parsed.registry else parsed.path
    pinned = f"{repository}@{digest}" if digest else ref  # the digest the blobs were checked at
    problem = verify_pushed_image(pinned, key.path, parent=work)
    return [] if problem is None else [Finding("signature", ref, problem)]
