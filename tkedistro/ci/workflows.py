"""GitHub Actions workflows rendered from packaged templates (``tkedistro ci render|check``)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core.errors import WorkflowDriftError
from tkedistro.core.files import write_atomic
from tkedistro.core.render import render
from tkedistro.core.workspace import Workspace
from tkedistro.model.manifest import list_release_names, load_release

WORKFLOWS = ("ci.yml", "nightly.yml")


@dataclass(frozen=True)
class RenderedWorkflow:
    path: Path
    text: str


def _context(ws: Workspace) -> dict[str, object]:
    releases = []
    for name in list_release_names(ws.releases_dir):
        m = load_release(ws, name)
        releases.append({"name": name, "platforms": list(m.platforms),
                         "builder_image": m.builder.image, "tag": m.upstream.tag,
                         "url": m.upstream.url})
    return {"releases": releases, "python": "3.11"}


def render_workflows(ws: Workspace) -> list[RenderedWorkflow]:
    ctx = _context(ws)
    out_dir = ws.root / ".github" / "workflows"
    return [RenderedWorkflow(out_dir / name, render(f"ci/{name}.j2", **ctx)) for name in WORKFLOWS]


def write_workflows(ws: Workspace) -> list[Path]:
    written = []
    for wf in render_workflows(ws):
        if not wf.path.exists() or wf.path.read_text() != wf.text:
            write_atomic(wf.path, wf.text.encode("utf-8"))
            written.append(wf.path)
    return written


def check_workflows(ws: Workspace) -> None:
    """Raise ``WorkflowDriftError`` with a diff when a checked-in workflow is stale."""
    problems = []
    for wf in render_workflows(ws):
        shown = ws.rel(wf.path)
        current = wf.path.read_text() if wf.path.exists() else None
        if current is None:
            problems.append(f"{shown}: missing")
        elif current != wf.text:
            diff = difflib.unified_diff(current.splitlines(), wf.text.splitlines(),
                                        f"{shown} (checked in)", f"{shown} (rendered)",
                                        lineterm="", n=1)
            problems.append(f"{shown}: differs from its render\n" + "\n".join(diff))
    if problems:
        raise WorkflowDriftError("\n".join(problems),
                                 hint="run `tkedistro ci render` and commit the result")
