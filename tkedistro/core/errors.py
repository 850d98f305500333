"""Every user-facing error of tkedistro and its exit code.

Each class carries its ``exit_code`` and a one-line ``meaning``; ``EXIT_CODES`` (and the
README's "Exit codes" table, which a unit test renders from it) are computed from the classes,
so a new error is documented where it is defined. The CLI turns a ``TkedistroError`` into one
clean message and its ``exit_code`` (``tkedistro/cli/common.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class TkedistroError(Exception):
    """Base of every expected error. ``str()`` is the message shown to the user."""

    exit_code: ClassVar[int] = 1
    meaning: ClassVar[str] = "unexpected internal error (a bug; traceback printed)"

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
    meaning = ("manifest invalid (also a manifest-named file outside the repo or not a "
               "regular file)")

    def __init__(self, problems: Sequence[str], *, hint: str | None = None):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems), hint=hint)


class ReleaseNotFoundError(ManifestError):
    meaning = "release unknown or not a release name"


class UnsafePathError(TkedistroError):
    """A symlink (or another file kind) where the tool keeps its own files: refused, never
    followed."""

    exit_code = 3
    meaning = ("a symlink where tkedistro keeps its own files (state, output, results, "
               "cluster, cache): refused, never followed")


class WorkflowDriftError(TkedistroError):
    """A checked-in CI workflow differs from its render: the repository's config is stale."""

    exit_code = 3
    meaning = "a checked-in workflow differs from its render"


class RepoConfigError(TkedistroError):
    """``tkedistro.yaml`` (the repo's own settings) is invalid, or lacks a setting the
    command needs; ``problems`` lists them all."""

    exit_code = 3
    meaning = ("`tkedistro.yaml` (the repo's settings) invalid, or a setting `ci render` / "
               "`ci check` needs is unset or unpinned")

    def __init__(self, problems: Sequence[str], *, hint: str | None = None):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems), hint=hint)


class PatchFormatError(TkedistroError):
    exit_code = 4
    meaning = "patch file invalid (unparseable, missing or bad trailers)"

    def __init__(self, problems: Sequence[str], *, hint: str | None = None):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems), hint=hint)


class FetchError(TkedistroError):
    exit_code = 5
    meaning = "upstream fetch failed"


class CommitMismatchError(TkedistroError):
    exit_code = 6
    meaning = "pinned commit does not match the upstream tag"


class PatchApplyError(TkedistroError):
    exit_code = 7
    meaning = "a patch of the series does not apply"


class WorkInProgressError(TkedistroError):
    exit_code = 8
    meaning = (
        "`_src/<release>` holds uncommitted or extra work (refused; `--force` backs it up first)"
    )


class BackendUnavailableError(TkedistroError):
    exit_code = 9
    meaning = "container backend unavailable (no Docker engine answering)"


class BuilderImageError(TkedistroError):
    exit_code = 10
    meaning = "builder image missing, wrong Go version, or lacking a command the build runs"


class BuildError(TkedistroError):
    exit_code = 11
    meaning = "build failed"


class SmokeCheckError(TkedistroError):
    exit_code = 12
    meaning = (
        "smoke check failed (a built binary crashed or reports another version)"
    )


class LockedError(TkedistroError):
    exit_code = 13
    meaning = (
        "another tkedistro run holds the lock (`_src/<release>`, or `_output/<release>` "
        "during a build or conformance run)"
    )


class CommandError(TkedistroError):
    """An external command exited non-zero; carries argv, exit code and output."""

    exit_code = 14
    meaning = "external command failed"

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


class CommandTimeoutError(CommandError):
    """An external command ran past its time limit and was killed (``run(timeout=)``)."""

    def __init__(self, argv: Sequence[str], timeout: float, stdout: str = "",
                 stderr: str = "", *, message: str | None = None, hint: str | None = None):
        self.timeout = timeout
        super().__init__(argv, -9, stdout, stderr, hint=hint,
                         message=message or f"command killed after {timeout:g} s: "
                                            f"{' '.join(argv)}")


class ConformanceFailedError(TkedistroError):
    exit_code = 15
    meaning = "conformance specs failed"


class ClusterError(TkedistroError):
    exit_code = 16
    meaning = "conformance cluster or suite could not start"


class RebaseStateError(TkedistroError):
    exit_code = 17
    meaning = "release is mid-rebase / rebase state problem"


class DamagedStateError(TkedistroError):
    """A state file of the tool's own that does not hold what the tool wrote (wrong types,
    out-of-range values, an unknown version, a path outside the repo)."""

    exit_code = 17
    meaning = ("damaged state: a state file of tkedistro's own holds what it never writes "
               "(the message says how to recover)")


class NotReproducibleError(TkedistroError):
    exit_code = 18
    meaning = (
        "`--verify-reproducible`: the second build differs (the output is published; "
        "the second build is kept as `_output/<release>.verify`)"
    )


class Interrupted(TkedistroError):
    exit_code = 130
    meaning = "interrupted (Ctrl-C); nothing half-written is left"

    def __init__(self, message: str = "interrupted"):
        super().__init__(message)


class HostNotReadyError(TkedistroError):
    """``tkedistro doctor`` / ``host-setup``: at least one required check of this machine failed."""

    exit_code = 19
    meaning = ("`tkedistro doctor`, `host-setup`: this machine is not ready (a check failed; "
               "its fix is printed)")


class ForecastConflictError(TkedistroError):
    """``tkedistro forecast --fail-on-conflict``: a patch would not apply cleanly on a tag."""

    exit_code = 20
    meaning = "`forecast --fail-on-conflict`: a patch of the series would conflict on a tag"


class ImportExistsError(TkedistroError):
    """``tkedistro patches import``: an unlisted file in the patch folder is in the way."""

    exit_code = 21
    meaning = ("`patches import`: a file in the patch folder that the series does not list "
               "has the name of a patch being imported (move it away or list it)")


class PatchProofError(TkedistroError):
    """``tkedistro cluster prove``: a patch's effect was not seen on the running cluster."""

    exit_code = 22
    meaning = "`cluster prove`: a patch of the series did not show its effect on the cluster"


class ImageError(TkedistroError):
    """Making, exporting or pushing a release's OCI images failed (buildah, skopeo, a base)."""

    exit_code = 23
    meaning = "the release images could not be made, exported or pushed (buildah, skopeo, registry)"


class GuestError(TkedistroError):
    """The cgroup v2 guest could not be built, or did not boot and run the command."""

    exit_code = 24
    meaning = ("the cgroup v2 guest could not be built, or did not boot and run the command "
               "(the message names the step and its log)")


class GuestTimeoutError(GuestError):
    """The command in the guest ran past its time limit: qemu was killed."""

    exit_code = 25
    meaning = "the command in the cgroup v2 guest ran past `--timeout`; the guest was killed"


class VerifyFailedError(TkedistroError):
    """``tkedistro verify`` found at least one problem; each one is listed before this."""

    exit_code = 26
    meaning = ("`tkedistro verify` found a problem: a sum, signature, SBOM, provenance or image "
               "digest that does not match (each one is listed by file or image)")


class SigningError(TkedistroError):
    """A signing key could not be made, read, decrypted or used."""

    exit_code = 27
    meaning = ("a signing or verification key could not be made, read or used (the message names "
               "the key file, flag or environment variable)")


class BisectError(TkedistroError):
    """``tkedistro bisect`` could not name a first bad patch."""

    exit_code = 28
    meaning = ("`tkedistro bisect` could not name a first bad patch: the check fails on upstream "
               "alone, passes with the whole series, or could not run (the message says which)")


# Exit codes that no exception carries: the CLI's own.
_NOT_RAISED = {
    0: "success",
    2: "bad command line (also an `--upstream`/`TKEDISTRO_UPSTREAM` URL, tag or commit of the "
       "wrong shape, a `--from` that is not a folder, an option out of its range, a regex that "
       "does not compile, a file option that is missing or not a regular file, a push target "
       "that names no registry host)",
}


def _subclasses(cls: type[TkedistroError]) -> list[type[TkedistroError]]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def exit_codes() -> dict[int, str]:
    """Each exit code and what it means, from the classes; one code may have several causes."""
    meanings: dict[int, list[str]] = {code: [text] for code, text in _NOT_RAISED.items()}
    classes: list[type[TkedistroError]] = [TkedistroError, *_subclasses(TkedistroError)]
    for cls in classes:
        if "meaning" in vars(cls):
            meanings.setdefault(cls.exit_code, []).append(cls.meaning)
    return {code: "; ".join(meanings[code]) for code in sorted(meanings)}


def exit_code_table() -> str:
    """The README's "Exit codes" table (Markdown)."""
    rows = [f"| {code} | {text} |" for code, text in exit_codes().items()]
    return "\n".join(["| code | meaning |", "|---|---|", *rows]) + "\n"


EXIT_CODES: dict[int, str] = exit_codes()
