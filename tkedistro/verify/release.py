"""``tkedistro verify`` of a release folder: ``_output/<release>`` of the workspace, or an
unpacked copy anywhere (no distro repo needed).

In order: the sums (``sums.py``), the signatures when a key is given (``signatures.py``), the
SBOM (``sbom.py``), the provenance (``provenance.py``) and each image archive's blobs and
digests (``archives.py``), every problem collected into one ``Report``. Given the distro
repo (``Pins``), the provenance's upstream commit and patch digests are also held against the
release manifest's pin and the patch files.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tkedistro.core.errors import ReleaseNotFoundError
from tkedistro.core.files import sha256_file
from tkedistro.signing.keys import PublicKey
from tkedistro.verify import archives, provenance, sbom, signatures, sums
from tkedistro.verify.findings import Finding
from tkedistro.verify.report import Report

IMAGES_JSON = "images/images.json"
ARCHIVE_SUFFIX = ".oci.tar"
# signed beside the listed files (the DSSE envelope carries its own signature)
SIGNED_BESIDE = (sums.SHA256_SUMS, sums.SHA512_SUMS, provenance.PROVENANCE_NAME)
NO_KEY = "signatures not checked: no --key (or TKEDISTRO_VERIFY_KEY) given"


@dataclass(frozen=True)
class Pins:
    """What the distro repo says the release is built from: the manifest (for messages),
    its pinned upstream commit and each patch file's sha256."""

    manifest: str
    upstream_commit: str
    patches: Mapping[str, str]


def check_folder_shape(folder: Path) -> None:
    """``ReleaseNotFoundError`` naming ``folder`` when it is not a release folder."""
    if not folder.is_dir():
        raise ReleaseNotFoundError([f"{folder}: not a folder"],
                                   hint="give a release (1.20), a release folder or an image")
    if not (folder / sums.SHA256_SUMS).is_file():
        raise ReleaseNotFoundError(
            [f"{folder}: not a release folder: it has no {sums.SHA256_SUMS}"],
            hint="give the folder `tkedistro build` published, or a copy of it")


def verify_folder(folder: Path, key: PublicKey | None,
                  pins: Pins | None = None) -> Report:
    """Every check on the release folder ``folder`` (its shape checked by the caller)."""
    report = Report(str(folder))
    found = sums.check_sums(folder)
    report.add(found.findings)
    report.files = len(found.listed)
    if key is None:
        report.notes.append(NO_KEY)
    else:
        report.add(check_signatures(folder, key, found))
    document, problems = sbom.load_sbom(folder / sbom.SBOM_NAME)
    report.add(problems)
    if document is not None:
        report.add(sbom.check_coverage(document, found.listed))
    images, problems = load_images(folder)
    report.add(problems)
    report.add(check_provenance(folder, found.listed, images, document, pins))
    report.add(check_images(folder, images))
    report.images = len(images)
    return report


def check_signatures(folder: Path, key: PublicKey,
                     found: sums.Sums) -> list[Finding]:
    """Each listed file's and each file of ``SIGNED_BESIDE``'s ``.sig``, and the envelope
    (a file that is not there is named by the check that reads it)."""
    findings = []
    for rel in sorted(found.listed):
        if rel in found.actual:  # an unreadable one is named by the sums already
            problem = signatures.check_file_signature(key, folder, rel, found.actual[rel])
            findings += [problem] if problem else []
    for name in SIGNED_BESIDE:
        path = folder / name
        if not _is_regular(path):
            continue  # the sums, provenance and envelope checks name it
        problem = signatures.check_file_signature(key, folder, name, sha256_file(path))
        findings += [problem] if problem else []
    return findings + signatures.check_envelope(key, folder, provenance.PROVENANCE_NAME)


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def load_images(folder: Path) -> tuple[list[dict[str, Any]], list[Finding]]:
    """The entries of ``images/images.json`` ([] when the release has no images folder)."""
    path = folder / IMAGES_JSON
    if not path.exists():
        archived = sorted((folder / "images").glob(f"*{ARCHIVE_SUFFIX}"))
        return [], [Finding(archives.CHECK, IMAGES_JSON, "missing, but the release has image "
                            "archives")] if archived else []
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        return [], [Finding(archives.CHECK, IMAGES_JSON, f"not readable JSON: {exc}")]
    entries = data.get("images") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and all(k in e for k in ("ref", "index_digest", "archive"))
            for e in entries):
        return [], [Finding(archives.CHECK, IMAGES_JSON, "expected a list of images, each "
                            "with ref, index_digest and archive")]
    return entries, []


def check_provenance(folder: Path, listed: Mapping[str, str], images: list[dict[str, Any]],
                     document: Mapping[str, Any] | None, pins: Pins | None) -> list[Finding]:
    statement, findings = provenance.load_statement(folder / provenance.PROVENANCE_NAME)
    if statement is None:
        return findings
    expected = dict(listed)
    expected.update({str(i["ref"]): str(i["index_digest"]).removeprefix("sha256:")
                     for i in images})
    findings += provenance.check_subjects(statement, expected)
    findings += provenance.check_materials(statement, document)
    if pins is not None:
        findings += check_pins(statement, pins)
    return findings


def check_pins(statement: Mapping[str, Any], pins: Pins) -> list[Finding]:
    """The provenance's upstream commit and patches against the distro repo's."""
    commit, patches = provenance.materials(statement)
    findings = []
    if commit != pins.upstream_commit:
        findings.append(Finding(provenance.CHECK, provenance.PROVENANCE_NAME,
                                f"upstream commit {commit} is not the pin of {pins.manifest} "
                                f"({pins.upstream_commit})"))
    for name in sorted(set(patches) | set(pins.patches)):
        if patches.get(name) != pins.patches.get(name):
            findings.append(Finding(provenance.CHECK, name,
                                    f"the provenance gives the patch sha256 "
                                    f"{patches.get(name) or 'none'}, the file in the distro "
                                    f"repo has {pins.patches.get(name) or 'none'}"))
    return findings


def check_images(folder: Path, images: list[dict[str, Any]]) -> list[Finding]:
    """Each archive of images.json: blobs, index and platform digests; an archive in
    ``images/`` that images.json does not name is a problem."""
    findings = []
    named = {str(i["archive"]) for i in images}
    for path in sorted((folder / "images").glob(f"*{ARCHIVE_SUFFIX}")):
        rel = path.relative_to(folder).as_posix()
        if rel not in named:
            findings.append(Finding(archives.CHECK, rel, f"not named in {IMAGES_JSON}"))
    for image in sorted(images, key=lambda i: str(i["archive"])):
        findings += check_image_entry(folder, image)
    return findings


def check_image_entry(folder: Path, image: Mapping[str, Any]) -> list[Finding]:
    """One archive against its images.json entry (the provenance holds the entry's index
    digest, ``check_provenance``)."""
    rel = str(image["archive"])
    if sums.path_problem(rel) or not _is_regular(folder / rel):
        return [Finding(archives.CHECK, rel, f"the archive {IMAGES_JSON} names is missing or "
                                             "not a regular file")]
    walked = archives.check_archive(folder, rel)
    findings = list(walked.findings)
    if walked.index_digest is not None and walked.index_digest != image["index_digest"]:
        findings.append(Finding(archives.CHECK, rel, f"holds the image index "
                                f"{walked.index_digest}, {IMAGES_JSON} says "
                                f"{image['index_digest']}"))
    manifests = image.get("manifests")
    if isinstance(manifests, dict) and not walked.findings and walked.manifests != manifests:
        findings.append(Finding(archives.CHECK, rel, f"its platforms' manifests "
                                f"{walked.manifests} are not the ones {IMAGES_JSON} gives "
                                f"({manifests})"))
    return findings
