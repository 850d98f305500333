"""The one repository class: refs, commits, the work tree, what counts as work in
progress, diffs and patch files. With ``patching.py`` (patches entering the tree: ``git am``
and its session) and ``mirror.py`` (the fetch) it holds every git command line tkedistro
runs.

Most commands go through ``Repo.run`` (``ls_remote``, which needs no repository, calls
``execute`` itself): ``execute.py`` runs them with GitPython's
``Git.execute`` with a clean environment, the tool's settings and identity, and makes writing
commands die with this process, so a killed run leaves no git writing into a tree after its
lock is gone (GitPython sets ``LC_ALL=C``, so parsed output is English). Four go through
``core.runner.run`` as plain subprocesses instead: ``head``, ``status``, ``head_and_status``
(the unchanged re-run of ``tkedistro source`` needs only this one and never loads GitPython)
and ``clone_at``'s ``git clone``. GitPython also creates repositories and writes their config.

Rules kept here once: the committer identity and the settings a user's config must not
change (``CONFIG``), what counts as work in progress and which commits are the tool's, and
that user values reach git after ``--``, or not at all when they look like an option
(``checked``), and the date plain diffs are committed with (``commit_date``: the base
commit's). A repository at a path with a symlink in it is refused when the ``Repo`` is made
(``files.check_path``): git would follow it and reset, clean or write another repository;
the files this class writes itself (a new tree, its ledger, a snapshot index) go through the
safe file layer.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from tkedistro.core import console, files
from tkedistro.core.errors import CommandError, WorkInProgressError
from tkedistro.core.runner import Result, run
from tkedistro.git.execute import execute, git_found, gitpython_module
from tkedistro.git.probe import STATUS_V2, StatusProbe
from tkedistro.git.work import OPERATIONS, Work, porcelain_paths, porcelain_v2

if TYPE_CHECKING:
    import git as gitpython

TOOL_NAME = "tkedistro"
TOOL_EMAIL = "tkedistro@invalid"
BRANCH = "tkedistro"
IDENTITY = {"GIT_COMMITTER_NAME": TOOL_NAME, "GIT_COMMITTER_EMAIL": TOOL_EMAIL,
            "GIT_AUTHOR_NAME": TOOL_NAME, "GIT_AUTHOR_EMAIL": TOOL_EMAIL}
# Settings a user's config could change and that would change the commits we make.
CONFIG = (
    "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null", "-c", "core.autocrlf=false",
    "-c", f"user.name={TOOL_NAME}", "-c", f"user.email={TOOL_EMAIL}",
    "-c", "protocol.ext.allow=never",  # an ext:: URL runs a command; no config may allow it
)
# diff output the scanner reads, whatever the user's diff config says
DIFF_OPTIONS = ("--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/",
                "--dst-prefix=b/")


def checked(value: str, what: str) -> str:
    """``value`` if git cannot take it for an option; refuse it otherwise."""
    if value.startswith("-"):
        raise CommandError(["git"], 128, "", "", message=(
            f"refusing {what} {value!r}: it starts with '-', so git would read it as an option"))
    return value


def sparse_patterns(paths: Iterable[str]) -> str | None:
    """Sparse-checkout patterns (non-cone, gitignore syntax) naming exactly ``paths``, so a
    throw-away tree checks out only the files a series touches; None when a path cannot be
    written as a pattern (a newline in it)."""
    lines = []
    for path in dict.fromkeys(paths):
        if "\n" in path or not path:
            return None
        escaped = re.sub(r"([\\*?\[\]!#])", r"\\\1", path)
        lines.append("/" + (escaped[:-1] + "\\ " if escaped.endswith(" ") else escaped))
    return "".join(f"{line}\n" for line in lines)


class Repo:
    """A git repository at ``path`` (a work tree, or a bare mirror); ``shown`` in messages.
    A symlink anywhere in ``path`` (or at its ``.git``) is refused (``UnsafePathError``,
    exit 3)."""

    def __init__(self, path: Path, shown: str | None = None) -> None:
        self.path = files.check_path(path)
        self.shown = shown or str(path)
        bare = not (path / ".git").exists() and (path / "HEAD").is_file() \
            and (path / "objects").is_dir()
        self.gitdir = path if bare else files.check_path(path / ".git")

    @cached_property
    def gitpy(self) -> gitpython.Repo:
        gitpy = gitpython_module()
        try:
            repo: gitpython.Repo = gitpy.Repo(self.path)
        except (gitpy.exc.NoSuchPathError, gitpy.exc.InvalidGitRepositoryError) as exc:
            raise CommandError(["git"], 128, "", str(exc),
                               message=f"{self.shown} is not a git repository") from None
        return repo

    def run(self, *args: str, check: bool = True, env: dict[str, str] | None = None,
            input: str | None = None) -> Result:
        """``git <args>`` in this repository with the tool's settings and identity."""
        argv = ["git", *CONFIG, *args]
        console.verbose("$ " + " ".join(argv) + f"   (in {self.path})")
        result = execute(self.gitpy.git, argv, env={**IDENTITY, **(env or {})}, input=input)
        if check and result.returncode != 0:
            raise CommandError(argv, result.returncode, result.stdout, result.stderr)
        return result

    def close(self) -> None:
        if "gitpy" in self.__dict__:
            self.gitpy.close()

    # -- refs and commits ------------------------------------------------------------------

    def exists(self) -> bool:
        return self.gitdir.is_dir()

    def head(self) -> str:
        # a plain subprocess: part of the unchanged `source` re-run, which skips GitPython
        return run(["git", "rev-parse", "HEAD"], cwd=self.path).stdout.strip()

    def rev(self, name: str) -> str | None:
        """The commit ``name`` names, or None."""
        res = self.run("rev-parse", "--verify", "-q", f"{checked(name, 'revision')}^{{commit}}",
                       check=False)
        if res.returncode != 0:
            return None
        return res.stdout.strip() or None

    def has_commit(self, sha: str) -> bool:
        return self.rev(sha) is not None

    def commits_present(self, shas: Sequence[str]) -> list[bool]:
        """For each of ``shas``: a commit this repository has (or borrows), in one git run."""
        if not shas:
            return []
        out = self.run("cat-file", "--batch-check=%(objecttype)",
                       input="".join(f"{checked(sha, 'commit')}\n" for sha in shas)).stdout
        return [line == "commit" for line in out.splitlines()]

    def object_type(self, sha: str) -> str | None:
        res = self.run("cat-file", "-t", checked(sha, "object"), check=False)
        return res.stdout.strip() if res.returncode == 0 else None

    def commit_date(self, sha: str) -> str:
        """The committer date of ``sha`` (RFC 2822): the date plain diffs are committed with."""
        return self.run("log", "-1", "--format=%cd", "--date=rfc2822", checked(sha, "commit"),
                        "--").stdout.strip()

    def subject(self, sha: str) -> str:
        return self.run("log", "-1", "--format=%s", checked(sha, "commit"), "--").stdout.strip()

    def metadata(self, sha: str) -> tuple[str, str, str]:
        """(``Name <email>`` of the author, subject, body) of ``sha``."""
        out = self.run("log", "-1", "--format=%an <%ae>%x00%s%x00%b", checked(sha, "commit"),
                       "--").stdout
        author, subject, body = out.split("\0", 2)
        return author, subject, body.strip()

    def is_ancestor(self, old: str, new: str) -> bool:
        return self.run("merge-base", "--is-ancestor", checked(old, "commit"),
                        checked(new, "commit"), check=False).returncode == 0

    def merge_base(self, a: str, b: str) -> str | None:
        res = self.run("merge-base", checked(a, "commit"), checked(b, "commit"), check=False)
        return res.stdout.strip() or None

    def commits(self, base: str, head: str = "HEAD") -> list[str]:
        """Non-merge commits of ``base..head``, oldest first."""
        return self.run("rev-list", "--reverse", "--no-merges",
                        f"{checked(base, 'commit')}..{head}", "--").stdout.split()

    def tool_committed(self, shas: Sequence[str]) -> list[bool]:
        """For each of ``shas``: committed as the tool commits a patch (``Patcher.apply``:
        the tool's committer identity, the author date, time zone included, as committer
        date), so ``git am`` of its patch file onto its parent makes this very commit."""
        if not shas:
            return []
        out = self.run("log", "--no-walk=unsorted", "--date=raw",
                       "--format=%H%x00%cn <%ce>%x00%cd%x00%ad",
                       *(checked(sha, "commit") for sha in shas), "--").stdout
        tool = f"{TOOL_NAME} <{TOOL_EMAIL}>"
        found = {sha: who == tool and cdate == adate for sha, who, cdate, adate in
                 (line.split("\0") for line in out.splitlines() if line.count("\0") == 3)}
        return [found.get(sha, False) for sha in shas]

    def first_parents(self, count: int) -> list[str]:
        """HEAD and its first parents, newest first, at most ``count``; [] without HEAD."""
        res = self.run("rev-list", "--first-parent", f"--max-count={count}", "HEAD", "--",
                       check=False)
        return res.stdout.split() if res.returncode == 0 else []

    def branch(self) -> str | None:
        """The branch HEAD is on (born or not), None when detached (GitPython reads HEAD)."""
        head = self.gitpy.head
        return None if head.is_detached else str(head.reference.name)

    def update_ref(self, name: str, sha: str) -> None:
        self.run("update-ref", name, checked(sha, "commit"))

    def set_head_branch(self, branch: str) -> None:
        """HEAD on ``branch`` with an empty index (a tree that had no commit yet)."""
        self.run("symbolic-ref", "HEAD", f"refs/heads/{checked(branch, 'branch')}")
        self.run("read-tree", "--empty")

    # -- the work tree ------------------------------------------------------------------------

    def status(self) -> list[str]:
        """Changed and untracked (not ignored) paths; ``_output/`` is ignored."""
        # a plain subprocess: part of the unchanged `source` re-run, which skips GitPython
        out = run(["git", "status", "--porcelain", "-z", "--untracked-files=normal"],
                  cwd=self.path).stdout
        return porcelain_paths(out)

    def head_and_status(self, probe: StatusProbe | None = None) -> tuple[str | None, list[str]]:
        """HEAD's commit (None before the first) and what ``status`` lists, from one ``git
        status`` (the unchanged `source` re-run's only git command: a plain subprocess), or
        from ``probe``, the same status started early in this tree, when it succeeded."""
        out = probe.output() if probe is not None and probe.path == self.path else None
        if out is None:
            out = run(["git", *STATUS_V2], cwd=self.path).stdout
        return porcelain_v2(out)

    def untracked_files(self) -> list[str]:
        """Untracked, not ignored files, one by one (no folder collapsed into ``dir/``)."""
        return [p for p in self.run("ls-files", "-z", "--others", "--exclude-standard")
                .stdout.split("\0") if p]

    def tracked_changes(self) -> list[str]:
        out = self.run("status", "--porcelain", "--untracked-files=no").stdout
        return [line[3:] for line in out.splitlines() if line.strip()]

    def forget_untracked_cache(self) -> None:
        """Drop the index's untracked cache (git rebuilds it at the next status). Needed after
        removing files: git may trust a folder's cached listing while its mtime, to git's
        whole-second view, has not changed."""
        self.run("-c", "core.untrackedCache=false", "update-index", "--no-untracked-cache")

    def refresh_status_cache(self) -> None:
        """One full ``git status`` so the index holds the untracked cache for fast re-runs."""
        self.run("status", "--porcelain", "--untracked-files=normal")

    def operation_in_progress(self) -> str | None:
        return next((why for name, why in OPERATIONS.items() if (self.gitdir / name).exists()),
                    None)

    def conflicted_files(self) -> list[str]:
        out = self.run("diff", "--name-only", "--diff-filter=U").stdout
        return [line for line in out.splitlines() if line]

    def create(self, mirror: Path, base: str, *, sparse: str | None = None) -> None:
        """Check out ``base`` into a new tree, borrowing objects from ``mirror``; atomic.

        The half-made tree is removed on any failure, Ctrl-C included. ``sparse``:
        sparse-checkout patterns (``sparse_patterns``), to check out only those files.
        """
        if self.path.exists() and any(self.path.iterdir()):
            raise WorkInProgressError(
                f"{self.shown} exists but is not a git work tree; refusing to touch it",
                hint=f"move {self.shown} away (or delete it), then run again",
            )
        tmp = self.path.with_name(f".{self.path.name}.creating")
        files.remove(tmp)
        files.ensure_dir(tmp.parent)
        try:
            self._init_borrowing(tmp, mirror, sparse)
            Repo(tmp).run("checkout", "-q", "-f", "-B", BRANCH, checked(base, "commit"), "--")
            files.rename(tmp, self.path)  # over an empty folder, or none
        except BaseException:
            files.remove(tmp)
            raise

    @staticmethod
    def _init_borrowing(tmp: Path, mirror: Path, sparse: str | None = None) -> None:
        with git_found():
            repo = gitpython_module().Repo.init(tmp, initial_branch=BRANCH)
        with repo.config_writer() as config:
            config.set_value("core", "untrackedCache", "true")
            if sparse is not None:
                config.set_value("core", "sparseCheckout", "true")
                files.write_text(tmp / ".git" / "info" / "sparse-checkout", sparse)
        repo.close()
        files.write_text(tmp / ".git" / "objects" / "info" / "alternates",
                         f"{mirror / 'objects'}\n")
        exclude = tmp / ".git" / "info" / "exclude"
        files.write_text(exclude, _read_or_empty(exclude) + "/_output/\n")

    def borrowed_objects(self) -> list[Path]:
        """The object folders this tree borrows from (the mirror's), from ``alternates``."""
        alternates = self.gitdir / "objects" / "info" / "alternates"
        if not alternates.is_file():
            return []
        return [Path(line) for line in alternates.read_text().splitlines() if line.strip()]

    def switch(self, commit: str, *, branch: str | None = BRANCH) -> None:
        """HEAD (on ``branch``, or detached) at ``commit``, work tree forced to match."""
        target = ["-B", checked(branch, "branch")] if branch else ["--detach"]
        self.run("checkout", "-q", "-f", *target, checked(commit, "commit"), "--")

    def reset_hard(self, commit: str = "HEAD") -> None:
        self.run("reset", "-q", "--hard", checked(commit, "commit"), "--")

    def clean(self) -> None:
        self.run("clean", "-fdq")

    # -- work protection ------------------------------------------------------------------

    def work_in_progress(self, bases: list[str], ours: set[str]) -> Work:
        """What a maintainer has here that resetting the tree would lose (the one rule).

        An operation in progress, changed or untracked files, and commits above ``bases``
        that are not ``ours``: a commit is the tool's only if its SHA was recorded when it
        was made (``note_made``), never by its committer name or e-mail, which anyone sets.
        Upstream's commits are nobody's work: what the mirror's refs (the fetched tags and
        pins, ``--alternate-refs``) reach, e.g. the commits between two tags after a rebase.
        """
        if self.rev("HEAD") is None:  # no commit yet
            return Work(self.operation_in_progress(), tuple(self.status()))
        known = [b for b in dict.fromkeys(bases) if self.has_commit(b)]
        out = self.run("log", "--format=%H%x00%s", "HEAD", "--not", *known, "--alternate-refs",
                       "--").stdout
        commits = tuple((sha, subject) for sha, _, subject in
                        (line.partition("\0") for line in out.splitlines()) if sha not in ours)
        return Work(self.operation_in_progress(), tuple(self.status()), commits)

    def made(self) -> set[str]:
        """The commits the tool made in this tree (recorded by ``note_made``)."""
        return set(_read_or_empty(self.gitdir / "tkedistro-made").split())

    def note_made(self, shas: Iterable[str]) -> None:
        """Record commits the tool made here: the only proof a commit is the tool's."""
        new = [sha for sha in dict.fromkeys(shas) if sha]
        if new:  # appended (a cut-short last line matches no commit), never through a link
            with files.open_for_writing(self.gitdir / "tkedistro-made", append=True) as ledger:
                ledger.write("".join(f"{sha}\n" for sha in new).encode())

    def restore_command(self, ref: str, paths: list[str] | None = None) -> str:
        """The command that puts the files a backup ``ref`` saved back into this tree: all
        of them, or only ``paths``."""
        return f"git -C {shlex.quote(self.shown)} checkout {ref} -- " + (
            " ".join(shlex.quote(p) for p in paths) if paths else ".")

    def backup(self, message: str, tree: str | None = None) -> str:
        """Save HEAD plus uncommitted and untracked files as a commit under a new ref.
        ``tree``: that snapshot when the caller has it (``worktree_tree``, which reuses the
        index's stat data: a fresh index would hash every file of the tree again, seconds
        on a Kubernetes tree)."""
        commit = self.head()
        if tree is None and self.status():
            tree = self.worktree_tree()
        if tree is not None:
            commit = self.commit_tree(tree, message)
        ref = f"refs/tkedistro/backup/{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        name, n = ref, 1
        while self.run("rev-parse", "-q", "--verify", name, check=False).returncode == 0:
            n += 1
            name = f"{ref}-{n}"
        self.update_ref(name, commit)
        return name

    def worktree_tree(self) -> str:
        """The tree of HEAD with every changed and untracked (not ignored) file as it is in
        the work tree; the index is not touched (a temporary one is used)."""
        index = self.gitdir / "tkedistro-snapshot.index"
        files.remove(index)  # git writes an index through a symlink: refuse one first
        env = {"GIT_INDEX_FILE": str(index)}
        try:  # a copy of the index: its stat data spares hashing every file again
            try:
                files.copy_file(self.gitdir / "index", index)
            except FileNotFoundError:
                self.run("read-tree", "HEAD", env=env)
            self.run("add", "-A", env=env)
            return self.run("write-tree", env=env).stdout.strip()
        finally:
            files.remove(index)

    def commit_tree(self, tree: str, message: str) -> str:
        """A new commit of ``tree`` on top of HEAD (no ref, the index untouched)."""
        return self.run("commit-tree", checked(tree, "tree"), "-p", self.head(), "-m",
                        message).stdout.strip()

    def push_commit(self, dest: Path, commit: str, ref: str) -> None:
        """Give the repository at ``dest`` ``commit`` as ``ref`` (only the objects it lacks)."""
        self.run("push", "-q", "--no-verify", "--", str(files.check_path(dest)),
                 f"{checked(commit, 'commit')}:{checked(ref, 'ref')}")

    def tags(self) -> dict[str, str]:
        """Each tag (``refs/tags/...``) and the object it names (a tag object stays one)."""
        out = self.run("for-each-ref", "--format=%(refname) %(objectname)", "refs/tags/").stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)

    def has_tag(self, tag: str) -> bool:
        """Whether ``refs/tags/<tag>`` is here, loose or packed (read, no git run)."""
        if (self.gitdir / "refs" / "tags" / tag).is_file():
            return True
        return f" refs/tags/{tag}\n" in _read_or_empty(self.gitdir / "packed-refs")

    def add_tags(self, tags: dict[str, str]) -> list[str]:
        """Create the ``tags`` (ref -> object) this repository lacks, in one transaction, as
        refs only (the objects must be here or borrowed); a tag it has is left as it is.
        The refs created."""
        have = self.tags()
        new = {ref: sha for ref, sha in tags.items()
               if ref.startswith("refs/tags/") and ref not in have}
        if new:
            self.run("update-ref", "--stdin", input="".join(
                f"create {checked(ref, 'tag')} {checked(sha, 'object')}\n"
                for ref, sha in new.items()))
        return list(new)

    def backup_refs(self) -> list[str]:
        """The backup refs (``refs/tkedistro/backup/``) this repository holds, oldest first."""
        out = self.run("for-each-ref", "--format=%(refname)", "refs/tkedistro/backup/").stdout
        return sorted(out.split())

    def backup_with_tree(self, tree: str) -> str | None:
        """An existing backup ref (``refs/tkedistro/backup/``) whose commit has ``tree``."""
        out = self.run("for-each-ref", "--format=%(refname) %(tree)",
                       "refs/tkedistro/backup/").stdout
        return next((ref for ref, _, found in (line.partition(" ") for line in
                                               out.splitlines()) if found == tree), None)

    def missing_objects(self, commit: str) -> str | None:
        """None when ``commit``, its tree and every tree and blob in it can be found.

        Checks presence (``rev-list --objects --missing=print``), without reading blobs and
        without walking history: what a checkout of ``commit`` needs.
        """
        res = self.run("rev-list", "--objects", "--no-walk", "--missing=print",
                       checked(commit, "commit"), "--", check=False)
        missing = [line[1:] for line in res.stdout.splitlines() if line.startswith("?")]
        if res.returncode != 0:
            return (res.stderr.strip().splitlines() or ["cannot read " + commit])[0]
        return f"{len(missing)} object(s) missing, e.g. {missing[0]}" if missing else None

    def ref_target(self, ref: str) -> str | None:
        """The object ``ref`` names, even one that is missing (``rev`` needs the object)."""
        out = self.run("for-each-ref", "--format=%(objectname)", "--", ref).stdout.split()
        return out[0] if out else None

    def rev_raw(self, name: str) -> str | None:
        """The object ``name`` names (a tag stays a tag), or None."""
        res = self.run("rev-parse", "--verify", "-q", checked(name, "revision"), check=False)
        return res.stdout.strip() or None if res.returncode == 0 else None

    @staticmethod
    def init_bare(path: Path, config: dict[str, dict[str, str]]) -> None:
        with git_found():
            repo = gitpython_module().Repo.init(path, bare=True, mkdir=True)
        with repo.config_writer() as writer:
            for section, values in config.items():
                for key, value in values.items():
                    writer.set_value(section, key, value)
        repo.close()

    @staticmethod
    def clone_at(src: Path, commit: str, dest: Path) -> Repo:
        """A fresh clone of ``src`` with ``commit`` checked out (detached), nothing else."""
        files.check_path(dest)
        run(["git", "clone", "-q", "--no-checkout", "--", str(files.check_path(src)), str(dest)],
            die_with_us=True)
        repo = Repo(dest)
        repo.switch(commit, branch=None)
        return repo

    def commit_epoch(self, sha: str) -> int:
        """The committer time of ``sha`` in seconds since 1970 (SOURCE_DATE_EPOCH)."""
        return int(self.run("show", "-s", "--format=%ct", checked(sha, "commit"), "--")
                   .stdout.strip())

    def archive(self, commit: str, dest: Path) -> None:
        """The tree of ``commit`` as a tar file at ``dest`` (``git archive``: every mtime is the
        commit's time, so the same commit gives the same bytes). The umask and the attributes
        file are pinned: a user's ``tar.umask`` or ``core.attributesFile`` cannot change them.
        git follows a symlink at ``dest``: one there (or above) is refused first."""
        files.check_path(dest)
        self.run("-c", "tar.umask=0002", "-c", "core.attributesFile=/dev/null", "archive",
                 "--format=tar", f"--output={dest}", checked(commit, "commit"), "--")

    @staticmethod
    def ls_remote(url: str, refs: list[str], *, config: Sequence[str] = (),
                  env: dict[str, str] | None = None) -> Result:
        """``git ls-remote`` of ``refs`` at ``url``; no repository needed. ``config``:
        more ``-c key=value`` words; ``env``: more environment (a credential helper's)."""
        argv = ["git", *CONFIG, *config, "ls-remote", "--", checked(url, "URL"), *refs]
        return execute(gitpython_module().Git(), argv, env=env)

    # -- diffs, patch ids and patch files ----------------------------------------------------

    def staged_diff(self) -> str:
        """What committing the index would change against HEAD, as a diff."""
        return self.run("diff", "--cached", *DIFF_OPTIONS, "HEAD", "--").stdout

    def diff_between(self, old: str, new: str) -> str:
        return self.run("diff", *DIFF_OPTIONS, checked(old, "commit"), checked(new, "commit"),
                        "--").stdout

    def changed_paths(self, old_tree: str, new_tree: str) -> list[str]:
        out = self.run("diff", "--name-only", "--no-renames", checked(old_tree, "tree"),
                       checked(new_tree, "tree"), "--").stdout
        return [line for line in out.splitlines() if line]

    def patch_ids(self, text: str) -> list[tuple[str, str]]:
        """``(patch-id, commit)`` of each patch in ``text`` (``git patch-id --stable``)."""
        out = self.run("patch-id", "--stable", input=text).stdout
        return [(p[0], p[1]) for p in (line.split() for line in out.splitlines()) if len(p) == 2]

    def patch_id(self, text: str) -> str | None:
        ids = self.patch_ids(text)
        return ids[0][0] if ids else None

    def log_patches(self, span: str, files: Iterable[str]) -> str:
        """``git log -p`` of the non-merge commits of ``span`` touching ``files``."""
        return self.run("log", "-p", "--no-merges", "--format=commit %H", span, "--",
                        *files).stdout

    def last_commit(self, span: str, files: Iterable[str]) -> str | None:
        out = self.run("log", "-1", "--no-merges", "--format=%H", span, "--", *files).stdout
        return out.strip() or None

    def format_patch(self, sha: str) -> str:
        """One commit as a patch file's text (stable: no footer, zeroed hash, full index)."""
        return self.run("format-patch", "--no-signature", "--zero-commit", "--full-index",
                        "--binary", "-N", "--no-stat", "--stdout", "-1",
                        checked(sha, "commit"), "--").stdout

    def reword(self, base: str, messages: dict[str, str]) -> dict[str, str]:
        """Give the commits of ``base..HEAD`` named in ``messages`` (SHA -> message) their
        new message, keeping their trees, authors and committers (names and dates); the
        commits above them are made again on their new parents. HEAD moves to the new tip
        with ``reset --soft``: the index and the work tree stay as they are. Returns old
        SHA -> new SHA of every commit made again."""
        out = self.run("rev-list", "--reverse", "--topo-order", "--parents",
                       f"{checked(base, 'commit')}..HEAD", "--").stdout
        new: dict[str, str] = {}
        for line in out.splitlines():
            sha, *parents = line.split()
            mapped = [new.get(parent, parent) for parent in parents]
            if sha in messages or mapped != parents:
                new[sha] = self._commit_again(sha, mapped, messages.get(sha))
        head = self.head()
        if head in new:
            self.run("reset", "-q", "--soft", new[head])
        return new

    def _commit_again(self, sha: str, parents: list[str], message: str | None) -> str:
        """A copy of commit ``sha`` on ``parents`` (its own message unless ``message``)."""
        raw = self.run("cat-file", "commit", checked(sha, "commit")).stdout
        header, _, own = raw.partition("\n\n")
        env: dict[str, str] = {}
        for role in ("author", "committer"):
            match = re.search(rf"^{role} (.*) <(.*)> ([0-9]+ [+-][0-9]{{4}})$", header, re.M)
            if match is None:
                raise CommandError(["git", "cat-file", "commit", sha], 0, raw, "",
                                   message=f"{self.shown}: commit {sha[:12]} has no {role}")
            name, email, date = match.groups()
            env |= {f"GIT_{role.upper()}_NAME": name, f"GIT_{role.upper()}_EMAIL": email,
                    f"GIT_{role.upper()}_DATE": date}
        text = own if message is None else message.rstrip("\n") + "\n"
        argv = ["commit-tree", f"{sha}^{{tree}}", *(x for p in parents for x in ("-p", p))]
        return self.run(*argv, env=env, input=text).stdout.strip()


def _read_or_empty(path: Path) -> str:
    """The text of the tool's own file ``path`` in a ``.git`` folder; "" when missing."""
    try:
        return files.read_text(path)
    except (FileNotFoundError, NotADirectoryError):
        return ""
