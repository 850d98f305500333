"""Folders shared into the guest over 9p (virtio), read-only or read-write.

A share is ``HOST:GUEST[:ro|:rw]`` on the command line. qemu enforces read-only
(``readonly=on``), so a read-only share cannot be written even by root in the guest. Each share
gets a tag (``share0``, ``share1``, ...); the work folder is the tag ``work`` at
``/tkedistro/work``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

WORK_TAG = "work"
WORK_MOUNT = PurePosixPath("/tkedistro/work")
_PLAIN = re.compile(r"[A-Za-z0-9._/+@=-]+", re.ASCII)  # what the guest's share list can hold


@dataclass(frozen=True)
class Share:
    host: Path
    guest: PurePosixPath
    readonly: bool = True


def parse_share(text: str) -> Share:
    """``HOST:GUEST[:ro|:rw]`` (read-only unless ``:rw``); ``ValueError`` says what is wrong."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ValueError(f"--share {text!r}: expected HOST:GUEST or HOST:GUEST:ro|rw")
    mode = parts[2] if len(parts) == 3 else "ro"
    if mode not in ("ro", "rw"):
        raise ValueError(f"--share {text!r}: the mode is {mode!r}; expected ro or rw")
    share = Share(Path(parts[0]).absolute(), PurePosixPath(parts[1]), mode == "ro")
    if problem := share_problem(share):
        raise ValueError(f"--share {text!r}: {problem}")
    return share


def share_problem(share: Share) -> str | None:
    """Why a share cannot be mounted in the guest, or None."""
    guest = str(share.guest)
    if not share.guest.is_absolute() or guest == "/" or ".." in share.guest.parts:
        return f"the guest path {guest} must be an absolute folder other than /, without .."
    if not _PLAIN.fullmatch(guest):
        return (f"the guest path {guest} may hold only letters, digits and ._/+@=- "
                "(no spaces)")
    if share.guest == WORK_MOUNT or WORK_MOUNT in share.guest.parents \
            or share.guest in WORK_MOUNT.parents:
        return f"the guest path {guest} overlaps the run's work folder {WORK_MOUNT}"
    if not share.host.is_dir():
        return f"the host folder {share.host} does not exist or is not a folder"
    return None


def qemu_escape(value: str) -> str:
    """qemu's option syntax: a comma inside a value is written twice."""
    return value.replace(",", ",,")


def virtfs_arg(host: Path, tag: str, readonly: bool) -> str:
    """The ``-virtfs`` value of one share (``multidevs=remap``: a share may span devices)."""
    arg = (f"local,path={qemu_escape(str(host))},mount_tag={tag},security_model=none,"
           f"multidevs=remap")
    return arg + (",readonly=on" if readonly else "")


def share_list(shares: list[Share] | tuple[Share, ...]) -> str:
    """The ``shares`` file the guest's runner reads: ``TAG GUEST-PATH ro|rw`` per line."""
    return "".join(f"{tag_of(i)} {s.guest} {'ro' if s.readonly else 'rw'}\n"
                   for i, s in enumerate(shares))


def tag_of(index: int) -> str:
    return f"share{index}"


def python_shares(checkout: Path) -> tuple[list[Share], dict[str, str]]:
    """What runs the tool in the guest with the guest's python3 (3.11, as here): ``checkout``
    and this Python's site-packages shared read-only at the same paths, and the
    ``PYTHONPATH`` that puts them first (the checkout before an installed copy)."""
    import site

    folders = [checkout.absolute()]
    folders += [Path(p) for p in site.getsitepackages() if Path(p).is_dir()]
    shares = [Share(f, PurePosixPath(f.as_posix()), True) for f in folders]
    return shares, {"PYTHONPATH": ":".join(f.as_posix() for f in folders)}
