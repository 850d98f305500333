"""``provenance.intoto.json``: an in-toto statement whose subjects are exactly the release's
files and images by sha256, and whose materials name the upstream commit and every patch.

The build's statement (``artifacts/provenance.py``) has one subject per ``SHA256SUMS`` line
and one per image (its reference, the digest of its index). Its ``resolvedDependencies`` hold
the upstream (``digest.gitCommit``), the builder image (named by
``internalParameters.builderImage``), every patch with its sha256, and each component image's
Debian base and the ``InRelease`` it came from (images carry a ``digestOf`` annotation, the
``InRelease`` a ``uri``: neither is a patch); the SBOM lists the same patches and commit, and
the two must agree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tkedistro.verify.findings import Finding

PROVENANCE_NAME = "provenance.intoto.json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
CHECK = "provenance"
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def load_statement(path: Path) -> tuple[dict[str, Any] | None, list[Finding]]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, [Finding(CHECK, path.name, "missing")]
    except (OSError, ValueError) as exc:
        return None, [Finding(CHECK, path.name, f"not readable JSON: {exc}")]
    if not isinstance(data, dict) or data.get("_type") != STATEMENT_TYPE:
        return None, [Finding(CHECK, path.name, f"not an in-toto statement ({STATEMENT_TYPE})")]
    return data, []


def subjects(statement: Mapping[str, Any]) -> dict[str, str]:
    """name -> sha256 hex of every subject (a subject without one maps to "")."""
    found: dict[str, str] = {}
    for subject in statement.get("subject") or []:
        if isinstance(subject, dict):
            digest = subject.get("digest")
            found[str(subject.get("name"))] = (str(digest.get("sha256", ""))
                                               if isinstance(digest, dict) else "")
    return found


def check_subjects(statement: Mapping[str, Any], expected: Mapping[str, str]) -> list[Finding]:
    """The subjects equal ``expected`` (name -> sha256 hex): none missing, none extra, each
    digest the same."""
    named = subjects(statement)
    findings = []
    for name, digest in sorted(expected.items()):
        if name not in named:
            findings.append(Finding(CHECK, name, "not a subject of the provenance"))
        elif named[name] != digest:
            findings.append(Finding(CHECK, name, f"the provenance gives sha256 "
                                                 f"{named[name] or 'none'}, not {digest}"))
    for name in sorted(set(named) - set(expected)):
        findings.append(Finding(CHECK, name, "a subject of the provenance that the release "
                                             "does not ship"))
    return findings


def _is_patch(entry: Mapping[str, Any], builder: object) -> bool:
    """A patch file among the materials: named, not fetched from a URI (the upstream, a Debian
    ``InRelease``) and not an image (the builder, a component base: ``digestOf``)."""
    annotations = entry.get("annotations")
    image = isinstance(annotations, dict) and "digestOf" in annotations
    return "name" in entry and "uri" not in entry and not image and entry.get("name") != builder


def materials(statement: Mapping[str, Any]) -> tuple[str | None, dict[str, str]]:
    """(the upstream commit, {patch file: sha256 hex}) of the statement's materials."""
    definition = (statement.get("predicate") or {}).get("buildDefinition") or {}
    builder = (definition.get("internalParameters") or {}).get("builderImage")
    commit = None
    patches: dict[str, str] = {}
    for entry in definition.get("resolvedDependencies") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), dict):
            continue
        if "gitCommit" in entry["digest"]:
            commit = str(entry["digest"]["gitCommit"])
        elif _is_patch(entry, builder):
            patches[str(entry.get("name"))] = str(entry["digest"].get("sha256", ""))
    return commit, patches


def check_materials(statement: Mapping[str, Any],
                    sbom: Mapping[str, Any] | None) -> list[Finding]:
    """The upstream commit and each patch's sha256 named, and the same as in the SBOM."""
    commit, patches = materials(statement)
    findings = []
    if commit is None or not _COMMIT.fullmatch(commit):
        findings.append(Finding(CHECK, PROVENANCE_NAME, "names no upstream commit "
                                                        "(resolvedDependencies gitCommit)"))
    for name, digest in sorted(patches.items()):
        if not _SHA256.fullmatch(digest):
            findings.append(Finding(CHECK, name, "the provenance gives the patch no sha256"))
    if sbom is not None:
        findings += _against_sbom(commit, patches, sbom)
    return findings


def sbom_patches(sbom: Mapping[str, Any]) -> dict[str, str]:
    """{patch file: sha256} of the SBOM's patches (source packages with a file name)."""
    found = {}
    for package in sbom.get("packages") or []:
        if isinstance(package, dict) and package.get("primaryPackagePurpose") == "SOURCE" \
                and package.get("packageFileName"):
            sums = [str(c.get("checksumValue")) for c in package.get("checksums") or []
                    if isinstance(c, dict) and c.get("algorithm") == "SHA256"]
            found[str(package["packageFileName"])] = sums[0] if sums else ""
    return found


def _against_sbom(commit: str | None, patches: Mapping[str, str],
                  sbom: Mapping[str, Any]) -> list[Finding]:
    findings = []
    listed = sbom_patches(sbom)
    for name in sorted(set(patches) | set(listed)):
        if patches.get(name) != listed.get(name):
            findings.append(Finding(CHECK, name, f"the provenance gives the patch sha256 "
                                                 f"{patches.get(name) or 'none'}, the SBOM "
                                                 f"{listed.get(name) or 'none'}"))
    sources = " ".join(str(p.get("sourceInfo", "")) for p in sbom.get("packages") or []
                       if isinstance(p, dict))
    if commit and f"commit {commit}" not in sources:
        findings.append(Finding(CHECK, PROVENANCE_NAME, f"upstream commit {commit} is not the "
                                                        "one the SBOM names"))
    return findings
