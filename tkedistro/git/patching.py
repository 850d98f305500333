"""The patch half of ``Repo``: ``git am``/``apply``, patch ids, ``format-patch``.

``Repo`` inherits these; they only build command lines and call ``Repo.run``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from tkedistro.core.errors import CommandError
from tkedistro.core.runner import Result

# `git am` options that make a replayed commit's SHA depend on the patch and its base only.
AM_OPTIONS = ("--whitespace=nowarn", "--committer-date-is-author-date", "--no-message-id",
              "--no-keep-cr", "--no-scissors", "--no-signoff")
# No "git am --continue / --skip / --abort" advice: tkedistro says what to run instead.
# (--resolvemsg replaces git's "When you have resolved this problem..." lines; the advice
# settings silence the hints; advice.mergeConflict is what newer gits call it.)
AM_QUIET = ("-c", "advice.amWorkDir=false", "-c", "advice.mergeConflict=false")
RESOLVE_MSG = "--resolvemsg="
# diff output the scanner reads, whatever the user's diff config says
DIFF_OPTIONS = ("--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/",
                "--dst-prefix=b/")


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


def checked(value: str, what: str) -> str:
    """``value`` if git cannot take it for an option; refuse it otherwise."""
    if value.startswith("-"):
        raise CommandError(["git"], 128, "", "", message=(
            f"refusing {what} {value!r}: it starts with '-', so git would read it as an option"))
    return value


class Patching:
    """Patch operations on a repository; ``run`` is ``Repo.run``."""

    gitdir: Path  # set by ``Repo``

    def run(self, *args: str, check: bool = True, env: dict[str, str] | None = None,
            input: str | None = None) -> Result:
        raise NotImplementedError

    def am(self, mbox: Path, *, three_way: bool = True, quiet: bool = False,
           date: str | None = None) -> Result:
        """``git am`` of ``mbox`` with the tool's options; a failure leaves the session."""
        env = {"GIT_COMMITTER_DATE": date} if date else None
        flags = [*(["--3way"] if three_way else []), *(["-q"] if quiet else [])]
        return self.run(*AM_QUIET, "am", *flags, *AM_OPTIONS, RESOLVE_MSG, "--", str(mbox),
                        check=False, env=env)

    def am_continue(self, date: str | None = None) -> Result:
        env = {"GIT_COMMITTER_DATE": date} if date else None
        return self.run(*AM_QUIET, "am", "--continue", RESOLVE_MSG, check=False, env=env)

    def am_skip(self) -> None:
        self.run("am", "--skip", check=False)

    def am_abort(self) -> None:
        self.run("am", "--abort", check=False)

    def am_quit(self) -> None:
        self.run("am", "--quit")

    def staged_diff(self) -> str:
        """What committing the index would change against HEAD, as a diff."""
        return self.run("diff", "--cached", *DIFF_OPTIONS, "HEAD", "--").stdout

    def diff_between(self, old: str, new: str) -> str:
        return self.run("diff", *DIFF_OPTIONS, checked(old, "commit"), checked(new, "commit"),
                        "--").stdout

    def worktree_tree(self) -> str:
        """The tree of HEAD with every changed and untracked (not ignored) file as it is in
        the work tree; the index is not touched (a temporary one is used)."""
        index = self.gitdir / "tkedistro-snapshot.index"
        env = {"GIT_INDEX_FILE": str(index)}
        try:  # a copy of the index: its stat data spares hashing every file again
            if (self.gitdir / "index").is_file():
                shutil.copyfile(self.gitdir / "index", index)
            else:
                self.run("read-tree", "HEAD", env=env)
            self.run("add", "-A", env=env)
            return self.run("write-tree", env=env).stdout.strip()
        finally:
            index.unlink(missing_ok=True)

    def changed_paths(self, old_tree: str, new_tree: str) -> list[str]:
        out = self.run("diff", "--name-only", "--no-renames", checked(old_tree, "tree"),
                       checked(new_tree, "tree"), "--").stdout
        return [line for line in out.splitlines() if line]

    def backup_with_tree(self, tree: str) -> str | None:
        """An existing backup ref (``refs/tkedistro/backup/``) whose commit has ``tree``."""
        out = self.run("for-each-ref", "--format=%(refname) %(tree)",
                       "refs/tkedistro/backup/").stdout
        return next((ref for ref, _, found in (line.partition(" ") for line in
                                               out.splitlines()) if found == tree), None)

    def applies(self, patch: Path, *, reverse: bool = False) -> bool:
        """Whether ``patch`` applies to the work tree as it is (``reverse``: is in it)."""
        return self.run("apply", "--check", "--whitespace=nowarn", *(["-R"] if reverse else []),
                        "--", str(patch), check=False).returncode == 0

    def apply_check_verbose(self, patch: Path) -> str:
        """git's report of why ``patch`` does not apply (stderr of ``apply --check -v``)."""
        return self.run("apply", "--check", "-v", "--", str(patch), check=False).stderr

    def apply_plain(self, patch: Path, message: str, date: str) -> tuple[str, Result]:
        """``git apply`` (3-way when the plain apply fails), then a commit dated ``date``.

        Returns the method (``applied`` or ``3-way``) and the last git result.
        """
        method = "applied" if self.applies(patch) else "3-way"
        how = "--index" if method == "applied" else "--3way"
        result = self.run("apply", how, "--whitespace=nowarn", "--", str(patch), check=False)
        if result.returncode == 0:
            env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
            result = self.run("commit", "-q", "--no-verify", "--cleanup=whitespace", "-F", "-",
                              env=env, input=message, check=False)
        return method, result

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
