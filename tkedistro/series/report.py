"""What a rebase step did, for people (a per-patch table and next commands) and for ``--json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tkedistro.core.errors import PatchApplyError
from tkedistro.core.workspace import ReleaseLayout, manifest_name
from tkedistro.series.replay import PatchOutcome
from tkedistro.series.state import RebaseState

Phase = Literal["stopped", "done", "aborted"]


def outcome_table(outcomes: list[PatchOutcome]) -> list[str]:
    """``  1  patches/1.20/0001-x.patch  applied clean`` lines, aligned."""
    width = max((len(o.file) for o in outcomes), default=5)
    lines = [f"  {'#':>3}  {'patch':<{width}}  result"]
    lines += [f"  {o.position:>3}  {o.file:<{width}}  {o.label()}" for o in outcomes]
    return lines


@dataclass
class RebaseResult:
    release: str
    status: Phase
    old_tag: str
    old_commit: str
    onto_tag: str
    onto_commit: str
    total: int
    outcomes: list[PatchOutcome]
    old_version: str
    new_version: str | None = None
    export: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    new_line: bool = False  # the release line was started by `tkedistro new`
    backup_ref: str | None = None  # where --abort saved the edits made in _src
    src_kept: bool = False  # --abort kept a _src the rebase made: it holds backup_ref
    restore: list[str] = field(default_factory=list)  # --abort: how to get the edits back

    @classmethod
    def from_state(cls, state: RebaseState, status: Phase) -> RebaseResult:
        return cls(
            release=state.release, status=status, old_tag=state.old_tag,
            old_commit=state.old_commit, onto_tag=state.onto_tag,
            onto_commit=state.onto_commit, total=len(state.series),
            outcomes=list(state.outcomes), old_version=state.distro_version,
            new_line=state.new_line,
        )

    @property
    def conflict(self) -> PatchOutcome | None:
        if self.status == "stopped" and self.outcomes and self.outcomes[-1].status == "conflict":
            return self.outcomes[-1]
        return None

    @property
    def dropped(self) -> list[PatchOutcome]:
        return [o for o in self.outcomes if o.status in ("upstream", "skipped")]

    def next_commands(self) -> list[str]:
        if self.status != "stopped":
            return []
        verbs = ("continue", "skip", "abort")
        return [f"tkedistro rebase {self.release} --{verb}" for verb in verbs]

    def to_json(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "status": self.status,
            "from": {"tag": self.old_tag, "commit": self.old_commit},
            "onto": {"tag": self.onto_tag, "commit": self.onto_commit},
            "patches_total": self.total,
            "patches": [o.to_json() for o in self.outcomes],
            "dropped": [o.file for o in self.dropped],
            "distro_version": {"old": self.old_version, "suggested": self.new_version},
            "export": self.export,
            "next_commands": self.next_commands(),
            "notes": self.notes,
            "backup_ref": self.backup_ref,
            "restore": self.restore,
        }

    def format_text(self) -> str:
        head = (f"rebase {self.release}: {self.old_tag} ({self.old_commit[:12]}) -> "
                f"{self.onto_tag} ({self.onto_commit[:12]})")
        lines = [*self.notes, head, *outcome_table(self.outcomes)]
        if self.status == "aborted":
            lines += self._aborted_text()
        elif self.status == "stopped":
            lines += self._stopped_text()
        else:
            lines += self._done_text()
        return "\n".join(lines)

    def _aborted_text(self) -> list[str]:
        shown = ReleaseLayout(self.release)
        src = "" if self.src_kept else f" and {shown.src}"
        files = f"{shown.manifest}, {shown.patches}/" if src else \
            f"{shown.manifest} and {shown.patches}/"
        if self.new_line:
            line = f"rebase aborted: {files}{src}, made by tkedistro new, are removed"
        else:
            line = f"rebase aborted: {files}{src} are back as they were"
        if not self.src_kept:
            return [*(f"edits saved to {self.backup_ref}; get them back with: {command}"
                      for command in self.restore), line]
        return [line, f"{shown.src} is kept, as the rebase made it, for the edits saved to "
                      f"{self.backup_ref} (get them back: git -C {shown.src} checkout "
                      f"{self.backup_ref} -- .); delete {shown.src} when you no longer "
                      "need them"]

    def _stopped_text(self) -> list[str]:
        bad = self.conflict
        if bad is None:
            return []
        lines = [f"stopped at patch {bad.position} of {self.total} ({bad.file}); "
                 "conflicted files:"]
        lines += [f"  {f}" for f in bad.conflicts]
        if bad.detail:
            lines += ["git said:", *(f"  {line}" for line in bad.detail.splitlines())]
        src = ReleaseLayout(self.release).src
        lines += [
            f"resolve the conflicts in {src}, stage them (git -C {src} add FILE), then run one of:",
            f"  tkedistro rebase {self.release} --continue",
            f"  tkedistro rebase {self.release} --skip      (drop this patch from the series)",
            f"  tkedistro rebase {self.release} --abort     (put everything back as it was)",
        ]
        return lines

    def _done_text(self) -> list[str]:
        lines = [f"rebased {self.release} onto {self.onto_tag}: "
                 f"{len(self.outcomes) - len(self.dropped)} patches kept, "
                 f"{len(self.dropped)} dropped"]
        for o in self.dropped:
            why = "already upstream" if o.status == "upstream" else "skipped at your request"
            where = f" in {o.upstream_commit[:12]}" if o.upstream_commit else ""
            lines.append(f"note: {o.file} removed from the series ({why}{where})")
        lines.append(f"manifest pin: {self.onto_tag} {self.onto_commit}")
        if self.new_version:
            lines.append(f"distro_version: {self.old_version} -> {self.new_version} "
                         f"(suggested; edit {manifest_name(self.release)} to change it)")
        changed = [p for p in self.export.get("patches", []) if p["action"] != "unchanged"]
        lines += [f"{p['action']}: {p['file']}" for p in changed]
        return lines

    def raise_for_conflict(self) -> None:
        """Exit 7 after the table when the rebase stopped at a conflict."""
        bad = self.conflict
        if bad is not None:
            raise PatchApplyError(
                f"rebase of {self.release} stopped: patch {bad.position} of {self.total} "
                f"({bad.file}) conflicts"
            )
