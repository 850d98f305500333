"""How the git layer runs one git command: through GitPython's ``Git.execute``.

The environment git gets is ``os.environ`` (GitPython copies it) cleaned of the redirecting
``GIT_*`` variables, plus ``env``; GitPython sets ``LC_ALL=C``, so every parsed message is
English. Commands that write a repository die with this process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tkedistro.core.errors import CommandError
from tkedistro.core.runner import Result, child_setup, clean_process_env


def execute(git: Any, argv: list[str], *, env: dict[str, str] | None = None,
            input: str | None = None) -> Result:
    """Run ``argv`` with GitPython's ``git`` (a ``git.Git``); never raises for its status
    (a missing ``git`` is a ``CommandError``)."""
    clean_process_env()  # cheap; the CLI did it at start, this covers library callers
    with _stdin(input) as stdin, git_found():
        status, out, err = git.execute(
            argv, istream=stdin, with_extended_output=True, with_exceptions=False,
            stdout_as_string=False, strip_newline_in_stdout=False, env=env,
            **_die_with_us(argv))
    return Result(tuple(argv), status, _text(out), _text(err))


@contextmanager
def git_found() -> Iterator[None]:
    """GitPython's "git is not there" (``GitCommandNotFound``) as the runner says it."""
    not_found = gitpython_module().exc.GitCommandNotFound
    try:
        yield
    except not_found as exc:
        raise _not_found(exc) from exc


def _not_found(exc: BaseException) -> CommandError:
    return CommandError(["git"], 127, "", str(exc), message="command not found: git")


# Commands that write a repository (index, refs, work tree, objects). They die with this
# process, so none is still writing when the next run takes the lock. Only these: the
# ``preexec_fn`` that arranges it costs a fork instead of a vfork (about 5 ms a command).
_WRITES = frozenset({"am", "apply", "checkout", "reset", "commit", "commit-tree", "read-tree",
                     "add", "clean", "fetch", "update-ref", "symbolic-ref", "rebase",
                     "write-tree"})


def _die_with_us(argv: list[str]) -> dict[str, Any]:
    """``preexec_fn`` for a writing command: ``git [-c k=v ...] <subcommand> ...``."""
    i = 1
    while i < len(argv) and argv[i] == "-c":
        i += 2
    writes = i < len(argv) and argv[i] in _WRITES and "--check" not in argv
    return {"preexec_fn": child_setup(os.getpid())} if writes else {}


def gitpython_module() -> Any:
    """GitPython, imported on first use (start-up the unchanged `source` re-run does
    without), with os.environ clean: GitPython hands it to git (the CLI cleaned it at
    start; this covers callers other than the CLI)."""
    clean_process_env()
    # without this, importing GitPython with no git on PATH raises "Bad git executable";
    # quiet, the first git run raises GitCommandNotFound instead, which ``execute`` maps
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    try:
        import git as gitpython
    except ImportError as exc:
        raise _not_found(exc) from exc
    return gitpython


def _text(data: Any) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="surrogateescape")
    return str(data or "")


@contextmanager
def _stdin(text: str | None) -> Iterator[Any]:
    """GitPython takes stdin as a file: ``text`` in an unnamed temporary file."""
    if text is None:
        yield None
        return
    import tempfile

    with tempfile.TemporaryFile() as handle:
        handle.write(text.encode("utf-8", errors="surrogateescape"))
        handle.seek(0)
        yield handle

