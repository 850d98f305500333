"""Bare upstream mirrors in the user cache: one per upstream URL, shared by all releases.

A mirror fetches only the tags releases ask for (full history behind them, no other refs).
It is guarded by a file lock, so two runs never write it at once; git's own ``*.lock`` files
left by a killed fetch are stale under that lock and are removed on the next run. Each
verified pin gets ``refs/tkedistro/pins/<commit>`` so its objects outlive a moved tag
(``_src`` trees borrow objects from the mirror through ``objects/info/alternates``).
That every object of a pin is there is checked once per state of the mirror's objects (its
packs and loose objects, ``tkedistro-verified``): listing them takes a few tenths of a second
on the Kubernetes tree, which a re-run with the same objects need not pay again.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core import console, files
from tkedistro.core.errors import CommitMismatchError, FetchError
from tkedistro.core.locks import exclusive_lock
from tkedistro.git.packs import pack_damage
from tkedistro.git.repo import Repo
from tkedistro.model.url import redact_url, split_credentials

LOCK_WAIT_SECONDS = 1800.0
VERIFIED = "tkedistro-verified"  # "<commit> <objects key>" lines: pins found complete


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


def mirror_path(mirrors_dir: Path, url: str) -> Path:
    """``<mirrors>/<readable name>-<hash>.git`` for the project at ``url``."""
    key = url.strip().rstrip("/").removesuffix(".git").rstrip("/")
    tail = re.sub(r"^[a-z+]+://", "", key).replace(":", "/").strip("/")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(tail.split("/")[-2:])).strip("-.")
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return mirrors_dir / f"{name or 'upstream'}-{digest}.git"


def ensure_pin(mirrors_dir: Path, pin: Pin, fetch_url: str | None = None) -> MirrorResult:
    """Make the mirror hold ``pin.tag`` at ``pin.commit``; fetch only when it does not.

    A mirror whose packs are damaged (deleted or truncated) is thrown away and fetched anew.
    """
    path = mirror_path(mirrors_dir, pin.url)
    source = fetch_url or pin.url
    with _locked(path.with_name(path.name + ".lock"), path):
        files.check_path(path)  # git would follow a symlinked mirror
        _ensure_bare(path)
        _remove_stale_locks(path)
        damage, found = _damage(path, pin)
        if damage:
            console.warn(f"the cache mirror {path} is damaged ({'; '.join(damage)}); "
                         "deleting it and fetching again")
            files.remove(path)
            _ensure_bare(path)
            found = None
        repo = Repo(path)
        try:
            if found != pin.commit:
                fetch_tag(repo, source, pin.tag)  # git checks the fetched history is whole
                found = _peeled(repo, pin.tag)
                if found == pin.commit:
                    _note_verified(path, pin.commit)
            if found != pin.commit:
                raise _mismatch(repo, pin, source, found)
            if not (path / "refs" / "tkedistro" / "pins" / pin.commit).is_file():
                repo.update_ref(f"refs/tkedistro/pins/{pin.commit}", pin.commit)
        finally:
            repo.close()
    return MirrorResult(path=path, fetch_url=redact_url(source))


def share_tags(mirror: Path, tree: Repo, *, unless: str | None = None) -> list[str]:
    """Give ``tree`` (which borrows the mirror's objects) the upstream tags of ``mirror`` it
    lacks, so ``git -C _src/<release> diff v1.20.3`` works: refs only, no object is copied.
    ``unless``: a tag whose presence in ``tree`` says it had them all already (the pin's: a
    re-run then costs a stat, no git run). The tags added."""
    if unless is not None and tree.has_tag(check_tag(unless)):
        return []
    source = Repo(mirror)
    try:
        return tree.add_tags(source.tags())
    finally:
        source.close()


def _damage(path: Path, pin: Pin) -> tuple[list[str], str | None]:
    """What is missing in the mirror that this run would read (packs, the tag, the tree),
    and the commit the tag names there (None: no such tag)."""
    if damage := pack_damage(path / "objects"):
        return damage, None
    repo = Repo(path)
    try:
        tag = f"refs/tags/{check_tag(pin.tag)}"
        found = repo.rev(tag)
        if found is None and repo.ref_target(tag):
            return [f"{tag} names a missing object"], None
        if found == pin.commit and not _verified(path, pin.commit):
            if missing := repo.missing_objects(pin.commit):
                return [missing], found
            _note_verified(path, pin.commit)
        return [], found
    finally:
        repo.close()


def _objects_key(path: Path) -> str:
    """The state of the mirror's objects: each pack (name, size) and the loose ones' count."""
    objects = path / "objects"
    packs = sorted(f"{p.name}:{p.stat().st_size}" for p in (objects / "pack").glob("pack-*"))
    loose = sum(1 for d in objects.iterdir() if len(d.name) == 2 for _ in d.iterdir())
    return hashlib.sha256("\n".join([*packs, f"loose:{loose}"]).encode()).hexdigest()


def _verified(path: Path, commit: str) -> bool:
    """Every object of ``commit`` was found with the objects as they are now."""
    try:
        lines = (path / VERIFIED).read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        return False
    return f"{commit} {_objects_key(path)}" in lines


def _note_verified(path: Path, commit: str) -> None:
    try:
        lines = (path / VERIFIED).read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        lines = []
    kept = [line for line in lines if not line.startswith(f"{commit} ")]
    text = "".join(f"{line}\n" for line in [*kept, f"{commit} {_objects_key(path)}"])
    files.write_text(path / VERIFIED, text)


def _mismatch(repo: Repo, pin: Pin, source: str, found: str | None) -> CommitMismatchError:
    """The pin does not match the tag; say so exactly when it names the tag object itself."""
    tag_object = repo.rev_raw(f"refs/tags/{pin.tag}")
    if tag_object == pin.commit and repo.object_type(pin.commit) == "tag":
        return CommitMismatchError(
            f"{pin.manifest} pins upstream.commit {pin.commit}, which is the annotated tag "
            f"object of {pin.tag}, not a commit; the commit it points to is {found}",
            hint=f"set upstream.commit: {found} in {pin.manifest}",
        )
    return CommitMismatchError(
        f"tag {pin.tag} of {redact_url(source)} points to commit {found}, "
        f"but {pin.manifest} pins upstream.commit {pin.commit}",
        hint="the tag moved or was tampered with; check the upstream and change the "
        "pin only if you trust the new commit",
    )


def _locked(lock_path: Path, mirror: Path) -> AbstractContextManager[None]:
    """The mirror's lock: a second run waits for the first (up to ``LOCK_WAIT_SECONDS``)."""
    return exclusive_lock(
        lock_path,
        f"another tkedistro run has held the mirror lock {lock_path} for "
        f"{LOCK_WAIT_SECONDS:.0f} s",
        wait=LOCK_WAIT_SECONDS,
        waiting=f"waiting for another tkedistro run to finish with {mirror} ...",
    )


def _ensure_bare(path: Path) -> None:
    """Create the bare repository atomically (a half-made one is never at ``path``)."""
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        return
    tmp = path.with_name(path.name + ".creating")
    files.remove(tmp)
    files.ensure_dir(tmp.parent)
    try:
        # fetched objects always stay in packs, whose damage `pack_damage` finds without git
        Repo.init_bare(tmp, {"gc": {"pruneExpire": "never"}, "fetch": {"unpackLimit": "1"}})
        files.remove(path)
        files.rename(tmp, path)
    except BaseException:  # Ctrl-C included: nothing half-made is left
        files.remove(tmp)
        raise


def _remove_stale_locks(path: Path) -> None:
    """git ``*.lock`` and temporary packs inside the mirror are leftovers of a killed fetch."""
    stale = [*path.glob("*.lock"), *(path / "refs").rglob("*.lock")]
    stale += [*(path / "objects" / "pack").glob("tmp_*"), *(path / "objects").glob("incoming-*")]
    for item in stale:
        console.warn(f"removing {item.name} left in {path.name} by an interrupted fetch")
        files.remove(item)


def _peeled(repo: Repo, tag: str) -> str | None:
    return repo.rev(f"refs/tags/{check_tag(tag)}")


_BAD_REF = re.compile(r"[\x00-\x20~^:?*\[\\]|\.\.|@\{|^-|^/|/$|\.lock$|//")


def check_tag(tag: str) -> str:
    """``tag`` if it can only name a tag (no option, no refspec syntax); refuse it otherwise."""
    if not tag or _BAD_REF.search(tag):
        raise FetchError(f"refusing tag name {tag!r}: not a valid git tag name",
                         hint="give the tag as upstream names it, e.g. v1.20.2")
    return tag


def check_url(url: str) -> str:
    """``url`` if git cannot read it as an option; refuse it otherwise."""
    if url.startswith("-"):
        raise FetchError(f"refusing upstream URL {redact_url(url)!r}: it starts with '-', "
                         "so git would read it as an option",
                         hint="give a repository URL (https://, ssh://, git@host:path or a path)")
    return url


# A credential helper that answers git with what the environment holds: the user name and
# password of a command-line URL reach git this way, never in argv, a config file or a message.
# ``credential.helper=`` first drops the user's helpers, so none of them stores the secret.
_HELPER = ('!f() { test "$1" = get || exit 0; '
           'test -z "$TKEDISTRO_GIT_USERNAME" || '
           'printf "username=%s\\n" "$TKEDISTRO_GIT_USERNAME"; '
           'test -z "$TKEDISTRO_GIT_PASSWORD" || '
           'printf "password=%s\\n" "$TKEDISTRO_GIT_PASSWORD"; }; f')


@dataclass(frozen=True)
class Remote:
    """How git is given a URL: ``url`` without user-info, and the ``config`` and ``env`` of
    the credential helper that hands git the user-info (empty when the URL held none)."""

    url: str
    config: tuple[str, ...] = ()
    env: dict[str, str] | None = None


def remote(url: str) -> Remote:
    """How to give git ``url``: user-info out of the URL, into the helper's environment."""
    creds = split_credentials(check_url(url))
    if not creds.given:
        return Remote(creds.url)
    return Remote(creds.url, ("-c", "credential.helper=", "-c", f"credential.helper={_HELPER}"),
                  {"TKEDISTRO_GIT_USERNAME": creds.username,
                   "TKEDISTRO_GIT_PASSWORD": creds.password})


def fetch_tag(repo: Repo, url: str, tag: str) -> None:
    """Fetch ``tag`` (full history behind it, nothing else) from ``url`` into ``repo``."""
    target = remote(url)
    console.info(f"fetching {tag} from {target.url}")
    refspec = f"+refs/tags/{check_tag(tag)}:refs/tags/{tag}"
    res = repo.run(*target.config, "fetch", "--no-tags", "--no-write-fetch-head", "-q", "--",
                   target.url, refspec, check=False, env=target.env)
    if res.returncode != 0:
        missing = "couldn't find remote ref" in res.stderr
        raise FetchError(
            f"upstream {target.url} has no tag {tag}" if missing
            else f"cannot fetch tag {tag} from {target.url} (git exit code {res.returncode})",
            details=res.stderr.strip() or None,
            hint="check upstream.url and upstream.tag in the manifest, or fetch from a "
            "reachable mirror with --upstream URL (TKEDISTRO_UPSTREAM)",
        )


def remote_tag_commit(url: str, tag: str) -> str:
    """The commit ``tag`` points to at ``url`` (``git ls-remote``, nothing fetched)."""
    ref = f"refs/tags/{check_tag(tag)}"
    target = remote(url)
    res = Repo.ls_remote(target.url, [ref, f"{ref}^{{}}"], config=target.config, env=target.env)
    refs: dict[str, str] = {}
    for line in res.stdout.splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    found = refs.get(f"{ref}^{{}}") or refs.get(ref)
    if res.returncode != 0 or not found:
        raise FetchError(
            f"upstream {target.url} has no tag {tag}" if res.returncode == 0
            else f"cannot list tags of {target.url} (git exit code {res.returncode})",
            details=res.stderr.strip() or None,
            hint="check the tag name, or fetch from a reachable mirror with --upstream URL",
        )
    return found
