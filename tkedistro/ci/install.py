"""Where the rendered nightly installs tkedistro from: a source that exists and cannot move.

tkedistro is not on PyPI, and an unclaimed name on an index would run as root if someone
registered it, so the nightly never installs ``tkedistro==X`` from an index. tkedistro's own
repo installs its checkout (``pip install .``); a distro repo names a pinned source in
``tkedistro.yaml`` (``ci.install``): a git URL and a full commit, or a wheel committed to the
repo, whose version is the one of the tool that renders the workflow.
"""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

from tkedistro import __version__
from tkedistro.core.errors import RepoConfigError
from tkedistro.core.workspace import Workspace, path_problem
from tkedistro.model.repoconfig import (
    CONFIG_NAME,
    HOW_TO_PIN,
    WHEEL,
    InstallSource,
    RepoConfig,
    record_install,
)

MAX_WHEEL_BYTES = 256 * 2**20


def is_tool_source(root: Path) -> bool:
    """Whether ``root`` is tkedistro's own source (its pyproject.toml names the project)."""
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False
    project = data.get("project")
    return isinstance(project, dict) and project.get("name") == "tkedistro"


def pip_argument(ws: Workspace, config: RepoConfig) -> str:
    """What the nightly gives ``pip install`` (shell-quoted); ``RepoConfigError`` (exit 3)
    when a distro repo's source is unset, or names a wheel that is not there."""
    if is_tool_source(ws.root):
        return "."
    source = config.ci.install
    if source is None:
        raise RepoConfigError(
            [f"{CONFIG_NAME}: ci.install: not set; tkedistro is not on PyPI, so the nightly "
             "installs it from a pinned source this repo names"],
            hint=f"{HOW_TO_PIN}; e.g.\n  ci:\n    install:\n      git: <URL of tkedistro's "
                 "source>\n      commit: <40-hex commit of tkedistro " + __version__ + ">")
    if source.wheel is not None:
        check_wheel(ws, source)
        return shlex.quote(f"./{Path(source.wheel).as_posix()}")
    return shlex.quote(f"tkedistro @ git+{source.git}@{source.commit}")


def check_wheel(ws: Workspace, source: InstallSource) -> None:
    """The wheel is a regular file inside the repo and holds this tool's version."""
    wheel = source.wheel or ""
    where = f"{CONFIG_NAME}: ci.install.wheel"
    if problem := path_problem(ws.root, wheel, max_bytes=MAX_WHEEL_BYTES):
        raise RepoConfigError([f"{where}: {problem}"],
                              hint="commit the wheel into the repo, or install from git: "
                                   + HOW_TO_PIN)
    name = Path(wheel).name
    version = name.split("-")[1] if WHEEL.fullmatch(name) else ""
    if version != __version__:
        raise RepoConfigError(
            [f"{where}: {wheel} is tkedistro {version}, but tkedistro {__version__} renders "
             "the workflow; the nightly installs the tool that rendered it"],
            hint=f"put the wheel of tkedistro {__version__} there (pip wheel --no-deps -w "
                 "<folder> <tkedistro's source>) and name it, or render with tkedistro "
                 f"{version}")


def record_source(ws: Workspace, source: InstallSource) -> None:
    """``ci render --install-from``: a wheel is checked first, then ``ci.install`` written."""
    if source.wheel is not None:
        check_wheel(ws, source)
    record_install(ws.root, source)
