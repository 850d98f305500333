"""The git operations on one ``_src/<release>`` work tree (git CLI through ``runner.run``).

Commits made here carry the fixed committer ``tkedistro <tkedistro@invalid>``; that is how
the tool tells its own commits from a maintainer's.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from tkedistro.core.errors import WorkInProgressError
from tkedistro.core.runner import Result, run

TOOL_NAME = "tkedistro"
TOOL_EMAIL = "tkedistro@invalid"
BRANCH = "tkedistro"
COMMITTER_ENV = {"GIT_COMMITTER_NAME": TOOL_NAME, "GIT_COMMITTER_EMAIL": TOOL_EMAIL}
C_LOCALE = {"LC_ALL": "C", "LANGUAGE": "C"}  # git output that is parsed must be English
# Settings a user's config could change and that would change the commits we make.
_CONFIG = (
    "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null", "-c", "core.autocrlf=false",
    "-c", f"user.name={TOOL_NAME}", "-c", f"user.email={TOOL_EMAIL}",
)
_OPERATIONS = {
    "rebase-apply": "a `git am` or rebase is in progress",
    "rebase-merge": "a rebase is in progress",
    "MERGE_HEAD": "a merge is in progress",
    "CHERRY_PICK_HEAD": "a cherry-pick is in progress",
    "REVERT_HEAD": "a revert is in progress",
}
Applied = tuple[str, str]  # (method, commit)


class Tree:
    """``_src/<release>``: ``path`` on disk, ``shown`` in messages."""

    def __init__(self, path: Path, shown: str) -> None:
        self.path = path
        self.shown = shown
        self.gitdir = path / ".git"

    def git(self, *args: str, check: bool = True, env: dict[str, str] | None = None,
            input: str | None = None) -> Result:
        return run(["git", *_CONFIG, *args], cwd=self.path, env=env, check=check, input=input)

    def exists(self) -> bool:
        return self.gitdir.is_dir()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def has_commit(self, sha: str) -> bool:
        return self.git("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0

    def commit_date(self, sha: str) -> str:
        return self.git("log", "-1", "--format=%cd", "--date=raw", sha).stdout.strip()

    def status(self) -> list[str]:
        """Changed and untracked (not ignored) paths; ``_output/`` is ignored."""
        out = self.git("status", "--porcelain", "-z", "--untracked-files=normal").stdout
        return [entry[3:] for entry in out.split("\0") if len(entry) > 3]

    def operation_in_progress(self) -> str | None:
        return next((why for name, why in _OPERATIONS.items() if (self.gitdir / name).exists()),
                    None)

    def create(self, mirror: Path, base: str) -> None:
        """Check out ``base`` into a new tree, borrowing objects from ``mirror``; atomic."""
        if self.path.exists() and any(self.path.iterdir()):
            raise WorkInProgressError(
                f"{self.shown} exists but is not a git work tree; refusing to touch it",
                hint=f"move {self.shown} away (or delete it), then run again",
            )
        tmp = self.path.with_name(f".{self.path.name}.creating")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        run(["git", "init", "-q", "-b", BRANCH, str(tmp)])
        (tmp / ".git" / "objects" / "info" / "alternates").write_text(f"{mirror / 'objects'}\n")
        with (tmp / ".git" / "info" / "exclude").open("a") as exclude:
            exclude.write("/_output/\n")
        run(["git", "config", "core.untrackedCache", "true"], cwd=tmp)
        run(["git", *_CONFIG, "checkout", "-q", "-f", "-B", BRANCH, base], cwd=tmp)
        if self.path.exists():
            self.path.rmdir()
        tmp.rename(self.path)

    def switch(self, commit: str) -> None:
        self.git("checkout", "-q", "-f", "-B", BRANCH, commit)

    def work_in_progress(self, bases: list[str]) -> str | None:
        """What a maintainer did here that a re-prepare would lose, or None."""
        if why := self.operation_in_progress():
            return why
        if changed := self.status():
            more = " ..." if len(changed) > 5 else ""
            return f"uncommitted changes in {len(changed)} file(s): {', '.join(changed[:5])}{more}"
        if foreign := self._foreign_commits(bases):
            listed = "; ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
            return f"{len(foreign)} commit(s) not made by tkedistro: {listed}"
        return None

    def _foreign_commits(self, bases: list[str]) -> list[str]:
        known = [b for b in dict.fromkeys(bases) if self.has_commit(b)]
        out = self.git("log", "-n", "50", "--format=%H%x00%ce%x00%s", "HEAD", "--not", *known)
        foreign = []
        for line in out.stdout.splitlines():
            sha, email, subject = line.split("\0", 2)
            if email != TOOL_EMAIL:
                foreign.append(f"{sha[:12]} {subject}")
        return foreign

    def backup(self, message: str) -> str:
        """Save HEAD plus uncommitted and untracked files as a commit under a new ref."""
        commit = self.head()
        if self.status():
            index = self.gitdir / "tkedistro-backup.index"
            env = {**COMMITTER_ENV, "GIT_INDEX_FILE": str(index)}
            self.git("read-tree", "HEAD", env=env)
            self.git("add", "-A", env=env)
            tree = self.git("write-tree", env=env).stdout.strip()
            commit = self.git("commit-tree", tree, "-p", commit, "-m", message,
                              env=env).stdout.strip()
            index.unlink(missing_ok=True)
        ref = f"refs/tkedistro/backup/{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        name, n = ref, 1
        while self.git("rev-parse", "-q", "--verify", name, check=False).returncode == 0:
            n += 1
            name = f"{ref}-{n}"
        self.git("update-ref", name, commit)
        return name

    def discard_changes(self) -> None:
        """Abort a `git am`/rebase and reset to HEAD; untracked files go, ignored stay."""
        (self.gitdir / "index.lock").unlink(missing_ok=True)
        if (self.gitdir / "rebase-apply").exists():
            self.git("am", "--abort", check=False)
            shutil.rmtree(self.gitdir / "rebase-apply", ignore_errors=True)
        if (self.gitdir / "rebase-merge").exists():
            self.git("rebase", "--abort", check=False)
        self.git("reset", "-q", "--hard")
        self.git("clean", "-fdq")

    def am(self, patch: Path) -> Applied | Result:
        """``git am --3way``: (method, new HEAD), or git's failing result (state left)."""
        result = self.git(
            "am", "--3way", "--whitespace=nowarn", "--committer-date-is-author-date",
            "--no-message-id", "--no-keep-cr", "--no-scissors", "--no-signoff", str(patch),
            check=False, env={**COMMITTER_ENV, **C_LOCALE},
        )
        if result.returncode != 0:
            return result
        output = result.stdout + result.stderr
        return ("3-way" if "3-way merge" in output else "applied"), self.head()

    def apply_plain(self, patch: Path, message: str, date: str) -> Applied | Result:
        """``git apply`` (3-way when the plain apply fails) and a commit dated ``date``."""
        method = "applied"
        if self.git("apply", "--check", "--whitespace=nowarn", str(patch),
                    check=False).returncode == 0:
            result = self.git("apply", "--index", "--whitespace=nowarn", str(patch), check=False)
        else:
            method = "3-way"
            result = self.git("apply", "--3way", "--whitespace=nowarn", str(patch), check=False)
        if result.returncode != 0:
            return result
        env = {**COMMITTER_ENV, "GIT_AUTHOR_NAME": TOOL_NAME, "GIT_AUTHOR_EMAIL": TOOL_EMAIL,
               "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        result = self.git("commit", "-q", "--no-verify", "--cleanup=whitespace", "-F", "-",
                          env=env, input=message, check=False)
        if result.returncode != 0:
            return result
        return method, self.head()

    def refresh_status_cache(self) -> None:
        """One full ``git status`` so the index holds the untracked cache for fast re-runs."""
        self.git("status", "--porcelain", "--untracked-files=normal")


_PATCH_FAILED = re.compile(r"^error: patch failed: (.+):(\d+)$", re.M)
_OTHER_ERROR = re.compile(r"^error: (.+: (?:does not exist in index|already exists in (?:index|"
                          r"working directory)|No such file or directory|does not match index))$",
                          re.M)


def failed_hunks(tree: Path, patch: Path) -> list[str]:
    """Which files and hunks of ``patch`` do not apply to ``tree`` (first per file, as git)."""
    result = run(["git", "apply", "--check", "-v", str(patch)], cwd=tree, check=False,
                 env=C_LOCALE)
    hunks = _hunk_headers(patch.read_text(encoding="utf-8", errors="replace"))
    lines = []
    for match in _PATCH_FAILED.finditer(result.stderr):
        path, line = match.group(1), int(match.group(2))
        headers = hunks.get(path, [])
        index = next((i for i, (start, _) in enumerate(headers) if start == line), None)
        if index is None:
            lines.append(f"{path}: the hunk at line {line} does not apply")
        else:
            lines.append(f"{path}: hunk #{index + 1} of {len(headers)} does not apply: "
                         f"{headers[index][1]}")
    lines += [m.group(1) for m in _OTHER_ERROR.finditer(result.stderr)]
    return lines


_HUNK = re.compile(r"^(@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@)")


def _hunk_headers(text: str) -> dict[str, list[tuple[int, str]]]:
    """File -> [(old start line, ``@@ ... @@``)] of a diff, by the ``---``/``+++`` names."""
    files: dict[str, list[tuple[int, str]]] = {}
    current: list[tuple[int, str]] = []
    old = ""
    for line in text.splitlines():
        if line.startswith("--- "):
            old = line[4:].split("\t")[0].removeprefix("a/")
        elif line.startswith("+++ "):
            new = line[4:].split("\t")[0].removeprefix("b/")
            current = files.setdefault(new if new != "/dev/null" else old, [])
            if old not in ("/dev/null", new):
                files[old] = current
        elif match := _HUNK.match(line):
            current.append((int(match.group(2)), match.group(1)))
    return files
