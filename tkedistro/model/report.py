"""``tkedistro show``: what a release manifest says, as data and text (``list``:
``releaselist.py``)."""

from __future__ import annotations

from typing import Any

from tkedistro.core.errors import PatchFormatError
from tkedistro.core.workspace import Workspace, path_problem
from tkedistro.model.manifest import PatchEntry, load_release
from tkedistro.model.patches import parse_patch, subject_from_filename, unconfirmed_trailers


def show_release(ws: Workspace, release: str) -> dict[str, Any]:
    """The manifest of ``release`` plus, for each patch, its subject and trailers."""
    manifest = load_release(ws, release)
    data = manifest.summary()
    data["manifest"] = ws.rel(manifest.path)
    data["patches"] = [_patch_info(ws, entry) for entry in manifest.patches]
    return data


def _patch_info(ws: Workspace, entry: PatchEntry) -> dict[str, Any]:
    """What a reader wants about one patch; a broken patch is shown, not raised (see validate)."""
    info: dict[str, Any] = {
        "file": entry.file,
        "subject": entry.subject or subject_from_filename(ws.root / entry.file),
        "kind": None,
        "upstream_ref": None,
        "upstream_status": None,
        "unconfirmed": {},  # trailer -> "inferred" or "defaulted" (by patches import)
        "problem": None,
    }
    problem = path_problem(ws.root, entry.file)
    if problem:
        info["problem"] = problem
        return info
    try:
        patch = parse_patch(ws.root / entry.file, entry.file)
    except PatchFormatError as exc:
        info["problem"] = exc.problems[0]
        return info
    info["subject"] = patch.subject or info["subject"]
    info["kind"] = patch.trailer("Patch-Kind")
    info["upstream_ref"] = patch.trailer("Upstream-Ref")
    info["upstream_status"] = patch.trailer("Upstream-Status")
    info["unconfirmed"] = unconfirmed_trailers(patch)
    return info


def format_show(data: dict[str, Any]) -> str:
    up = data["upstream"]
    fields = [
        ("manifest", f"{data['manifest']} (schema {data['schema']})"),
        ("upstream", up["url"]),
        ("tag", up["tag"]),
        ("commit", up["commit"]),
        ("distro version", data["distro_version"]),
        ("go", data["go"]["version"]),
        ("builder image", data["builder"]["image"]),
        ("components", ", ".join(data["components"])),
        ("platforms", ", ".join(data["platforms"])),
        ("patches", str(len(data["patches"])) if data["patches"] else "none"),
    ]
    width = max(len(name) for name, _ in fields)
    lines = [f"release {data['release']}"]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in fields]
    lines += [_patch_line(n, p) for n, p in enumerate(data["patches"], start=1)]
    if any(p["unconfirmed"] for p in data["patches"]):
        lines.append(f"  ? = inferred or defaulted by `patches import`, not confirmed yet: "
                     f"check it, then run `tkedistro patches confirm {data['release']}`")
    return "\n".join(lines)


def _patch_line(number: int, patch: dict[str, Any]) -> str:
    if patch["problem"]:
        return f"  {number:>4}. {patch['file']}  (unreadable: run tkedistro validate)"
    guessed = patch["unconfirmed"]
    kind, status = (f"{patch[field]}{'?' if key in guessed else ''}"
                    for field, key in (("kind", "Patch-Kind"),
                                       ("upstream_status", "Upstream-Status")))
    return f"  {number:>4}. {patch['file']}  [{kind}, {status}]  {patch['subject']}"
