"""How a patch enters a tree: the one routine every caller goes through (``Patcher``).

``tkedistro source``, the rebase and forecast replays and ``patches import`` all commit a
patch with ``Patcher.apply`` (``git am`` with ``AM_OPTIONS``, so a commit's SHA depends on
the patch and its base only); a plain diff first becomes a mail (``mbox.to_mbox``: the tool
as author, the base commit's date), so ``commit_plain`` is the one plain-diff -> commit
function. The ``git am`` session it may leave (a conflict) is continued, skipped or aborted
here too, and a failing patch's hunks are named from ``git apply --check -v``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tkedistro.core import files
from tkedistro.core.runner import Result
from tkedistro.git.mbox import failed_hunks, to_mbox
from tkedistro.git.repo import Repo

# `git am` options that make a replayed commit's SHA depend on the patch and its base only.
AM_OPTIONS = ("--whitespace=nowarn", "--committer-date-is-author-date", "--no-message-id",
              "--no-scissors", "--no-signoff")
# No "git am --continue / --skip / --abort" advice: tkedistro says what to run instead.
# (--resolvemsg replaces git's "When you have resolved this problem..." lines; the advice
# settings silence the hints; advice.mergeConflict is what newer gits call it.)
AM_QUIET = ("-c", "advice.amWorkDir=false", "-c", "advice.mergeConflict=false")
RESOLVE_MSG = "--resolvemsg="
# what `git am` says (unless quiet) when a patch needed a 3-way merge
FELL_BACK = "Falling back to patching base and 3-way merge"


def fell_back(output: str) -> bool:
    """Whether ``git am``'s ``output`` says a patch went in with a 3-way merge."""
    return any(line.startswith(FELL_BACK) for line in output.splitlines())


@dataclass(frozen=True)
class Entered:
    """What one ``git am`` run did: git's result, and whether it needed a 3-way merge."""

    result: Result

    @property
    def ok(self) -> bool:
        return self.result.returncode == 0

    @property
    def three_way(self) -> bool:
        return fell_back(self.result.stdout + "\n" + self.result.stderr)


class Patcher:
    """Patches entering the tree of ``repo``, and the ``git am`` session they may leave."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    def apply(self, mail: Path, *, three_way: bool = True, quiet: bool = False,
              date: str | None = None, keep_cr: bool = False) -> Entered:
        """Commit the patch(es) of ``mail`` on HEAD (``git am``; ``date``: the committer
        date); a failure leaves the session for ``resume``, ``skip`` or ``abort``.

        ``keep_cr``: the mail was made from a plain diff, whose carriage returns are content
        (as ``git apply`` reads them: a CRLF diff does not apply to an LF tree); a real
        mail's CRLF line ends are the mail's, and go."""
        env = {"GIT_COMMITTER_DATE": date} if date else None
        flags = [*(["--3way"] if three_way else []), *(["-q"] if quiet else []),
                 "--keep-cr" if keep_cr else "--no-keep-cr"]
        return Entered(self.repo.run(*AM_QUIET, "am", *flags, *AM_OPTIONS, RESOLVE_MSG, "--",
                                     str(mail), check=False, env=env))

    def commit_plain(self, diff: str, subject: str, message: str, date: str,
                     scratch: Path) -> Entered:
        """A plain diff as one commit from the tool, dated ``date`` (the base commit's):
        written as a mail to ``scratch`` (removed after), then ``apply``."""
        mail = to_mbox(diff, subject, message, date=date)
        files.write_atomic(scratch, mail.encode("utf-8", "surrogateescape"))
        try:
            return self.apply(scratch, keep_cr=True)
        finally:
            files.remove(scratch)

    def resume(self, date: str | None = None) -> Result:
        """``git am --continue`` once a conflict is resolved."""
        env = {"GIT_COMMITTER_DATE": date} if date else None
        return self.repo.run(*AM_QUIET, "am", "--continue", RESOLVE_MSG, check=False, env=env)

    def in_progress(self) -> bool:
        return (self.repo.gitdir / "rebase-apply").is_dir()

    def skip(self) -> None:
        self.repo.run("am", "--skip", check=False)

    def abort(self) -> None:
        self.repo.run("am", "--abort", check=False)

    def quit(self) -> None:
        self.repo.run("am", "--quit")

    def discard(self) -> None:
        """Abort a ``git am``/rebase and reset to HEAD; untracked files go, ignored stay."""
        gitdir = self.repo.gitdir
        files.remove(gitdir / "index.lock")
        if (gitdir / "rebase-apply").exists():
            self.abort()
            files.remove(gitdir / "rebase-apply")
        if (gitdir / "rebase-merge").exists():
            self.repo.run("rebase", "--abort", check=False)
        self.repo.reset_hard()
        self.repo.clean()

    def applies(self, patch: Path, *, reverse: bool = False) -> bool:
        """Whether ``patch`` applies to the work tree as it is (``reverse``: is in it)."""
        return self.repo.run("apply", "--check", "--whitespace=nowarn",
                             *(["-R"] if reverse else []), "--", str(patch),
                             check=False).returncode == 0

    def failed_hunks(self, patch: Path) -> list[str]:
        """Which files and hunks of ``patch`` do not apply to the tree (first per file)."""
        stderr = self.repo.run("apply", "--check", "-v", "--", str(patch), check=False).stderr
        return failed_hunks(stderr, patch)
