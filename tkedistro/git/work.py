"""What counts as work in progress in a tree (``Repo.work_in_progress`` gathers it): an
operation git has under way, changed paths (from ``git status --porcelain -z``), and commits
that are not the tool's."""

from __future__ import annotations

from dataclasses import dataclass

OPERATIONS = {
    "rebase-apply": "a `git am` or rebase is in progress",
    "rebase-merge": "a rebase is in progress",
    "MERGE_HEAD": "a merge is in progress",
    "CHERRY_PICK_HEAD": "a cherry-pick is in progress",
    "REVERT_HEAD": "a revert is in progress",
}


def porcelain_paths(out: str) -> list[str]:
    """The paths of ``git status --porcelain -z``: ``XY path``; a rename or copy (R or C in
    XY) is followed by one more field, the path it came from, which is not an entry."""
    fields = iter(out.split("\0"))
    paths = []
    for entry in fields:
        if len(entry) > 3:
            paths.append(entry[3:])
            if "R" in entry[:2] or "C" in entry[:2]:
                next(fields, None)
    return paths


def porcelain_v2(out: str) -> tuple[str | None, list[str]]:
    """HEAD's commit (None before the first commit) and the paths of ``git status
    --porcelain=v2 -z --branch``: ``1 XY ... path`` (8 fields before the path), ``2 ...
    path`` (9, then the path it came from as one more field), ``u ... path`` (10), ``? path``
    and ``! path``; the ``# branch.*`` headers are not entries."""
    fields = iter(out.split("\0"))
    head, paths = None, []
    for entry in fields:
        kind = entry[:2]
        if entry.startswith("# branch.oid "):
            oid = entry.removeprefix("# branch.oid ")
            head = None if oid == "(initial)" else oid
        elif kind in _V2_FIELDS and entry.count(" ") >= _V2_FIELDS[kind]:
            paths.append(entry.split(" ", _V2_FIELDS[kind])[-1])
            if kind == "2 ":
                next(fields, None)
    return head, paths


# porcelain v2: how many space-separated fields come before the path, per entry kind
_V2_FIELDS = {"1 ": 8, "2 ": 9, "u ": 10, "? ": 1, "! ": 1}


@dataclass(frozen=True)
class Work:
    """Work in progress in a tree: an operation, changed paths, commits not the tool's."""

    operation: str | None = None
    changed: tuple[str, ...] = ()
    commits: tuple[tuple[str, str], ...] = ()  # (sha, subject), newest first

    def describe(self) -> str | None:
        """The first kind of work found, in one line; None when there is none."""
        if self.operation:
            return self.operation
        if self.changed:
            more = " ..." if len(self.changed) > 5 else ""
            return (f"uncommitted changes in {len(self.changed)} file(s): "
                    f"{', '.join(self.changed[:5])}{more}")
        if self.commits:
            listed = "; ".join(f"{sha[:12]} {subject}" for sha, subject in self.commits[:5])
            more = " ..." if len(self.commits) > 5 else ""
            return f"{len(self.commits)} commit(s) not made by tkedistro: {listed}{more}"
        return None
