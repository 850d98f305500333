"""``StatusProbe``: the ``git status`` of ``_src/<release>``, started as soon as the command
line is read, so git looks at the tree while Python loads the code that reads its answer.

Cheap to import (``os`` only; spawned with ``os.posix_spawnp``, no ``subprocess``):
it runs before anything else is loaded. It only reads (``--no-optional-locks``: git takes no
``index.lock`` and does not rewrite the index), so it may run before the release lock; its
answer is a snapshot of the tree as the command started, used only by the check that changes
nothing (``Repo.head_and_status``). A run that goes on to change the tree closes it first and
looks at the tree again itself, under the lock. Best-effort: there is no probe (None) unless
the tree and its ``.git`` are folders, neither a symlink; the normal path then runs the same
status itself and says what is wrong. git gets the environment ``core.runner`` gives it
(loaded first only when a ``GIT_*`` variable is set).
"""

from __future__ import annotations

import os
from pathlib import Path

# HEAD and every changed or untracked path of a work tree, in one git run
STATUS_V2 = ("status", "--porcelain=v2", "-z", "--branch", "--untracked-files=normal")


class StatusProbe:
    """One early ``git --no-optional-locks status`` of ``path``; ``output`` collects it."""

    def __init__(self, path: Path, pid: int, pipe: int) -> None:
        self.path, self._pid, self._pipe = path, pid, pipe
        self._out: str | None = None
        self._code: int | None = None

    @classmethod
    def start(cls, path: Path) -> StatusProbe | None:
        """The probe of work tree ``path`` (``_src/<release>``, from the workspace's paths);
        None when it, its folder or its ``.git`` is not a folder, or is a symlink."""
        if any(os.path.islink(p) or not os.path.isdir(p)
               for p in (path.parent, path, path / ".git")):
            return None
        return cls._spawn(path)

    @classmethod
    def _spawn(cls, path: Path) -> StatusProbe | None:
        argv = ["git", "-C", str(path), "--no-optional-locks", *STATUS_V2]
        env: dict[str, str] | os._Environ[str] = os.environ
        if any(name.startswith("GIT_") for name in env):  # e.g. GIT_SSL_CAINFO
            from tkedistro.core.runner import clean_env

            env = clean_env()  # what every other git run gets
        read, write = os.pipe()
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, write, 1),
                   (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
        try:
            pid = os.posix_spawnp("git", argv, env, file_actions=actions)
        except OSError:  # no git: the normal path says so
            os.close(read)
            return None
        finally:
            os.close(write)
        return cls(path, pid, read)

    def output(self) -> str | None:
        """What git printed, once it is done; None when it failed (then ask git again)."""
        if self._code is None:
            chunks = []
            while chunk := os.read(self._pipe, 1 << 16):
                chunks.append(chunk)
            self._out = b"".join(chunks).decode("utf-8", errors="surrogateescape")
            self._reap()
        return self._out if self._code == 0 else None

    def close(self) -> None:
        """Stop git if it still runs (it only reads) and reap it; call before any git run
        that may write the tree."""
        if self._code is None:
            import signal

            os.kill(self._pid, signal.SIGKILL)
            self._reap()

    def _reap(self) -> None:
        os.close(self._pipe)
        _, status = os.waitpid(self._pid, 0)
        self._code = os.waitstatus_to_exitcode(status)

