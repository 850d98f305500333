"""The Debian archive state a root filesystem came from: the suite's signed index as
debootstrap fetched it.

debootstrap keeps the suite's ``InRelease`` (clearsigned; older runs or mirrors: ``Release``
with ``Release.gpg``) in ``<root>/var/lib/apt/lists/`` after verifying its signature. Its
sha256 names the exact archive state every package came from (the ``Release`` lists every
``Packages`` index by digest), and its ``Date`` and ``Version`` (``13.2``: the point release)
say when. ``debian/rootfs.py`` records them as labels of the base image before it empties the
lists, so a scanner or the provenance can follow a shipped image back to the archive.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core import files

LISTS = Path("var/lib/apt/lists")
SIGNED_NAMES = ("InRelease", "Release")  # preferred first: InRelease is the file as served
MAX_RELEASE_BYTES = 8 * 2**20  # trixie's is ~140 KiB
_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"

# the labels a Debian base carries (``debian/rootfs.py``); a shipped image inherits them
SUITE_LABEL = "org.tkedistro.debian.suite"
MIRROR_LABEL = "org.tkedistro.debian.mirror"
RELEASE_LABEL = "org.tkedistro.debian.release"  # the URL of the (In)Release file
RELEASE_SHA256_LABEL = "org.tkedistro.debian.release.sha256"
RELEASE_DATE_LABEL = "org.tkedistro.debian.release.date"
RELEASE_VERSION_LABEL = "org.tkedistro.debian.release.version"
IDENTITY_LABELS = (SUITE_LABEL, MIRROR_LABEL, RELEASE_LABEL, RELEASE_SHA256_LABEL,
                   RELEASE_DATE_LABEL, RELEASE_VERSION_LABEL)


@dataclass(frozen=True)
class ReleaseFile:
    """One suite's (In)Release: where it was fetched, its sha256 and its Date/Version."""

    uri: str
    sha256: str  # ``sha256:<hex>`` of the file's bytes, as the mirror served them
    date: str  # the Release's ``Date:`` field ("" when it has none)
    version: str  # the Release's ``Version:`` field ("" for a suite without, like sid)

    def labels(self) -> dict[str, str]:
        found = {RELEASE_LABEL: self.uri, RELEASE_SHA256_LABEL: self.sha256,
                 RELEASE_DATE_LABEL: self.date, RELEASE_VERSION_LABEL: self.version}
        return {key: value for key, value in found.items() if value}


def release_fields(text: str) -> dict[str, str]:
    """The single-line fields of a Release's first paragraph (an InRelease's signed text;
    the signature armour after it is left out)."""
    body = text.split(_SIGNATURE, 1)[0]
    fields: dict[str, str] = {}
    for line in body.splitlines():
        found = re.match(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]*(.*)$", line)
        if found and found.group(1) not in fields:
            fields[found.group(1)] = found.group(2).strip()
    return fields


def read_release(rootfs: Path, suite: str, mirror: str) -> ReleaseFile | None:
    """The (In)Release debootstrap left in ``rootfs`` for ``suite`` from ``mirror``; None
    when there is none (a root not made by debootstrap)."""
    for name in SIGNED_NAMES:
        for path in sorted((rootfs / LISTS).glob(f"*_dists_{suite}_{name}")):
            data = files.read_bytes(path, max_bytes=MAX_RELEASE_BYTES)
            fields = release_fields(data.decode(errors="replace"))
            uri = f"{mirror.rstrip('/')}/dists/{suite}/{name}"
            return ReleaseFile(uri, "sha256:" + hashlib.sha256(data).hexdigest(),
                               fields.get("Date", ""), fields.get("Version", ""))
    return None
