"""Bare upstream mirrors in the user cache: one per upstream URL, shared by all releases.

A mirror fetches only the tags releases ask for (full history behind them, no other refs).
It is guarded by a file lock, so two runs never write it at once; git's own ``*.lock`` files
left by a killed fetch are stale under that lock and are removed on the next run. Each
verified pin gets ``refs/tkedistro/pins/<commit>`` so its objects outlive a moved tag
(``_src`` trees borrow objects from the mirror through ``objects/info/alternates``).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from tkedistro.core import console
from tkedistro.core.errors import CommandError, CommitMismatchError, FetchError, LockedError
from tkedistro.core.runner import run

LOCK_WAIT_SECONDS = 1800.0


@dataclass(frozen=True)
class Pin:
    """What a release asks of the mirror: ``tag`` of ``url`` must be ``commit``."""

    url: str  # the manifest's upstream URL: the identity of the project (the cache key)
    tag: str
    commit: str
    manifest: str  # for messages, e.g. releases/1.20.yaml


@dataclass(frozen=True)
class MirrorResult:
    path: Path
    fetch_url: str
    fetched: bool


def mirror_path(mirrors_dir: Path, url: str) -> Path:
    """``<mirrors>/<readable name>-<hash>.git`` for the project at ``url``."""
    key = url.strip().rstrip("/").removesuffix(".git").rstrip("/")
    tail = re.sub(r"^[a-z+]+://", "", key).replace(":", "/").strip("/")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(tail.split("/")[-2:])).strip("-.")
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return mirrors_dir / f"{name or 'upstream'}-{digest}.git"


def ensure_pin(mirrors_dir: Path, pin: Pin, fetch_url: str | None = None) -> MirrorResult:
    """Make the mirror hold ``pin.tag`` at ``pin.commit``; fetch only when it does not."""
    path = mirror_path(mirrors_dir, pin.url)
    source = fetch_url or pin.url
    with _locked(path.with_name(path.name + ".lock"), path):
        _ensure_bare(path)
        _remove_stale_locks(path)
        fetched = False
        found = _peeled(path, pin.tag)
        if found != pin.commit:
            _fetch_tag(path, source, pin.tag)
            fetched = True
            found = _peeled(path, pin.tag)
        if found != pin.commit:
            raise CommitMismatchError(
                f"tag {pin.tag} of {source} points to commit {found}, "
                f"but {pin.manifest} pins upstream.commit {pin.commit}",
                hint="the tag moved or was tampered with; check the upstream and change the "
                "pin only if you trust the new commit",
            )
        if fetched or not (path / "refs" / "tkedistro" / "pins" / pin.commit).is_file():
            _git(path, "update-ref", f"refs/tkedistro/pins/{pin.commit}", pin.commit)
    return MirrorResult(path=path, fetch_url=source, fetched=fetched)


@contextmanager
def _locked(lock_path: Path, mirror: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        console.info(f"waiting for another tkedistro run to finish with {mirror} ...")
        try:
            lock.acquire(timeout=LOCK_WAIT_SECONDS)
        except Timeout:
            raise LockedError(
                f"another tkedistro run has held the mirror lock {lock_path} "
                f"for {LOCK_WAIT_SECONDS:.0f} s",
                hint="wait for it to finish (the lock is freed when that process exits)",
            ) from None
    try:
        yield
    finally:
        lock.release()


def _ensure_bare(path: Path) -> None:
    """Create the bare repository atomically (a half-made one is never at ``path``)."""
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        return
    tmp = path.with_name(path.name + ".creating")
    shutil.rmtree(tmp, ignore_errors=True)
    _git(tmp.parent, "init", "-q", "--bare", str(tmp))
    _git(tmp, "config", "gc.pruneExpire", "never")
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def _remove_stale_locks(path: Path) -> None:
    """git ``*.lock`` and temporary packs inside the mirror are leftovers of a killed fetch."""
    stale = [*path.glob("*.lock"), *(path / "refs").rglob("*.lock")]
    stale += [*(path / "objects" / "pack").glob("tmp_*"), *(path / "objects").glob("incoming-*")]
    for item in stale:
        console.warn(f"removing {item.name} left in {path.name} by an interrupted fetch")
        if item.is_dir():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)


def _peeled(path: Path, tag: str) -> str | None:
    result = run(
        ["git", "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}"],
        cwd=path,
        check=False,
    )
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def _fetch_tag(path: Path, url: str, tag: str) -> None:
    console.info(f"fetching {tag} from {url}")
    refspec = f"+refs/tags/{tag}:refs/tags/{tag}"
    try:
        run(["git", "fetch", "--no-tags", "--no-write-fetch-head", "-q", url, refspec],
            cwd=path, env={"LC_ALL": "C", "LANGUAGE": "C"})  # the stderr is parsed
    except CommandError as exc:
        missing = "couldn't find remote ref" in exc.stderr
        raise FetchError(
            f"upstream {url} has no tag {tag}" if missing
            else f"cannot fetch tag {tag} from {url} (git exit code {exc.returncode})",
            details=exc.stderr.strip() or None,
            hint="check upstream.url and upstream.tag in the manifest, or fetch from a "
            "reachable mirror with --upstream URL (TKEDISTRO_UPSTREAM)",
        ) from None


def _git(cwd: Path, *args: str) -> str:
    return run(["git", *args], cwd=cwd).stdout.strip()
