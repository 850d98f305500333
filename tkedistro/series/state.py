"""The in-progress state of a rebase: JSON in ``ws.state_dir(release)``, written atomically.

Before a rebase touches anything it copies the manifest and every file of the release's
patch folder (their bytes) and records ``_src``'s HEAD and branch, so ``--abort`` can put
them back byte for byte, even after a crash or a reboot.

Both files are read back as data: ``rebase.json`` and the backup's ``listing.json`` must fit
their schema (frozen pydantic models, strict types, ranges, a known version) and every patch
file they name must pass the repo's path policy, or the command stops with
``DamagedStateError`` (exit 17) before it applies, restores or deletes anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic import ValidationInfo as Info

from tkedistro.core import files
from tkedistro.core.files import (
    copy_file,
    ensure_dir,
    is_symlink,
    remove,
    write_json,
)
from tkedistro.core.rebasemark import read_rebase_state, rebase_state_file
from tkedistro.core.statefile import StateFile, planted_symlink
from tkedistro.core.workspace import RELEASE_NAME, Workspace, path_problem
from tkedistro.model.refs import COMMIT_PATTERN, TAG_PATTERN
from tkedistro.series.replay import PatchOutcome, Status

STATE_VERSION = 1


class Phase(StrEnum):
    """Where a rebase is: replaying patches, stopped at a conflict, or writing the result."""

    REPLAY = "replay"
    CONFLICT = "conflict"
    FINALIZE = "finalize"


@dataclass
class RebaseState:
    release: str
    onto_tag: str
    onto_commit: str
    old_tag: str
    old_commit: str
    url: str
    series: list[str]  # repo-relative patch files, in order
    subjects: dict[str, str]  # file -> subject from the manifest (plain diffs)
    src_existed: bool
    orig_head: str | None
    orig_branch: str | None
    distro_version: str
    position: int = 0  # index into series of the patch being replayed
    pre_head: str | None = None  # HEAD before the current patch
    phase: Phase = Phase.REPLAY
    outcomes: list[PatchOutcome] = field(default_factory=list)
    version: int = STATE_VERSION
    # the tree of _src (work tree included) as the conflict left it: --abort backs up only
    # edits made after that
    conflict_tree: str | None = None
    new_line: bool = False  # `tkedistro new` made the manifest and patches: --abort removes them

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcomes"] = [o.to_json() for o in self.outcomes]
        return data

    @classmethod
    def from_json(cls, file: StateFile, data: dict[str, Any], ws: Workspace,
                  release: str) -> RebaseState:
        """The state ``data`` describes; ``DamagedStateError`` (exit 17, naming the key) for
        anything the schema refuses: a version, phase or position this tool does not know,
        a patch file outside the repo (a rebase would apply or finalize the wrong thing)."""
        try:
            schema = _StateSchema.model_validate(data, strict=True, context={"root": ws.root})
        except ValidationError as exc:
            raise file.invalid(exc.errors()) from None
        if schema.release != release:
            raise file.damaged([f"release: {schema.release} is not {release}, whose state "
                                "folder this is"])
        values = schema.model_dump()
        values["phase"] = Phase(schema.phase)
        values["outcomes"] = [PatchOutcome.from_json(o) for o in values["outcomes"]]
        return cls(**values)


# -- the schema of rebase.json: what `save_state` writes, nothing else --------------------

def _version(value: int) -> int:
    if value != STATE_VERSION:
        raise ValueError(f"{value} is not {STATE_VERSION}, the one this tkedistro writes")
    return value


def _in_repo(name: str, info: Info) -> str:
    """A patch file named by the state goes through the path policy (it need not exist)."""
    root = info.context["root"] if info.context else None
    problem = path_problem(root, name, must_exist=False) if root else "no repo to check it in"
    if problem and root and (link := planted_symlink(root, name)):
        raise files.refuse_symlink(link)  # the state is fine: the repo has a symlink
    if problem:
        raise ValueError(problem)
    return name


def _plain(text: str) -> str:
    if not text.isprintable() or text.startswith("-"):
        raise ValueError(f"{text!r} is not a name git takes (control character or a "
                         "leading -)")
    return text


Commit = Annotated[str, Field(pattern=f"^{COMMIT_PATTERN}$")]
Tag = Annotated[str, Field(pattern=f"^{TAG_PATTERN}$")]
RepoFile = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_in_repo)]
Name = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_plain)]
Text = Annotated[str, Field(max_length=65536)]


class _Schema(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class _OutcomeSchema(_Schema):
    position: Annotated[int, Field(ge=1, le=1_000_000)]
    file: RepoFile
    subject: Text
    status: Status
    upstream_commit: Commit | None = None
    upstream_subject: Text | None = None
    upstream_ref: Text | None = None
    match: Literal["patch-id", "content"] | None = None
    conflicts: list[Text] = []
    detail: Text = ""


class _StateSchema(_Schema):
    version: Annotated[int, AfterValidator(_version)]
    release: Annotated[str, Field(pattern=f"^{RELEASE_NAME.pattern}$")]
    onto_tag: Tag
    onto_commit: Commit
    old_tag: Tag
    old_commit: Commit
    url: Name
    series: list[RepoFile] = Field(max_length=100_000)
    subjects: dict[str, Text]
    src_existed: bool
    orig_head: Commit | None
    orig_branch: Name | None
    distro_version: Annotated[str, Field(pattern=r"^v[0-9]+\.[0-9]+\.[0-9]+-[0-9A-Za-z.-]+$")]
    position: Annotated[int, Field(ge=0)] = 0
    pre_head: Commit | None = None
    phase: Literal["replay", "conflict", "finalize"] = "replay"  # Phase's values
    outcomes: list[_OutcomeSchema] = []
    conflict_tree: Commit | None = None
    new_line: bool = False

    @model_validator(mode="after")
    def _within_series(self) -> _StateSchema:
        if self.position > len(self.series):
            raise ValueError(f"position: {self.position} is outside the series of "
                             f"{len(self.series)} patch(es)")
        if stray := sorted(set(self.subjects) - set(self.series)):
            raise ValueError(f"subjects: {stray[0]} is not in the series")
        if len(self.outcomes) > len(self.series):
            raise ValueError(f"outcomes: {len(self.outcomes)} for a series of "
                             f"{len(self.series)} patch(es)")
        return self


def state_path(ws: Workspace, release: str) -> Path:
    return ws.release(release).rebase_state


def backup_dir(ws: Workspace, release: str) -> Path:
    return ws.release(release).rebase_backup


def save_state(ws: Workspace, state: RebaseState) -> None:
    write_json(state_path(ws, state.release), state.to_json())


def load_state(ws: Workspace, release: str) -> RebaseState:
    """The rebase state of ``release``, checked; ``RebaseStateError`` when there is none,
    ``DamagedStateError`` (exit 17, with how to recover) when it is not what was written."""
    return read_rebase_state(ws.release(release),
                             lambda file, data: RebaseState.from_json(file, data, ws, release))


@dataclass(frozen=True)
class NewLine:
    """What ``tkedistro new`` wrote before the rebase began: --abort takes it away again."""

    files: tuple[str, ...]  # names written into the patch folder
    patches_dir_existed: bool


# -- the backup --abort restores: listing.json and the copies beside it -------------------

def _file_name(name: str) -> str:
    if "/" in name or "\\" in name or name in (".", "..") or not name.isprintable():
        raise ValueError(f"{name!r} is not the name of a file in the patch folder")
    return name


class Listing(_Schema):
    """What ``snapshot`` found: the patch folder's files (names), and whether the folder
    and the manifest were there. A listing without ``version`` is one an older tkedistro
    wrote, the same shape."""

    version: Literal[1] = 1
    patches_dir_existed: bool
    files: list[Annotated[str, Field(min_length=1, max_length=255),
                          AfterValidator(_file_name)]] = Field(max_length=100_000)
    manifest_existed: bool = True


def _listing_file(ws: Workspace, release: str) -> StateFile:
    paths = ws.release(release)
    backup = f"{paths.layout.state}/{paths.rebase_backup.name}"
    shown = rebase_state_file(paths).shown
    return StateFile(
        backup_dir(ws, release) / "listing.json", f"{backup}/listing.json",
        "the list of the manifest and patch files saved before the rebase",
        recovery=f"--abort cannot put the manifest and patch files back from it; their copies "
                 f"are in {backup}/ (manifest.yaml, patches/). Finish the rebase with "
                 f"`tkedistro rebase {release} --continue` or --skip (neither needs it), or copy "
                 f"them back by hand and delete {shown} to forget the rebase")


def load_listing(ws: Workspace, release: str) -> Listing:
    """The backup's listing, checked: each name a plain file name whose place in the patch
    folder passes the path policy; ``DamagedStateError`` (exit 17) else, or when missing."""
    file = _listing_file(ws, release)
    try:
        data = file.read()
    except FileNotFoundError:
        raise file.damaged(["missing"]) from None
    try:
        listing = Listing.model_validate(data, strict=True)
    except ValidationError as exc:
        raise file.invalid(exc.errors()) from None
    folder = ws.release(release).layout.patches
    for n, name in enumerate(listing.files):
        file.in_repo(ws.root, str(folder / name), f"files[{n}]")
    return listing


def _regular_files(folder: Path) -> list[str]:
    """The names of the plain files in ``folder`` (no symlinks; none when it is missing)."""
    if not folder.is_dir() or is_symlink(folder):
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.is_symlink())


def snapshot(ws: Workspace, release: str, new_line: NewLine | None = None) -> None:
    """Copy the manifest and the patch folder's files (bytes) into the backup folder;
    for a ``new_line``, record that the manifest and its files were not there before."""
    dest = backup_dir(ws, release)
    remove(dest)
    ensure_dir(dest / "patches")
    if new_line is None:
        copy_file(ws.manifest_path(release), dest / "manifest.yaml")
    src = ws.patches_dir(release)
    made = set(new_line.files) if new_line else set()
    names = [name for name in _regular_files(src) if name not in made]
    for name in names:
        copy_file(src / name, dest / "patches" / name)
    existed = new_line.patches_dir_existed if new_line else src.is_dir()
    listing = Listing(patches_dir_existed=existed, files=names,
                      manifest_existed=new_line is None)
    write_json(dest / "listing.json", listing.model_dump())


def restore(ws: Workspace, release: str, listing: Listing | None = None) -> None:
    """Put the manifest and patch folder back exactly as ``snapshot`` found them (``listing``:
    the backup's, when the caller checked it before touching anything)."""
    dest = backup_dir(ws, release)
    listing = listing or load_listing(ws, release)
    if listing.manifest_existed:
        copy_file(dest / "manifest.yaml", ws.manifest_path(release))
    else:
        remove(ws.manifest_path(release))
    target = ws.patches_dir(release)
    keep = set(listing.files)
    for name in _regular_files(target):
        if name not in keep:
            remove(target / name)
    for name in listing.files:
        copy_file(dest / "patches" / name, target / name)
    if not listing.patches_dir_existed and target.is_dir() and not any(target.iterdir()):
        remove(target)


def clear(ws: Workspace, release: str) -> None:
    """Forget the rebase: the state file goes first, then the backups."""
    remove(state_path(ws, release))
    remove(backup_dir(ws, release))
    remove(ws.release(release).rebase_patch)
