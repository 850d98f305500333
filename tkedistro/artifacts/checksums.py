"""``SHA256SUMS`` and ``SHA512SUMS`` of a release's files, as upstream publishes both.

Each file is read once for both digests. The lines are the ones ``sha256sum -c`` and
``sha512sum -c`` check (``<hex>  <path>``, sorted by path, paths relative to the output
folder); ``SHA256SUMS`` keeps exactly the format the build has always written
(``build/output.py``, whose ``read_sha256sums``/``read_sha512sums`` read them back).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tkedistro.build.output import SHA512_SUMS_NAME, SUMS_NAME, format_sums
from tkedistro.core.files import file_digests, write_atomic

ALGORITHMS = {"sha256": SUMS_NAME, "sha512": SHA512_SUMS_NAME}


def write_checksums(out_dir: Path, rel_paths: Sequence[str]) -> dict[str, dict[str, str]]:
    """Hash each file (paths relative to ``out_dir``) and write ``SHA256SUMS`` and
    ``SHA512SUMS`` in ``out_dir``; returns {"sha256": {path: hex}, "sha512": {path: hex}}."""
    for rel in rel_paths:
        if "\n" in rel or "\\" in rel:  # sha*sum would escape these; no release file has them
            raise ValueError(f"cannot list {rel!r} in a checksum file")
    names = tuple(ALGORITHMS)
    digests = {rel: file_digests(out_dir / rel, names) for rel in sorted(set(rel_paths))}
    sums = {name: {rel: found[name] for rel, found in digests.items()} for name in names}
    for name, file_name in ALGORITHMS.items():
        write_atomic(out_dir / file_name, format_sums(sums[name]).encode("utf-8"))
    return sums
