"""GitHub Actions workflows rendered from packaged templates (``tkedistro ci render|check``).

``nightly.yml`` has one job per release line (``nightly-<release>``) and an ``alert`` job. It
needs nothing from the repo but ``releases/``, ``patches/`` and ``tkedistro.yaml``: it installs
the tool with pip from a pinned source (``tkedistro.ci.install``: ``pip install .`` when the
repo is tkedistro's own source) and calls it as root through ``"$TKEDISTRO" --cache-dir
"$TKEDISTRO_CACHE"``. Every job runs on the pinned image ``ci.runs-on`` of ``tkedistro.yaml``
(default ``ubuntu-24.04``); the actions are pinned in ``tkedistro.ci.pins``. Every ``run:``
step is self-contained bash that reads only what the runner sets (``GITHUB_ENV``,
``GITHUB_PATH``, ``GITHUB_STEP_SUMMARY``, ``RUNNER_TEMP``, ``HOME``, ``RUNNER_ENVIRONMENT``)
plus the variables earlier steps wrote to ``$GITHUB_ENV``; the release's values are rendered
in. A local emulation runs the ``run:`` steps in order (``defaults.run.shell: bash``, so ``bash
-eo pipefail``) as a user with sudo, from a copy of the repo, honouring each ``if:``
(``always()`` steps run after a failure), and stands in for the ``uses:`` steps:

- ``actions/checkout``: the working folder is the distro repo;
- ``actions/setup-python``: a ``python`` >= 3.11 on PATH;
- ``actions/cache/restore`` / ``actions/cache/save``: a miss (``cache-hit`` not ``true``), or
  copying the ``path`` in and out of a folder of its own;
- ``actions/upload-artifact`` / ``actions/download-artifact``: keep or copy
  ``$RUNNER_TEMP/nightly``;
- ``actions/github-script`` (the ``alert`` job): ``tkedistro/templates/ci/alert.js`` run by
  node against a fake of the issues API.

The steps that can fail tee their output to ``$RUNNER_TEMP/nightly/logs/<slug>.log``
(``STEPS``; ``slug`` of the step's name), which the alert script reads from the report.
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tkedistro import __version__
from tkedistro.ci.install import pip_argument
from tkedistro.ci.pins import uses_lines
from tkedistro.core import files
from tkedistro.core.errors import WorkflowDriftError
from tkedistro.core.render import render
from tkedistro.core.workspace import CLUSTER_STATE, Workspace
from tkedistro.model.manifest import list_release_names, load_release
from tkedistro.model.repoconfig import load_repo_config

WORKFLOWS = ("ci.yml", "nightly.yml")


@dataclass(frozen=True)
class RenderedWorkflow:
    path: Path
    text: str


PYTHON = "3.11"
# Where Kubernetes' own build keeps its Go build cache (hack/lib/golang.sh: KUBE_GOPATH/cache)
K8S_GOCACHE = "_output/local/go/cache"
ALERT_SCRIPT = "templates/ci/alert.js"  # the alert job's github-script, in the package
# The nightly's steps that can fail, by template key: each tees its output to
# $RUNNER_TEMP/nightly/logs/<slug of its name>.log (the alert script's contract).
STEPS = {
    "install": "Install tkedistro",
    "host_setup": "Host packages, binfmt, builder image, component bases",
    "source": "Source",
    "build": "Build",
    "conformance": "Conformance (--smoke)",
    "forecast": "Forecast the series onto newer upstream tags",
}


def slug(step: str) -> str:
    """A step's log name: lowercase, each run of characters outside a-z0-9 one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")


def step_log(step: str) -> str:
    return f"$RUNNER_TEMP/nightly/logs/{slug(step)}.log"


def alert_script() -> str:
    """The alert job's script (``alert.js``), without its trailing newline."""
    return resources.files("tkedistro").joinpath(ALERT_SCRIPT).read_text("utf-8").rstrip("\n")


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
            "results": str(paths.layout.conformance_results),
            "cluster_state": str(paths.layout.cluster / CLUSTER_STATE)}


def _context(ws: Workspace) -> dict[str, object]:
    config = load_repo_config(ws.root)
    install = pip_argument(ws, config)
    releases = [_release(ws, name) for name in list_release_names(ws.releases_dir)]
    source = config.ci.install
    return {"releases": releases, "python": PYTHON, "actions": uses_lines(),
            "runs_on": config.ci.runs_on, "install": install, "version": __version__,
            "install_shown": "this checkout" if install == "." or source is None
            else source.describe(),
            "steps": {key: {"name": name, "log": step_log(name)} for key, name in STEPS.items()},
            "alert_script": alert_script(), "tool_key": f"tkedistro-{__version__}",
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
