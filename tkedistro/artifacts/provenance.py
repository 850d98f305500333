"""The release's provenance: an in-toto Statement v1 with a SLSA Provenance v1 predicate,
``<out_dir>/provenance.intoto.json``; with a signing key the finisher also writes it signed,
as the DSSE envelope ``provenance.intoto.jsonl`` (``signing/dsse.py``), and ``.sig``.

Subjects are the release outputs by sha256: each file by its path relative to the output
folder, each image by its reference with the digest of its index. The materials
(``resolvedDependencies``) are the upstream commit (``git+<url>@refs/tags/<tag>`` with digest
``gitCommit``, the SLSA convention for a git source), every patch (sha256, trailers as
annotations), the builder image (its id) and, for the shipped images, each base image they
sit on (its image id, with its platforms, Debian suite and mirror as annotations) and the
Debian archive index it was debootstrapped from (the suite's ``InRelease`` URL and sha256,
with its date and point release): ``images/images.json`` names them. The statement is a
function of its inputs, so a reproduced build yields the same bytes: wall-clock times
(``startedOn``/``finishedOn``) and an ``invocationId`` are left out; the tree commit's time is
``internalParameters.sourceDateEpoch``. When ``sbom.spdx.json`` is already in the output
folder it is named as a byproduct.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tkedistro.artifacts.context import ReleaseContext
from tkedistro.artifacts.sbom import SBOM_NAME
from tkedistro.core.errors import BuildError
from tkedistro.core.files import sha256_file, write_atomic
from tkedistro.core.workspace import manifest_name
from tkedistro.debian.release import (
    MIRROR_LABEL,
    RELEASE_DATE_LABEL,
    RELEASE_LABEL,
    RELEASE_SHA256_LABEL,
    RELEASE_VERSION_LABEL,
    SUITE_LABEL,
)
from tkedistro.images.shipped import read_images_json

PROVENANCE_NAME = "provenance.intoto.json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://tkedistro.invalid/build/v1"
BUILDER_ID = "https://tkedistro.invalid/builder/v1"
_SHA256 = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")


def _hex(digest: str, what: str) -> str:
    found = _SHA256.match(digest.strip().lower())
    if found is None:
        raise BuildError(f"provenance: {what}: not a sha256 digest: {digest!r}")
    return found.group(1)


def release_subjects(files: Mapping[str, Mapping[str, str]],
                     images: Sequence[Mapping[str, Any]] = ()) -> dict[str, str]:
    """The subjects of a release output: each file's sha256 by relative path, each image's
    index digest by reference."""
    subjects = {path: sums["sha256"] for path, sums in files.items()}
    subjects.update({str(i["ref"]): str(i["index_digest"]) for i in images})
    return subjects


def _dependencies(ctx: ReleaseContext) -> list[dict[str, Any]]:
    upstream = {
        "name": "kubernetes",
        "uri": f"git+{ctx.upstream_url}@refs/tags/{ctx.tag}",
        "digest": {"gitCommit": ctx.upstream_commit},
    }
    patches = [
        {
            "name": patch.file,
            "digest": {"sha256": _hex(patch.sha256, patch.file)},
            "annotations": {**dict(patch.trailers),
                            **({"subject": patch.subject} if patch.subject else {})},
        }
        for patch in ctx.patches
    ]
    builder = {
        "name": ctx.builder_image,
        "digest": {"sha256": _hex(ctx.builder_image_id, ctx.builder_image)},
        "annotations": {"goVersion": ctx.go_version, "digestOf": "image id (config digest)"},
    }
    return [upstream, *patches, builder]


def base_dependencies(images: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The materials the images sit on (``images.json`` entries' ``bases``): each base image
    once by its id, then each Debian (In)Release once by its URL and sha256."""
    bases: dict[tuple[str, str], dict[str, Any]] = {}
    releases: dict[tuple[str, str], dict[str, Any]] = {}
    for image in images:
        for platform, base in sorted(dict(image.get("bases") or {}).items()):
            name, digest = str(base["name"]), str(base["digest"])
            labels = {str(k): str(v) for k, v in dict(base.get("labels") or {}).items()}
            entry = bases.setdefault((name, digest), _base_entry(name, digest, labels))
            if platform not in entry["annotations"]["platforms"]:
                entry["annotations"]["platforms"].append(platform)
            if RELEASE_LABEL in labels and RELEASE_SHA256_LABEL in labels:
                uri, sha = labels[RELEASE_LABEL], labels[RELEASE_SHA256_LABEL]
                releases.setdefault((uri, sha), _release_entry(uri, sha, labels))
    return [*(bases[key] for key in sorted(bases)), *(releases[key] for key in sorted(releases))]


def _base_entry(name: str, digest: str, labels: Mapping[str, str]) -> dict[str, Any]:
    notes: dict[str, Any] = {"digestOf": "image id (config digest)", "platforms": []}
    for key, label in (("debianSuite", SUITE_LABEL), ("debianMirror", MIRROR_LABEL),
                       ("debianRelease", RELEASE_LABEL)):
        if label in labels:
            notes[key] = labels[label]
    return {"name": name, "digest": {"sha256": _hex(digest, name)}, "annotations": notes}


def _release_entry(uri: str, sha256: str, labels: Mapping[str, str]) -> dict[str, Any]:
    notes = {key: labels[label] for key, label in (("date", RELEASE_DATE_LABEL),
                                                   ("version", RELEASE_VERSION_LABEL))
             if label in labels}
    return {"uri": uri, "digest": {"sha256": _hex(sha256, uri)},
            **({"annotations": notes} if notes else {})}


def shipped_bases(out_dir: Path, subjects: Mapping[str, str]) -> list[dict[str, Any]]:
    """``base_dependencies`` of the images in ``out_dir/images/images.json`` that are
    subjects (by reference and index digest)."""
    named = [image.to_json() for image in read_images_json(out_dir)
             if image.ref in subjects
             and _hex(subjects[image.ref], image.ref) == _hex(image.index_digest, image.ref)]
    return base_dependencies(named)


def provenance_statement(ctx: ReleaseContext, subjects: Mapping[str, str],
                         byproducts: Mapping[str, str] | None = None,
                         bases: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The statement as JSON data; ``subjects`` and ``byproducts`` map a name to a sha256;
    ``bases`` are more materials (``base_dependencies``)."""
    run_details: dict[str, Any] = {
        "builder": {"id": BUILDER_ID, "version": {"tkedistro": ctx.tool_version}},
        "metadata": {},
    }
    if byproducts:
        run_details["byproducts"] = [
            {"name": name, "digest": {"sha256": _hex(d, name)}}
            for name, d in sorted(byproducts.items())
        ]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": name, "digest": {"sha256": _hex(d, name)}}
            for name, d in sorted(subjects.items())
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "release": ctx.release,
                    "manifest": manifest_name(ctx.release),
                },
                "internalParameters": {
                    "distroVersion": ctx.distro_version,
                    "treeCommit": ctx.tree_commit,
                    "sourceDateEpoch": ctx.source_date_epoch,
                    "platforms": list(ctx.platforms),
                    "components": list(ctx.components),
                    "imageComponents": list(ctx.image_components),
                    "builderImage": ctx.builder_image,
                    "goVersion": ctx.go_version,
                },
                "resolvedDependencies": [*_dependencies(ctx), *bases],
            },
            "runDetails": run_details,
        },
    }


def write_provenance(out_dir: Path, ctx: ReleaseContext, subjects: Mapping[str, str]) -> Path:
    """Write ``out_dir/provenance.intoto.json`` for ``subjects`` (name -> sha256, bare hex or
    ``sha256:<hex>``; see ``release_subjects``); returns its path."""
    sbom = out_dir / SBOM_NAME
    byproducts = {SBOM_NAME: sha256_file(sbom)} if sbom.is_file() else None
    statement = provenance_statement(ctx, subjects, byproducts,
                                     shipped_bases(out_dir, subjects))
    target = out_dir / PROVENANCE_NAME
    write_atomic(target, (json.dumps(statement, indent=2, sort_keys=True) + "\n").encode())
    return target
