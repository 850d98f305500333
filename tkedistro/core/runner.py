"""The one helper that runs external commands (argv lists only, never a shell string)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core import console
from tkedistro.core.errors import CommandError


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The inherited environment without GIT_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    if extra:
        env.update(extra)
    return env


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    capture: bool = True,
    check: bool = True,
    input: str | None = None,
    message: str | None = None,
    hint: str | None = None,
) -> Result:
    """Run ``argv``; raise ``CommandError`` (command, exit code, output) when it fails.

    ``env`` is added to the inherited environment after GIT_* variables are stripped.
    ``check=False`` returns the result of a failing command instead of raising.
    """
    args = [os.fspath(a) for a in argv]
    console.verbose("$ " + " ".join(args) + (f"   (in {cwd})" if cwd else ""))
    try:
        proc = subprocess.run(
            args,
            cwd=cwd,
            env=clean_env(env),
            input=input,
            text=True,
            capture_output=capture,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandError(
            args, 127, "", str(exc), message=f"command not found: {args[0]}", hint=hint
        ) from exc
    result = Result(tuple(args), proc.returncode, proc.stdout or "", proc.stderr or "")
    if check and proc.returncode != 0:
        raise CommandError(
            args, proc.returncode, result.stdout, result.stderr, message=message, hint=hint
        )
    return result
