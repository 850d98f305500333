"""The repo's own settings (``tkedistro.yaml`` at the repo root): a typed, frozen model, its
loader and the one writer (``ci render --install-from`` records a source in it).

The file is optional; a repo without it gets the defaults. Its format::

    schema: 1
    ci:
      runs-on: ubuntu-24.04        # the pinned runner image of every job (the default)
      install:                     # where a distro repo's nightly installs tkedistro from:
        git: https://github.com/example/tkedistro.git   # a git URL (no credentials) ...
        commit: 0123456789abcdef0123456789abcdef01234567 # ... and a full 40-hex commit,
      # or
      # install:
      #   wheel: wheels/tkedistro-0.1.0-py3-none-any.whl  # a wheel inside the repo

tkedistro is not on PyPI, so a distro repo names a source that exists and cannot move; a
branch or tag is refused. Whether a named wheel is there is checked by ``ci render|check``
(``tkedistro.ci.install``), which knows the repo.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml.comments import CommentedMap

from tkedistro.core import files
from tkedistro.core.errors import RepoConfigError
from tkedistro.model.refs import COMMIT_PATTERN
from tkedistro.model.url import redact_url, url_problem
from tkedistro.model.yamldoc import dotted, line_of, load_yaml, rt_yaml, unknown_key

CONFIG_NAME = "tkedistro.yaml"
DEFAULT_RUNS_ON = "ubuntu-24.04"
MAX_CONFIG_BYTES = 64 * 1024
# a GitHub-hosted image label (ubuntu-24.04, ubuntu-24.04-arm) or a self-hosted runner's
RUNS_ON = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
WHEEL = re.compile(r"tkedistro-[0-9][0-9A-Za-z.+!_]*-[^/]+\.whl")
GIT_EXAMPLE = "https://github.com/example/tkedistro.git"
GIT_SOURCE = re.compile(r"git\+(?P<url>.+)@(?P<commit>[^@/]+)", re.S)  # pip's git+URL@REV
HOW_TO_PIN = ("write ci.install.git (a git URL of tkedistro's source) and ci.install.commit "
              "(the full 40-hex commit: `git rev-parse <tag>`), or ci.install.wheel (a "
              "tkedistro wheel committed to this repo); `tkedistro ci render --install-from "
              "git+URL@COMMIT` (or --install-from PATH.whl) records it")


def _checked_runs_on(label: str) -> str:
    if label.endswith("-latest"):
        raise ValueError(f"{label!r} moves to a new image without notice; pin one, like "
                         f"{DEFAULT_RUNS_ON}")
    if not RUNS_ON.fullmatch(label):
        raise ValueError(f"expected a runner image label like {DEFAULT_RUNS_ON} (lowercase "
                         f"letters, digits, '.', '_', '-'), got {label!r}")
    return label


def _checked_git(url: str) -> str:
    if redact_url(url) != url:
        raise ValueError(f"{redact_url(url)!r} with a user name or password in it: the URL "
                         "is committed and rendered into the workflow; remove them (a "
                         "private repository's credentials belong in the runner's git "
                         "credential helper)")
    if problem := url_problem(url):
        raise ValueError(problem)
    if "://" not in url:
        raise ValueError(f"{redact_url(url)!r}: pip needs a URL with a scheme; write "
                         "ssh://user@host/path for an scp-like host:path")
    return url


def _checked_commit(commit: str) -> str:
    if not re.fullmatch(COMMIT_PATTERN, commit):
        raise ValueError(f"expected a full 40-character lowercase hex commit, got {commit!r} "
                         "(a branch or tag can move: pin the commit, `git rev-parse <ref>`)")
    return commit


def _checked_wheel(path: str) -> str:
    if not WHEEL.fullmatch(Path(path).name):
        raise ValueError(f"expected a tkedistro wheel (tkedistro-<version>-...whl), got {path!r}")
    return path


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InstallSource(_Frozen):
    """A pinned source of tkedistro: ``git`` + ``commit``, or ``wheel``."""

    git: Annotated[str, AfterValidator(_checked_git)] | None = None
    commit: Annotated[str, AfterValidator(_checked_commit)] | None = None
    wheel: Annotated[str, AfterValidator(_checked_wheel)] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> InstallSource:
        if self.wheel is not None and (self.git is not None or self.commit is not None):
            raise ValueError("give either wheel or git + commit, not both")
        if self.wheel is None and (self.git is None or self.commit is None):
            missing = "commit" if self.git is not None else "git"
            raise ValueError(f"{missing} is missing; {HOW_TO_PIN}")
        return self

    def describe(self) -> str:
        """The source as messages may show it: never a password or token."""
        if self.wheel is not None:
            return self.wheel
        return f"{redact_url(self.git or '')}@{self.commit}"


class CiConfig(_Frozen):
    runs_on: Annotated[str, AfterValidator(_checked_runs_on),
                       Field(alias="runs-on")] = DEFAULT_RUNS_ON
    install: InstallSource | None = None


class RepoConfig(_Frozen):
    schema_version: Literal[1] = Field(default=1, alias="schema")
    ci: CiConfig = CiConfig()


def config_path(root: Path) -> Path:
    return root / CONFIG_NAME


def load_repo_config(root: Path) -> RepoConfig:
    """The settings of the repo at ``root`` (the defaults when it has no ``tkedistro.yaml``);
    every problem is collected into one ``RepoConfigError`` naming file, line and key."""
    data = _read(config_path(root))
    return RepoConfig() if data is None else _validated(data)


def _validated(data: CommentedMap) -> RepoConfig:
    try:
        return RepoConfig.model_validate(data)
    except ValidationError as exc:
        raise RepoConfigError([_describe(err, data) for err in exc.errors()],
                              hint=f"format: README, section CI ({CONFIG_NAME})") from None


def parse_install_from(text: str) -> InstallSource:
    """``--install-from``: ``git+URL@COMMIT`` or the repo path of a wheel (``.whl``);
    ``ValueError`` says what is wrong (a URL's credentials never shown)."""
    try:
        if text.startswith("git+"):
            pinned = GIT_SOURCE.fullmatch(text)
            if pinned is None:
                raise ValueError(f"{redact_url(text[4:])!r} names no commit; expected "
                                 f"git+URL@COMMIT, like git+{GIT_EXAMPLE}@<40-hex commit>")
            return InstallSource(git=pinned.group("url"), commit=pinned.group("commit"))
        if text.endswith(".whl"):
            return InstallSource(wheel=text)
    except ValidationError as exc:
        raise ValueError("; ".join(_reason(err) for err in exc.errors())) from None
    raise ValueError(f"expected git+URL@COMMIT (a 40-hex commit) or the path of a tkedistro "
                     f"wheel in the repo (ending in .whl), got {redact_url(text)!r}")


def record_install(root: Path, source: InstallSource) -> None:
    """Set ``ci.install`` in ``tkedistro.yaml`` (made when missing), keeping its comments."""
    path = config_path(root)
    data = _read(path)
    doc = data if isinstance(data, CommentedMap) else CommentedMap([("schema", 1)])
    ci = doc.get("ci")
    if not isinstance(ci, CommentedMap):
        ci = doc["ci"] = CommentedMap()
    ci["install"] = CommentedMap(source.model_dump(exclude_none=True))
    buf = io.StringIO()
    rt_yaml().dump(doc, buf)
    _validated(rt_yaml().load(buf.getvalue()))  # the rest of the file must be valid too
    files.write_text(path, buf.getvalue())


def _read(path: Path) -> Any:
    """The YAML at ``path``, None when there is no file (a symlink is refused, exit 3)."""
    try:
        text = files.read_text(path, max_bytes=MAX_CONFIG_BYTES)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise RepoConfigError([f"{CONFIG_NAME}: cannot read: {exc}"]) from None
    data = load_yaml(text, CONFIG_NAME, RepoConfigError)
    if data is not None and not isinstance(data, CommentedMap):
        raise RepoConfigError([f"{CONFIG_NAME}: expected a mapping of keys at the top level"])
    return data


def _describe(err: Any, data: CommentedMap | None) -> str:
    loc = tuple(p for p in err["loc"] if isinstance(p, str))
    line = line_of(data, loc)
    where = f"{CONFIG_NAME}:{line}" if line else CONFIG_NAME
    return f"{where}: {dotted(loc)}: {_reason(err)}"


def _reason(err: Any) -> str:
    kind, got = err["type"], err.get("input")
    if kind == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    if kind == "extra_forbidden":
        return unknown_key(RepoConfig, tuple(err["loc"]))
    if kind == "literal_error":
        return f"unsupported schema version {got!r}; this tkedistro reads 1"
    if kind in ("model_type", "dict_type"):
        return f"expected a mapping of keys, got {got!r}"
    return f"{err['msg']} (got {got!r})"
