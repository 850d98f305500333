"""The one helper that runs external commands (argv lists only, never a shell string).

The process environment is cleaned once at start (``clean_process_env``, called by the CLI
entry point): the ``GIT_*`` variables that would point git at another repository, index or
object store, or change the commits made, are removed; those a user needs to reach a mirror
(ssh, TLS, proxies, ``GIT_CONFIG_COUNT``/``KEY_n``/``VALUE_n``, ...) are kept. GitPython and
``subprocess`` then see the same environment. A child started with ``child_setup`` is killed
when this process dies (``kill -9`` included) instead of outliving the locks.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tkedistro.core import console
from tkedistro.core.errors import CommandError, CommandTimeoutError

# GIT_* variables a user sets to reach a mirror; every other GIT_* variable is dropped.
GIT_ENV_KEPT = frozenset({
    "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT", "GIT_ASKPASS", "GIT_TERMINAL_PROMPT",
    "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "GIT_SSL_CERT", "GIT_SSL_KEY", "GIT_SSL_NO_VERIFY",
    "GIT_SSL_VERSION", "GIT_SSL_CIPHER_LIST", "GIT_HTTP_PROXY_AUTHMETHOD",
    "GIT_HTTP_USER_AGENT", "GIT_HTTP_LOW_SPEED_LIMIT", "GIT_HTTP_LOW_SPEED_TIME",
    "GIT_ALLOW_PROTOCOL", "GIT_PROTOCOL_FROM_USER", "GIT_CONFIG_COUNT", "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_PROXY_COMMAND",
    "GIT_TRACE", "GIT_TRACE_PACKET", "GIT_TRACE_CURL", "GIT_CURL_VERBOSE",
})
_GIT_ENV_KEPT_PREFIXES = ("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def git_env_kept(name: str) -> bool:
    """Whether an inherited variable may reach git (all non-``GIT_*`` ones may)."""
    return (not name.startswith("GIT_") or name in GIT_ENV_KEPT
            or name.startswith(_GIT_ENV_KEPT_PREFIXES))


def clean_process_env() -> list[str]:
    """Drop the redirecting ``GIT_*`` variables from ``os.environ``; returns their names."""
    dropped = sorted(k for k in os.environ if not git_env_kept(k))
    for name in dropped:
        del os.environ[name]
    return dropped


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The inherited environment without the dropped ``GIT_*`` variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if git_env_kept(k)}
    if extra:
        env.update(extra)
    return env


def child_setup(parent: int) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child die with ``parent`` (Linux ``PR_SET_PDEATHSIG``).

    A parent that died before the child asked is caught by comparing ``getppid``.
    """
    prctl = _prctl()  # looked up here: a forked child must not load libraries

    def setup() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:
                os._exit(137)

    return setup


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only when a child must die with us: ~2 ms of start-up otherwise

    prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    return prctl


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
    die_with_us: bool = False,
    timeout: float | None = None,
    output: IO[bytes] | None = None,
) -> Result:
    """Run ``argv``; raise ``CommandError`` (command, exit code, output) when it fails.

    ``env`` is added to the inherited environment after the redirecting GIT_* variables are
    stripped. ``check=False`` returns the result of a failing command instead of raising.
    ``die_with_us`` kills the command when this process dies (costs a fork). ``timeout``
    (seconds) kills it when it runs longer: ``CommandTimeoutError``, whatever ``check`` says.
    ``output``: a file (opened by ``files.open_for_writing``) that gets stdout and stderr as
    they come, in order (the result then holds no output).
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
            capture_output=capture and output is None,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            check=False,
            preexec_fn=child_setup(os.getpid()) if die_with_us else None,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandTimeoutError(args, timeout or 0, _text(exc.stdout), _text(exc.stderr),
                                  message=message, hint=hint) from exc
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


def _text(output: str | bytes | None) -> str:
    """What a killed command had written (``TimeoutExpired`` may hold bytes or nothing)."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""
