"""``sbom.spdx.json``: a valid SPDX 2.3 document (the SPDX project's spdx-tools) that names
every shipped file by its path and sha256.

The build's SBOM (``artifacts/sbom.py``) gives each binary, tarball and image archive a
package whose ``packageFileName`` is the file's path in the release folder and whose SHA256
checksum is its digest; the SBOM cannot name itself, so ``sbom.spdx.json`` and its CycloneDX
rendering ``sbom.cdx.json`` are not looked for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tkedistro.verify.findings import Finding

SBOM_NAME = "sbom.spdx.json"
RENDERINGS = frozenset({SBOM_NAME, "sbom.cdx.json"})  # the SBOM and its other format
CHECK = "sbom"
MAX_SHOWN = 5


def load_sbom(path: Path) -> tuple[dict[str, Any] | None, list[Finding]]:
    """The document as JSON data when it validates as SPDX 2.3, with its problems."""
    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    if not path.is_file():
        return None, [Finding(CHECK, path.name, "missing")]
    try:
        data = json.loads(path.read_bytes())
        document = parse_file(str(path))
    except SPDXParsingError as exc:
        messages = list(exc.messages)
        return None, [Finding(CHECK, path.name, "not an SPDX document: "
                              + "; ".join(messages[:MAX_SHOWN]))]
    except (OSError, ValueError) as exc:
        return None, [Finding(CHECK, path.name, f"not readable JSON: {exc}")]
    except Exception as exc:  # noqa: BLE001 - the parser's own failures on a bad document
        # (spdx-tools 0.8.0 lets beartype's type violations out instead of SPDXParsingError)
        return None, [Finding(CHECK, path.name, f"not an SPDX document: {exc}")]
    invalid = validate_full_spdx_document(document, "SPDX-2.3")
    problems = [Finding(CHECK, path.name, f"not valid SPDX 2.3: {m.validation_message}")
                for m in invalid[:MAX_SHOWN]]
    return (data if isinstance(data, dict) else None), problems


def named_files(document: Mapping[str, Any]) -> dict[str, set[str]]:
    """packageFileName -> the SHA256 checksums the packages of that name give."""
    named: dict[str, set[str]] = {}
    for package in document.get("packages") or []:
        if not isinstance(package, dict) or not package.get("packageFileName"):
            continue
        sums = {str(c.get("checksumValue", "")).lower()
                for c in package.get("checksums") or []
                if isinstance(c, dict) and c.get("algorithm") == "SHA256"}
        named.setdefault(str(package["packageFileName"]), set()).update(sums)
    return named


def check_coverage(document: Mapping[str, Any], shipped: Mapping[str, str]) -> list[Finding]:
    """The SBOM names each file of ``shipped`` (path -> sha256, the listed digests) with
    that digest."""
    findings = []
    named = named_files(document)
    for rel, digest in sorted(shipped.items()):
        if rel in RENDERINGS:
            continue
        if rel not in named:
            findings.append(Finding(CHECK, rel, f"not named in {SBOM_NAME}"))
        elif digest not in named[rel]:
            findings.append(Finding(CHECK, rel, f"{SBOM_NAME} gives it another sha256 "
                                                f"({', '.join(sorted(named[rel])) or 'none'})"))
    return findings
