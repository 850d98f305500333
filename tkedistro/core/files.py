"""The one safe file layer: every file and folder the tool writes, makes, moves or deletes, and
every state file it reads back, goes through here.

The rules, so the tool's own paths cannot be turned against the host:

- A path is walked from ``/`` one folder at a time, each opened with ``O_NOFOLLOW``: a symlink
  anywhere in it is refused (``UnsafePathError``, exit 3, naming the link). The roots the tool
  starts from (the distro repo, the cache) are resolved once when the ``Workspace`` is made,
  so a symlink the user chose above them is not in the way.
- A file is written into a temporary file created exclusively (``O_EXCL|O_NOFOLLOW``, a random
  name) in the target's folder, with its final mode from creation, synced, then renamed over
  the target: a reader, or a crash, sees the old bytes or the new, never half.
- A deletion never crosses a symlink: a tree is removed through folder descriptors
  (``shutil.rmtree`` with ``dir_fd``), and a symlink at the path itself is refused.

``watch()`` lets a test see every path the layer touches (and interrupt after the Nth).
Also here: the last lines of a log for a message, and file digests.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from tkedistro.core.errors import UnsafePathError

_DIR_FLAGS = os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_PATH", os.O_RDONLY)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_RENAME_EXCHANGE = 2  # renameat2's flag (linux/fs.h)
Watcher = Callable[[str, Path], None]
_watchers: list[Watcher] = []


@contextmanager
def watch(watcher: Watcher) -> Iterator[None]:
    """Call ``watcher(operation, path)`` after each thing the layer does in the block
    (``write``, ``mkdir``, ``remove``, ``rename``, ``link``, ``open``, ``read``). A watcher
    may raise (a test interrupting after the Nth write)."""
    _watchers.append(watcher)
    try:
        yield
    finally:
        _watchers.remove(watcher)


def _seen(operation: str, path: Path) -> None:
    for watcher in list(_watchers):
        watcher(operation, path)


def symlink_below(root: Path, name: str) -> Path | None:
    """The first symlink on the way from folder ``root`` to the relative ``name`` (None when
    there is none): why a path that names a place inside the repo resolves outside it."""
    where = root
    for part in Path(name).parts:
        where = where / part
        if is_symlink(where):
            return where
    return None


def refuse_symlink(link: Path) -> UnsafePathError:
    """The error for a symlink found where the tool keeps its own files (exit 3)."""
    return _refuse(link)


def _refuse(link: Path) -> UnsafePathError:
    return UnsafePathError(
        f"{link} is a symlink; tkedistro does not follow symlinks in the paths it writes, "
        "reads back or deletes (its own state, output, results, cluster and cache folders)",
        hint=f"remove the symlink ({link}) and re-run; to keep these folders elsewhere, "
             "point --root or TKEDISTRO_CACHE at the real folder",
    )


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _open_child(dir_fd: int, name: str, where: Path, create: bool, mode: int) -> int:
    """Open folder ``name`` in ``dir_fd`` without following a symlink (made when ``create``)."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as exc:
        if _is_link(name, dir_fd):
            raise _refuse(where) from None
        if exc.errno == errno.ENOTDIR:
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(where)) from None
        raise
    try:
        os.mkdir(name, mode, dir_fd=dir_fd)
        _seen("mkdir", where)
    except FileExistsError:
        pass  # made by a run beside this one
    return _open_child(dir_fd, name, where, False, mode)


@contextmanager
def opened_dir(path: Path, *, create: bool = False, mode: int = 0o755) -> Iterator[int]:
    """A descriptor of folder ``path``, reached without following any symlink (each missing
    folder made when ``create``). ``FileNotFoundError`` when it is missing, else."""
    absolute = Path(os.path.abspath(path))
    fd = os.open("/", _DIR_FLAGS)
    try:
        where = Path("/")
        for name in absolute.parts[1:]:
            where = where / name
            child = _open_child(fd, name, where, create, mode)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def ensure_dir(path: Path, *, mode: int = 0o755) -> Path:
    """Make folder ``path`` and its missing parents, refusing a symlink anywhere in it."""
    with opened_dir(path, create=True, mode=mode):
        return path


def check_path(path: Path) -> Path:
    """``path`` when no existing part of it is a symlink (for a folder handed to git or a
    container, which would follow one), else ``UnsafePathError``."""
    absolute = Path(os.path.abspath(path))
    for part in (*reversed(absolute.parents), absolute):
        try:
            if stat.S_ISLNK(os.lstat(part).st_mode):
                raise _refuse(part)
        except FileNotFoundError:
            break
    return path


def is_symlink(path: Path) -> bool:
    """``path`` itself is a symlink (a missing path is not)."""
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def _temp_name(path: Path) -> str:
    import secrets  # here: not loaded by commands that write nothing

    return f".{path.name[:200]}.{secrets.token_hex(6)}.tmp"


def _create_temp(dir_fd: int, path: Path, mode: int) -> tuple[int, str]:
    """An exclusively created temporary file beside ``path``, with ``mode`` from creation."""
    while True:
        name = _temp_name(path)
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         mode, dir_fd=dir_fd)
        except FileExistsError:
            continue
        os.fchmod(fd, mode)  # exactly ``mode``, whatever the umask
        return fd, name


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644,
                 owner: tuple[int, int] | None = None) -> None:
    """Write ``data`` to ``path`` through a synced, exclusively created temporary file renamed
    over it (never following a symlink; the folders are made when missing). ``owner``
    ``(uid, gid)``: the temporary file is given to them before a byte is written (root
    writing a file for the user who ran ``sudo``)."""
    with _replacing(path, mode, owner) as handle:
        handle.write(data)


@contextmanager
def _replacing(path: Path, mode: int,
               owner: tuple[int, int] | None = None) -> Iterator[IO[bytes]]:
    """A handle on a new temporary file beside ``path`` (``mode`` from creation, given to
    ``owner`` first); synced and renamed over ``path`` when the block ends, removed when it
    fails."""
    with opened_dir(path.parent, create=True) as dir_fd:
        fd, temp = _create_temp(dir_fd, path, mode)
        try:
            with os.fdopen(fd, "wb") as handle:
                if owner is not None:
                    os.fchown(handle.fileno(), *owner)
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            _unlink_quietly(temp, dir_fd)
            raise
        _swap_in(dir_fd, temp, path.name)
    _seen("write", path)


def _swap_in(dir_fd: int, temp: str, name: str) -> None:
    """Rename the temporary ``temp`` over ``name`` in ``dir_fd`` (removed when that fails)."""
    try:
        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        _unlink_quietly(temp, dir_fd)
        raise


def write_text(path: Path, text: str, *, mode: int = 0o644,
               owner: tuple[int, int] | None = None) -> None:
    """``write_atomic`` of ``text`` as UTF-8."""
    write_atomic(path, text.encode("utf-8"), mode=mode, owner=owner)


def write_json(path: Path, data: object, *, mode: int = 0o644) -> None:
    """``write_atomic`` of ``data`` as indented JSON with a final newline."""
    write_text(path, json.dumps(data, indent=2) + "\n", mode=mode)


def create_exclusive(path: Path, data: bytes = b"", *, mode: int = 0o644) -> bool:
    """Create ``path`` holding ``data`` unless it exists (False then); never through a
    symlink (a symlink at ``path`` counts as existing and is refused)."""
    with opened_dir(path.parent, create=True) as dir_fd:
        try:
            fd = os.open(path.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        except FileExistsError:
            if _is_link(path.name, dir_fd):
                raise _refuse(path) from None
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    _seen("write", path)
    return True


@contextmanager
def open_for_writing(path: Path, *, mode: int = 0o644, append: bool = False) -> Iterator[IO[bytes]]:
    """A log file opened for writing (truncated, or appended to) without following a symlink;
    for output written as it comes (a build log), where an atomic rename does not fit."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_APPEND if append else os.O_TRUNC
    with opened_dir(path.parent, create=True) as dir_fd:
        try:
            fd = os.open(path.name, flags, mode, dir_fd=dir_fd)
        except OSError:
            if _is_link(path.name, dir_fd):
                raise _refuse(path) from None
            raise
    with os.fdopen(fd, "ab" if append else "wb") as handle:
        yield handle
    _seen("write", path)  # once written, as for every other operation


def open_lock_file(path: Path) -> int:
    """A descriptor of lock file ``path`` (made when missing, never through a symlink)."""
    with opened_dir(path.parent, create=True) as dir_fd:
        try:
            fd = os.open(path.name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o644, dir_fd=dir_fd)
        except OSError:
            if _is_link(path.name, dir_fd):
                raise _refuse(path) from None
            raise
    _seen("open", path)
    return fd


def note_in_lock_file(fd: int, text: str) -> None:
    """Make ``text`` the whole content of the lock file open at ``fd`` (its holder, for the
    message another run gives; the lock itself is the ``flock``, not the content)."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def read_lock_note(fd: int, limit: int = 64) -> str:
    """What ``note_in_lock_file`` left in the lock file open at ``fd`` (at most ``limit``
    bytes; "" when unreadable)."""
    try:
        return os.pread(fd, limit, 0).decode("utf-8", "replace")
    except OSError:
        return ""


def read_bytes(path: Path, *, max_bytes: int | None = None) -> bytes:
    """The bytes of the regular file ``path``, reached without following a symlink
    (``FileNotFoundError`` when missing; ``UnsafePathError`` for a symlink)."""
    with opened_dir(path.parent) as dir_fd:
        fd = _open_regular(dir_fd, path)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"larger than {max_bytes} bytes", str(path))
    _seen("read", path)
    return data


def _open_regular(dir_fd: int, path: Path) -> int:
    """A read descriptor of the regular file ``path`` in ``dir_fd``, never through a symlink
    (``UnsafePathError``); a folder, FIFO or device is refused too."""
    try:
        fd = os.open(path.name, _READ_FLAGS | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        if _is_link(path.name, dir_fd):
            raise _refuse(path) from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    os.set_blocking(fd, True)
    return fd


def read_text(path: Path, *, max_bytes: int | None = None) -> str:
    """``read_bytes`` decoded as UTF-8."""
    return read_bytes(path, max_bytes=max_bytes).decode("utf-8")


def copy_file(source: Path, target: Path, *, mode: int = 0o644) -> None:
    """Copy the regular file ``source`` to ``target`` (neither followed through a symlink)."""
    write_atomic(target, read_bytes(source), mode=mode)


def link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` the regular file ``source``: a hard link, or where the file system
    refuses one a streamed copy with the same mode, put in place by one rename (as ``rename``:
    a symlink at ``target`` is refused); neither reached through a symlink."""
    with opened_dir(source.parent) as src_fd, opened_dir(target.parent, create=True) as dst_fd:
        if _is_link(target.name, dst_fd):
            raise _refuse(target)
        with os.fdopen(_open_regular(src_fd, source), "rb") as reader:
            info = os.fstat(reader.fileno())
            temp = _temp_name(target)
            try:
                os.link(source.name, temp, src_dir_fd=src_fd, dst_dir_fd=dst_fd,
                        follow_symlinks=False)
            except OSError:
                temp = _copy_into(reader, dst_fd, target, stat.S_IMODE(info.st_mode))
            if _is_link(temp, dst_fd):  # swapped for a symlink since it was opened
                _unlink_quietly(temp, dst_fd)
                raise _refuse(source)
        _swap_in(dst_fd, temp, target.name)
    _seen("write", target)


def _copy_into(reader: IO[bytes], dir_fd: int, target: Path, mode: int) -> str:
    """A synced temporary copy of ``reader`` beside ``target``; its name."""
    fd, temp = _create_temp(dir_fd, target, mode)
    try:
        with os.fdopen(fd, "wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
            writer.flush()
            os.fsync(writer.fileno())
    except BaseException:
        _unlink_quietly(temp, dir_fd)
        raise
    return temp


def remove(path: Path, *, missing_ok: bool = True) -> None:
    """Delete the file or folder tree ``path`` without crossing a symlink: a symlink in its
    parents, or at ``path`` itself, is refused (``UnsafePathError``)."""
    try:
        with opened_dir(path.parent) as dir_fd:
            try:
                info = os.lstat(path.name, dir_fd=dir_fd)
            except FileNotFoundError:
                if missing_ok:
                    return
                raise
            if stat.S_ISLNK(info.st_mode):
                raise _refuse(path)
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(path.name, dir_fd=dir_fd)
            else:
                os.unlink(path.name, dir_fd=dir_fd)
    except FileNotFoundError:
        if not missing_ok:
            raise
        return
    _seen("remove", path)


def remove_empty_dir(path: Path) -> bool:
    """Delete the empty folder ``path`` (a cgroup, say), its parents reached without
    following a symlink; False when it is missing, not empty, busy or not a folder."""
    try:
        with opened_dir(path.parent) as dir_fd:
            os.rmdir(path.name, dir_fd=dir_fd)
    except OSError:
        return False
    _seen("remove", path)
    return True


def remove_link(path: Path) -> None:
    """Delete the symlink (or file) ``path`` itself, never what it points at."""
    with opened_dir(path.parent) as dir_fd:
        _unlink_quietly(path.name, dir_fd)
    _seen("remove", path)


def rename(source: Path, target: Path) -> None:
    """Move ``source`` over ``target`` (same file system), neither parent through a symlink;
    a folder ``target`` must be missing or empty (``os.replace``'s rule)."""
    with opened_dir(source.parent) as src_fd, opened_dir(target.parent, create=True) as dst_fd:
        if _is_link(target.name, dst_fd):
            raise _refuse(target)
        os.replace(source.name, target.name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    _seen("rename", target)


def exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths in one step (``renameat2`` with ``RENAME_EXCHANGE``), neither
    reached through a symlink nor a symlink itself; False when the system cannot swap."""
    import ctypes  # only the publish of a build needs it

    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    with opened_dir(first.parent) as first_fd, opened_dir(second.parent) as second_fd:
        for fd, path in ((first_fd, first), (second_fd, second)):
            if _is_link(path.name, fd):
                raise _refuse(path)
        swapped = libc.renameat2(first_fd, os.fsencode(first.name), second_fd,
                                 os.fsencode(second.name), _RENAME_EXCHANGE) == 0
    if swapped:
        _seen("rename", second)
    return bool(swapped)


def replace_symlink(path: Path, points_to: str) -> None:
    """Make ``path`` a symlink to ``points_to`` (relative), replacing the one there."""
    with opened_dir(path.parent, create=True) as dir_fd:
        temp = _temp_name(path)
        os.symlink(points_to, temp, dir_fd=dir_fd)
        _swap_in(dir_fd, temp, path.name)
    _seen("link", path)


def make_dir(path: Path, *, mode: int = 0o755) -> Path:
    """Make folder ``path`` new (its missing parents made): ``FileExistsError`` when anything
    is there already; a symlink anywhere in it is refused."""
    with opened_dir(path.parent, create=True) as dir_fd:
        try:
            os.mkdir(path.name, mode, dir_fd=dir_fd)
        except FileExistsError:
            if _is_link(path.name, dir_fd):
                raise _refuse(path) from None
            raise
    _seen("mkdir", path)
    return path


def write_tarball(folder: Path, target: Path, *, mode: int = 0o644) -> None:
    """A gzip'd tar of ``folder`` (members under ``<folder name>/``, in sorted order; a
    symlink in it is stored as a link, never followed) written to ``target`` through an
    exclusively created temporary file renamed into place."""
    import tarfile

    check_path(folder)
    with _replacing(target, mode) as handle, tarfile.open(fileobj=handle, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A new, empty folder in ``parent`` (made when missing) named ``<prefix><random>``."""
    import secrets

    with opened_dir(parent, create=True) as dir_fd:
        while True:
            name = f"{prefix}{secrets.token_hex(6)}"
            try:
                os.mkdir(name, 0o700, dir_fd=dir_fd)
            except FileExistsError:
                continue
            break
    _seen("mkdir", parent / name)
    return parent / name


def set_mode(path: Path, mode: int) -> None:
    """Set the mode of file ``path`` (reached without following a symlink)."""
    with opened_dir(path.parent) as dir_fd:
        if _is_link(path.name, dir_fd):
            raise _refuse(path)
        os.chmod(path.name, mode, dir_fd=dir_fd)
    _seen("chmod", path)


def set_owner(path: Path, owner: tuple[int, int]) -> None:
    """Give file or folder ``path`` (reached without following a symlink) to ``owner``
    ``(uid, gid)``."""
    with opened_dir(path.parent) as dir_fd:
        if _is_link(path.name, dir_fd):
            raise _refuse(path)
        os.chown(path.name, *owner, dir_fd=dir_fd, follow_symlinks=False)
    _seen("chown", path)


def _unlink_quietly(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def log_tail(log: Path, lines: int) -> str:
    """The last ``lines`` lines of the text file ``log`` (empty when it cannot be read)."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(path: Path, algorithms: tuple[str, ...]) -> dict[str, str]:
    """The hex digests of a file's bytes for each of ``algorithms`` (``hashlib`` names), from
    one read in 1 MiB blocks."""
    digests = [hashlib.new(name) for name in algorithms]
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            for digest in digests:
                digest.update(block)
    return {name: digest.hexdigest() for name, digest in zip(algorithms, digests, strict=True)}


def json_digest(data: Any) -> str:
    """``sha256:<hex>`` of ``data`` as JSON with sorted keys: the inputs digest of an image
    (equal digests mean nothing to rebuild)."""
    text = json.dumps(data, sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
