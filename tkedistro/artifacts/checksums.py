"""``SHA256SUMS`` and ``SHA512SUMS`` of a release's files, as upstream publishes both.

Each file is read once for both digests. The lines are the ones ``sha256sum -c`` and
``sha512sum -c`` check (``<hex>  <path>``, sorted by path, paths relative to the output
folder); ``SHA256SUMS`` keeps exactly the format the build has always written
(``build/output.py``, whose ``read_sha256sums``/``read_sha512sums`` read them back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tkedistro.build.output import SHA512_SUMS_NAME, SUMS_NAME, format_sums
from tkedistro.core.files import file_digests, write_atomic

ALGORITHMS = {"sha256": SUMS_NAME, "sha512": SHA512_SUMS_NAME}


def hash_files(out_dir: Path, rel_paths: Sequence[str]) -> dict[str, dict[str, str]]:
    """{"sha256": {path: hex}, "sha512": {path: hex}} of each file (paths relative to
    ``out_dir``), each read once; nothing is written."""
    for rel in rel_paths:
        if "\n" in rel or "\\" in rel:  # sha*sum would escape these; no release file has them
            raise ValueError(f"cannot list {rel!r} in a checksum file")
    names = tuple(ALGORITHMS)
    digests = {rel: file_digests(out_dir / rel, names) for rel in sorted(set(rel_paths))}
    return {name: {rel: found[name] for rel, found in digests.items()} for name in names}


def write_checksums(out_dir: Path, rel_paths: Sequence[str],
                    known: Mapping[str, Mapping[str, str]] | None = None
                    ) -> dict[str, dict[str, str]]:
    """Write ``SHA256SUMS`` and ``SHA512SUMS`` of ``rel_paths`` in ``out_dir``; files whose
    digests ``known`` (a ``hash_files`` answer) already holds are not read again. Returns
    {"sha256": {path: hex}, "sha512": {path: hex}}."""
    known = known or {}
    have = [rel for rel in rel_paths if all(rel in known.get(n, {}) for n in ALGORITHMS)]
    sums = hash_files(out_dir, [rel for rel in rel_paths if rel not in have])
    for name in ALGORITHMS:
        sums[name].update({rel: known[name][rel] for rel in have})
        sums[name] = dict(sorted(sums[name].items()))
    for name, file_name in ALGORITHMS.items():
        write_atomic(out_dir / file_name, format_sums(sums[name]).encode("utf-8"))
    return sums
