"""The Debian packages installed in a root filesystem, as its dpkg status file says, with each
one's license read from its machine-readable copyright file.

``parse_status`` reads ``var/lib/dpkg/status`` (RFC 822 style paragraphs; only packages whose
``Status`` ends in ``installed``). ``copyright_license`` reads a
``usr/share/doc/<package>/copyright`` in Debian's machine-readable format (DEP-5, its first line
``Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/``): every
``License:`` of its ``Files:`` paragraphs, Debian's short names turned into SPDX identifiers
(``GPL-2+`` -> ``GPL-2.0-or-later``, ``Expat`` -> ``MIT``), joined with ``AND``. A name with
no SPDX identifier (``public-domain``, ``custom``) becomes ``LicenseRef-<package>-<name>``
with the text of its stand-alone ``License:`` paragraph. A copyright file in any other form
gives no license (the SBOM says NOASSERTION).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

STATUS_PATH = "var/lib/dpkg/status"
DOC_DIR = "usr/share/doc"
OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")
FORMAT_PREFIX = "format:"
FORMAT_URL = "debian.org/doc/packaging-manuals/copyright-format/1.0"
_ALIASES = {"expat": "MIT", "artistic": "Artistic-1.0", "zlib": "Zlib", "cc0": "CC0-1.0",
            "psf-2": "PSF-2.0", "openssl": "OpenSSL", "bsd-2": "BSD-2-Clause",
            "bsd-3": "BSD-3-Clause", "bsd-4": "BSD-4-Clause", "mpl-2": "MPL-2.0"}
_GNU = re.compile(r"(A?L?GPL|GFDL)-?([0-9](?:\.[0-9])?)(\+?)", re.IGNORECASE)
_OPERATOR = re.compile(r"\s+(or|and)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class ExtractedLicense:
    """A license named in a copyright file that has no SPDX identifier."""

    license_id: str  # LicenseRef-<package>-<name>
    name: str
    text: str


@dataclass(frozen=True)
class DebianPackage:
    """One installed package: its name, version, architecture and source package."""

    name: str
    version: str
    arch: str
    source: str
    source_version: str
    license: str | None = None  # an SPDX expression, None when not known
    extracted: tuple[ExtractedLicense, ...] = ()

    def with_license(self, license_expr: str | None,
                     extracted: tuple[ExtractedLicense, ...]) -> DebianPackage:
        return DebianPackage(self.name, self.version, self.arch, self.source,
                             self.source_version, license_expr, extracted)


def paragraphs(text: str) -> Iterator[dict[str, str]]:
    """The paragraphs of a Debian control-style file: field (lower case) -> value (its
    continuation lines joined with newlines, without their leading space)."""
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        last = ""
        for line in block.splitlines():
            if line.startswith((" ", "\t")) and last:
                fields[last] += "\n" + line[1:]
            elif ":" in line and not line.startswith("#"):
                key, _, value = line.partition(":")
                last = key.strip().lower()
                fields[last] = value.strip()
        if fields:
            yield fields


def parse_status(text: str) -> list[DebianPackage]:
    """The installed packages of a dpkg status file, sorted by name and architecture."""
    found = []
    for fields in paragraphs(text):
        if not fields.get("status", "").endswith(" installed") or "package" not in fields:
            continue
        version = fields.get("version", "")
        source, _, source_version = fields.get("source", "").partition(" ")
        found.append(DebianPackage(
            fields["package"], version, fields.get("architecture", ""),
            source or fields["package"], source_version.strip("()") or version))
    return sorted(found, key=lambda p: (p.name, p.arch))


def os_release_distro(text: str) -> str:
    """``debian-11`` from an os-release file (``ID`` and ``VERSION_ID``, else the codename);
    "" when it names neither."""
    values = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
    clean = {k.strip(): v.strip().strip('"') for k, v in values.items()}
    version = clean.get("VERSION_ID") or clean.get("VERSION_CODENAME", "")
    return f"{clean.get('ID', 'debian')}-{version}" if version else ""


def spdx_license_id(name: str) -> str | None:
    """The SPDX identifier of a Debian license short name; None when it has none."""
    from license_expression import get_spdx_licensing  # type: ignore[import-untyped]

    name = name.strip()
    gnu = _GNU.fullmatch(name)
    if gnu:
        family, version, plus = gnu.groups()
        version = version if "." in version else version + ".0"
        return f"{family.upper()}-{version}-{'or-later' if plus else 'only'}"
    if name.lower() in _ALIASES:
        return _ALIASES[name.lower()]
    if not re.fullmatch(r"[A-Za-z0-9.+-]+", name):
        return None
    info = get_spdx_licensing().validate(name)
    return None if info.errors else str(info.normalized_expression)


def _ref_id(package: str, name: str) -> str:
    return "LicenseRef-" + re.sub(r"[^A-Za-z0-9.-]+", "-", f"{package}-{name}").strip("-")


def copyright_license(package: str, text: str
                      ) -> tuple[str | None, tuple[ExtractedLicense, ...]]:
    """The SPDX expression of a machine-readable copyright file and the licenses it names
    without an SPDX identifier; (None, ()) for a file in any other form."""
    first = text.lstrip().split("\n", 1)[0].lower()
    if not (first.startswith(FORMAT_PREFIX) and FORMAT_URL in first):
        return None, ()
    found = list(paragraphs(text))
    texts = {name.strip(): body.strip() for f in found if "license" in f and "files" not in f
             for name, _, body in [f["license"].partition("\n")]}
    terms: set[str] = set()
    extracted: dict[str, ExtractedLicense] = {}
    for fields in found:
        if "files" not in fields or "license" not in fields:
            continue
        line = fields["license"].split("\n", 1)[0].strip()
        parts = _OPERATOR.split(line)
        names, operators = parts[0::2], [op.upper() for op in parts[1::2]]
        ids = []
        for name in names:
            spdx = spdx_license_id(name)
            if spdx is None:
                spdx = _ref_id(package, name)
                body = texts.get(name) or fields["license"].partition("\n")[2].strip()
                extracted[spdx] = ExtractedLicense(spdx, name, body or (
                    f"the license named {name!r} in {DOC_DIR}/{package}/copyright"))
            ids.append(spdx)
        expr = ids[0] + "".join(f" {op} {i}" for op, i in zip(operators, ids[1:], strict=True))
        terms.add(f"({expr})" if len(ids) > 1 else expr)
    if not terms:
        return None, ()
    return " AND ".join(sorted(terms)), tuple(sorted(extracted.values(),
                                                     key=lambda e: e.license_id))
