"""Every user-facing error of tkedistro and its exit code.

The CLI turns a ``TkedistroError`` into one clean message and ``exit_code``.
Codes are documented in the README ("Exit codes"); keep that table in step.

    0   success
    1   unexpected internal error (a bug: traceback printed)
    2   bad command line (typer/click usage error)
    3   manifest invalid or release unknown
    4   patch file invalid (unparseable, missing trailers)
    5   upstream fetch failed / cache problem
    6   pinned commit does not match the upstream tag
    7   a patch of the series does not apply
    8   _src/<release> holds work in progress (refused to touch it)
    9   container backend unavailable (no Docker engine answering)
    10  builder image missing or unsuitable (wrong Go version)
    11  build failed inside the container
    12  smoke check failed: a built binary crashed or reports another version
    13  another tkedistro run holds the lock
    14  external command failed (git, tar, ...)
    15  conformance: the suite ran and specs failed
    16  conformance: the cluster or the suite could not be started
    17  a release is mid-rebase / rebase state problem
    18  --verify-reproducible: the second build differs (output published; both kept)
    130 interrupted (Ctrl-C)
"""

from __future__ import annotations

from collections.abc import Sequence


class TkedistroError(Exception):
    """Base of every expected error. ``str()`` is the message shown to the user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, details: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def render(self) -> str:
        parts = [self.message]
        if self.details:
            parts.append(self.details.rstrip())
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class ManifestError(TkedistroError):
    """One or more problems in a release manifest; ``problems`` lists them all."""

    exit_code = 3

    def __init__(self, problems: Sequence[str], *, hint: str | None = None):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems), hint=hint)


class ReleaseNotFoundError(ManifestError):
    pass


class PatchFormatError(TkedistroError):
    exit_code = 4

    def __init__(self, problems: Sequence[str], *, hint: str | None = None):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems), hint=hint)


class FetchError(TkedistroError):
    exit_code = 5


class CommitMismatchError(TkedistroError):
    exit_code = 6


class PatchApplyError(TkedistroError):
    exit_code = 7


class WorkInProgressError(TkedistroError):
    exit_code = 8


class BackendUnavailableError(TkedistroError):
    exit_code = 9


class BuilderImageError(TkedistroError):
    exit_code = 10


class BuildError(TkedistroError):
    exit_code = 11


class SmokeCheckError(TkedistroError):
    exit_code = 12


class LockedError(TkedistroError):
    exit_code = 13


class CommandError(TkedistroError):
    """An external command exited non-zero; carries argv, exit code and output."""

    exit_code = 14

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int,
        stdout: str = "",
        stderr: str = "",
        *,
        message: str | None = None,
        hint: str | None = None,
    ):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        msg = message or f"command failed with exit code {returncode}: {' '.join(self.argv)}"
        output = (stderr or stdout).strip()
        super().__init__(msg, hint=hint, details=output or None)


class ConformanceFailedError(TkedistroError):
    exit_code = 15


class ClusterError(TkedistroError):
    exit_code = 16


class RebaseStateError(TkedistroError):
    exit_code = 17


class NotReproducibleError(TkedistroError):
    exit_code = 18


class Interrupted(TkedistroError):
    exit_code = 130

    def __init__(self, message: str = "interrupted"):
        super().__init__(message)


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "unexpected internal error (a bug; traceback printed)",
    2: "bad command line",
    3: "manifest invalid or release unknown",
    4: "patch file invalid",
    5: "upstream fetch failed",
    6: "pinned commit does not match the upstream tag",
    7: "a patch of the series does not apply",
    8: "_src/<release> holds uncommitted or extra work (refused)",
    9: "container backend unavailable",
    10: "builder image missing or wrong Go version",
    11: "build failed",
    12: "smoke check failed",
    13: "another tkedistro run holds the lock",
    14: "external command failed",
    15: "conformance specs failed",
    16: "conformance cluster or suite could not start",
    17: "release is mid-rebase / rebase state problem",
    18: "--verify-reproducible: the second build differs",
    130: "interrupted (Ctrl-C)",
}
