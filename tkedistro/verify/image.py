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
from tkedistro.verify import archives
from tkedistro.verify.findings import Finding
from tkedistro.verify.report import Report
from tkedistro.verify.signatures import PublicKey

Fetch = Callable[[str, Path], None]  # (ref, empty layout folder): fills the layout
IMAGE_SIGNATURE_NOT_CHECKED = ("image signature not checked: this tkedistro does not check "
                               "sigstore image signatures yet")


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
                                     report.notes))
    return report


def check_image_signature(ref: str, digest: str | None, key: PublicKey | None,
                          require_signatures: bool, notes: list[str]) -> list[Finding]:
    """The image's sigstore signature against ``key``: not checked yet (the signing side,
    ``signing/images.py``, is where the check comes from); said in ``notes``, and a problem
    when signatures are required."""
    if key is None and not require_signatures:
        notes.append("signatures not checked: no --key (or TKEDISTRO_VERIFY_KEY) given")
        return []
    notes.append(IMAGE_SIGNATURE_NOT_CHECKED)
    if require_signatures:
        return [Finding("signature", ref, f"{digest or 'the image'}: its signature was not "
                                          "checked (--require-signatures)")]
    return []
