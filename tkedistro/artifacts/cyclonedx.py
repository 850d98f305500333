"""The release SBOM rendered as CycloneDX 1.6 JSON, ``<out_dir>/sbom.cdx.json``, for scanners
that read only CycloneDX; made with cyclonedx-python-lib from the SPDX document.

Every SPDX package becomes a component (its SPDX id the ``bom-ref``; its purl, checksums,
declared license and version kept), the package the SPDX document DESCRIBES the metadata's
component, and CONTAINS, STATIC_LINK and GENERATED_FROM relationships the dependency graph.
Like the SPDX document it is a function of its inputs: the timestamp is the SPDX document's,
the serial number a UUID derived from its namespace.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tkedistro.core.files import write_atomic

if TYPE_CHECKING:
    from cyclonedx.model.component import Component

CYCLONEDX_NAME = "sbom.cdx.json"
DEPENDS = ("CONTAINS", "STATIC_LINK", "GENERATED_FROM")
NOASSERTION = "NOASSERTION"


def _component(package: Mapping[str, Any]) -> Component:
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.license import LicenseExpression
    from packageurl import PackageURL

    kinds = {"CONTAINER": ComponentType.CONTAINER, "LIBRARY": ComponentType.LIBRARY,
             "APPLICATION": ComponentType.APPLICATION}
    algorithms = {"SHA256": HashAlgorithm.SHA_256, "SHA512": HashAlgorithm.SHA_512,
                  "SHA1": HashAlgorithm.SHA_1}
    purls = [r["referenceLocator"] for r in package.get("externalRefs", [])
             if r.get("referenceType") == "purl"]
    license_expr = package.get("licenseDeclared", NOASSERTION)
    return Component(
        name=package["name"], version=package.get("versionInfo"),
        type=kinds.get(package.get("primaryPackagePurpose", ""), ComponentType.FILE),
        bom_ref=package["SPDXID"], purl=PackageURL.from_string(purls[0]) if purls else None,
        hashes=[HashType(alg=algorithms[c["algorithm"]], content=c["checksumValue"])
                for c in package.get("checksums", []) if c["algorithm"] in algorithms],
        licenses=[] if license_expr == NOASSERTION else [LicenseExpression(license_expr)],
        description=package.get("summary") or package.get("comment"),
    )


def cyclonedx_json(spdx: Mapping[str, Any]) -> str:
    """The CycloneDX 1.6 JSON text of an SPDX 2.3 JSON document."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.output.json import JsonV1Dot6

    components = {p["SPDXID"]: _component(p) for p in spdx["packages"]}
    described = {r["relatedSpdxElement"] for r in spdx["relationships"]
                 if r["relationshipType"] == "DESCRIBES"}
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, spdx["documentNamespace"]))
    bom.metadata.timestamp = datetime.fromisoformat(
        spdx["creationInfo"]["created"].replace("Z", "+00:00"))
    for ident, component in components.items():
        if ident in described:
            bom.metadata.component = component
        else:
            bom.components.add(component)
    depends: dict[str, set[str]] = {}
    for relation in spdx["relationships"]:
        if relation["relationshipType"] in DEPENDS and relation["spdxElementId"] in components:
            depends.setdefault(relation["spdxElementId"], set()).add(
                relation["relatedSpdxElement"])
    for ident, targets in sorted(depends.items()):
        bom.register_dependency(components[ident],
                                [components[t] for t in sorted(targets) if t in components])
    return str(JsonV1Dot6(bom).output_as_string(indent=2))


def write_cyclonedx(out_dir: Path, spdx: Mapping[str, Any]) -> Path:
    """Write ``out_dir/sbom.cdx.json`` from the release's SPDX document; returns its path."""
    target = out_dir / CYCLONEDX_NAME
    write_atomic(target, (cyclonedx_json(spdx) + "\n").encode())
    return target
