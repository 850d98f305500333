"""The cluster's kubeconfig on the host: its server at the published port, and its entries in
the user's own kubeconfig.

``cluster up`` merges a cluster, a user and a context all named ``tkedistro-<release>`` into
the file kubectl writes new entries to (the first existing file of ``$KUBECONFIG``, else its
last path; without it ``~/.kube/config``) and
makes that context the current one; ``cluster down`` removes exactly those three entries (the
current context is unset only when it is ours). Every other entry, and the file's own keys,
stay as they were. A file that is not a kubeconfig is never overwritten.

Under ``sudo`` the file belongs to the user who ran it (``SUDO_UID``/``SUDO_GID``; ``~`` is
that user's home in the passwd database): a file or ``~/.kube`` made here is theirs, and the
file is written 0600 through a temporary file given to them before a byte is written. Writers
are kept apart as kubectl and kind do it: ``<file>.lock``, created exclusively and removed.
"""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tkedistro.core import files
from tkedistro.core.errors import ClusterError, LockedError
from tkedistro.model import kubeconfig as document

PREFIX = "tkedistro-"
LOCK_WAIT_S = 10.0
MAX_BYTES = 16 << 20


def context_name(release: str) -> str:
    """The context, cluster and user name of the release's cluster: ``tkedistro-1.20``."""
    return f"{PREFIX}{release}"


@dataclass(frozen=True)
class InvokingUser:
    """The user who ran ``sudo tkedistro ...``: owner of what is written for them."""

    uid: int
    gid: int
    home: Path

    @property
    def owner(self) -> tuple[int, int]:
        return self.uid, self.gid


def invoking_user(environ: Mapping[str, str] | None = None) -> InvokingUser | None:
    """The ``sudo`` caller when running as root with a non-root ``SUDO_UID``, else None."""
    env = os.environ if environ is None else environ
    uid_text = env.get("SUDO_UID", "")
    if os.geteuid() != 0 or not uid_text.isdigit() or int(uid_text) == 0:
        return None
    try:
        entry = pwd.getpwuid(int(uid_text))
    except KeyError:
        raise ClusterError(f"SUDO_UID={uid_text}: no such user in the passwd database",
                           hint="run without sudo's environment, or pass "
                                "--no-kubeconfig-merge") from None
    gid_text = env.get("SUDO_GID", "")
    gid = int(gid_text) if gid_text.isdigit() else entry.pw_gid
    return InvokingUser(entry.pw_uid, gid, Path(entry.pw_dir).resolve())


def user_kubeconfig(user: InvokingUser | None,
                    environ: Mapping[str, str] | None = None) -> Path:
    """The file kubectl writes a new entry to: with ``$KUBECONFIG`` the first of its files
    that exists, else its last path; without it ``~/.kube/config`` (the ``sudo`` caller's
    home, else ``$HOME``)."""
    env = os.environ if environ is None else environ
    paths = [Path(os.path.abspath(p)) for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if paths:
        return next((p for p in paths if p.is_file()), paths[-1])
    home = user.home if user is not None else Path.home().resolve()
    return home / ".kube" / "config"


def belongs_to(path: Path, user: InvokingUser | None) -> bool:
    """Whether ``path`` (when it exists) is the file of the user it would be written for:
    the ``sudo`` caller, else whoever runs this. A path read back from ``cluster.json`` is
    only touched when it is, so a changed state file cannot make root rewrite (and give
    away) another user's kubeconfig."""
    try:
        uid = os.lstat(path).st_uid
    except FileNotFoundError:
        return True
    return uid == (user.uid if user is not None else os.geteuid())


def published(admin: str, port: int) -> str:
    """kubeadm's admin kubeconfig with every cluster's server at ``https://127.0.0.1:port``
    (the API server's published port; its certificate names 127.0.0.1)."""
    return document.with_server(admin, f"https://127.0.0.1:{port}",
                                "the admin kubeconfig of the control-plane node")


def check(path: Path) -> None:
    """Raise (naming ``path``) unless it is missing, empty or a kubeconfig: before ``up``
    starts anything it cannot finish."""
    _load(path)


def merge(path: Path, release: str, kubeconfig: str, user: InvokingUser | None) -> None:
    """Add (or replace) the cluster, user and context ``tkedistro-<release>`` of
    ``kubeconfig`` in ``path`` and make that context the current one."""
    ours = document.parse(kubeconfig, "the cluster's kubeconfig")
    _make_parents(path, user)
    with _locked(path):
        doc = _load(path)
        document.add_context(doc, context_name(release), ours)
        _write(path, doc, user)


def unmerge(path: Path, release: str, user: InvokingUser | None) -> bool:
    """Remove the three ``tkedistro-<release>`` entries from ``path`` (the current context
    only when it is ours); False when there was nothing of ours."""
    if not path.exists():
        return False
    with _locked(path):
        doc = _load(path)
        changed = document.remove_context(doc, context_name(release))
        if changed:
            _write(path, doc, user)
    return changed


def _load(path: Path) -> Any:
    """``path`` as a kubeconfig (missing or empty: an empty one); the error names it."""
    try:
        text = files.read_text(path, max_bytes=MAX_BYTES)
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise _invalid(path, f"cannot read it ({exc})") from None
    try:
        return document.parse(text, str(path))
    except ClusterError as exc:
        raise _invalid(path, exc.message.removeprefix(f"{path}: ")) from None


def _invalid(path: Path, why: str) -> ClusterError:
    return ClusterError(f"{path}: {why}; it was left as it is",
                        hint=f"fix or move {path}, set KUBECONFIG to another file, or pass "
                             "--no-kubeconfig-merge to `tkedistro cluster up`")


def _write(path: Path, doc: Any, user: InvokingUser | None) -> None:
    files.write_text(path, document.dump(doc), mode=0o600,
                     owner=user.owner if user is not None else None)


def _make_parents(path: Path, user: InvokingUser | None) -> None:
    """Make the missing folders of ``path`` (0700; the ``sudo`` caller's when there is one)."""
    missing = [p for p in reversed(path.parents) if not p.exists()]
    files.ensure_dir(path.parent, mode=0o700)
    if user is not None:
        for folder in missing:
            files.set_owner(folder, user.owner)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold ``<path>.lock`` as kubectl does (created exclusively, removed afterwards)."""
    lock = path.with_name(path.name + ".lock")
    deadline = time.monotonic() + LOCK_WAIT_S
    while not files.create_exclusive(lock, mode=0o600):
        if time.monotonic() >= deadline:
            raise LockedError(f"{lock} exists: another kubectl or tkedistro is writing {path}",
                              hint=f"wait for it to finish; if none is running, remove {lock}")
        time.sleep(0.1)
    try:
        yield
    finally:
        files.remove(lock)
