"""GitHub Actions workflows rendered from packaged templates (``tkedistro ci render|check``).

``nightly.yml`` has one job per release line (``nightly-<release>``) and an ``alert`` job. It
needs nothing from the repo but ``releases/`` and ``patches/``: it installs the tool with pip
(``pip install .`` when the repo is tkedistro's own source, else the rendering tool's
version from PyPI) and calls it as root through ``"$TKEDISTRO" --cache-dir
"$TKEDISTRO_CACHE"``. Every ``run:`` step is self-contained bash that reads only what the
runner sets (``GITHUB_ENV``, ``GITHUB_PATH``, ``GITHUB_STEP_SUMMARY``, ``RUNNER_TEMP``,
``HOME``, ``RUNNER_ENVIRONMENT``) plus the variables earlier steps wrote to ``$GITHUB_ENV``;
the release's values are rendered in. A local emulation runs the ``run:`` steps in order
(``defaults.run.shell: bash``, so ``bash -eo pipefail``) as a user with sudo, from a copy of the
repo, honouring each ``if:`` (``always()`` steps run after a failure), and stands in for the
``uses:`` steps:

- ``actions/checkout``: the working folder is the distro repo;
- ``actions/setup-python``: a ``python`` >= 3.11 on PATH;
- ``actions/cache/restore`` / ``actions/cache/save``: a miss (``cache-hit`` not ``true``), or
  copying the ``path`` in and out of a folder of its own;
- ``actions/upload-artifact`` / ``actions/download-artifact``: keep or copy
  ``$RUNNER_TEMP/nightly``;
- ``actions/github-script`` (the ``alert`` job): nothing to run locally.
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tkedistro import __version__
from tkedistro.core import files
from tkedistro.core.errors import WorkflowDriftError
from tkedistro.core.render import render
from tkedistro.core.workspace import Workspace
from tkedistro.model.manifest import list_release_names, load_release

WORKFLOWS = ("ci.yml", "nightly.yml")


@dataclass(frozen=True)
class RenderedWorkflow:
    path: Path
    text: str


# Every action pinned to a full commit (the tag it was is the comment); found quoted with the
# same tag in several public workflows.
ACTIONS = {
    "checkout": "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2",
    "setup_python": "actions/setup-python@0b93645e9fea7318ecaed2b359559ac225c90a2b  # v5.3.0",
    "cache_restore": "actions/cache/restore@1bd1e32a3bdc45362d1e726936510720a7c30a57  # v4.2.0",
    "cache_save": "actions/cache/save@1bd1e32a3bdc45362d1e726936510720a7c30a57  # v4.2.0",
    "upload_artifact":
        "actions/upload-artifact@b4b15b8c7c6ac21ea08fcf65892d2ee8f75cf882  # v4.4.3",
    "download_artifact":
        "actions/download-artifact@fa0a91b85d4f404e444e00e005971372dc801d16  # v4.1.8",
    "github_script": "actions/github-script@60a0d83039c74a4aee543508d2ffcb1c3799cdea  # v7.0.1",
}
PYTHON = "3.11"
# Where Kubernetes' own build keeps its Go build cache (hack/lib/golang.sh: KUBE_GOPATH/cache)
K8S_GOCACHE = "_output/local/go/cache"


def is_tool_source(root: Path) -> bool:
    """Whether ``root`` is tkedistro's own source (its pyproject.toml names the project)."""
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False
    project = data.get("project")
    return isinstance(project, dict) and project.get("name") == "tkedistro"


def job_id(release: str) -> str:
    return "nightly-" + re.sub(r"[^A-Za-z0-9_-]", "-", release)


def _release(ws: Workspace, name: str) -> dict[str, str]:
    m, paths = load_release(ws, name), ws.release(name)
    minor = re.match(r"v[0-9]+\.[0-9]+", m.upstream.tag)
    return {"name": name, "job": job_id(name), "tag": m.upstream.tag,
            "tag_glob": f"{minor.group(0) if minor else m.upstream.tag}.*",
            "url": shlex.quote(m.upstream.url), "builder_image": shlex.quote(m.builder.image),
            "manifest": paths.manifest_name, "patches": str(paths.layout.patches),
            "gocache": shlex.quote(f"{paths.layout.src}/{K8S_GOCACHE}"),
            "output": str(paths.layout.output),  # a release name needs no shell quoting
            "results": str(paths.layout.conformance_results)}


def _context(ws: Workspace) -> dict[str, object]:
    releases = [_release(ws, name) for name in list_release_names(ws.releases_dir)]
    install = "." if is_tool_source(ws.root) else shlex.quote(f"tkedistro=={__version__}")
    return {"releases": releases, "python": PYTHON, "actions": ACTIONS, "install": install,
            "tool_key": f"tkedistro-{__version__}",
            "release_names_json": json.dumps([r["name"] for r in releases])}


def render_workflows(ws: Workspace) -> list[RenderedWorkflow]:
    ctx = _context(ws)
    out_dir = ws.root / ".github" / "workflows"
    return [RenderedWorkflow(out_dir / name, render(f"ci/{name}.j2", **ctx)) for name in WORKFLOWS]


def checked_in(path: Path) -> str | None:
    """The checked-in workflow at ``path`` (None when missing), read without following a
    symlink: a committed link is refused (exit 3), so neither ``render`` nor ``check`` (run
    as root by the nightly) shows or replaces what it points at."""
    try:
        return files.read_text(path)
    except FileNotFoundError:
        return None


def write_workflows(ws: Workspace) -> list[Path]:
    written = []
    for wf in render_workflows(ws):
        if checked_in(wf.path) != wf.text:
            files.write_text(wf.path, wf.text)
            written.append(wf.path)
    return written


def check_workflows(ws: Workspace) -> None:
    """Raise ``WorkflowDriftError`` with a diff when a checked-in workflow is stale."""
    problems = []
    for wf in render_workflows(ws):
        shown = ws.rel(wf.path)
        current = checked_in(wf.path)
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
