"""Where Debian packages come from: the mirror a command debootstraps from, chosen once.

Precedence: ``--debian-mirror URL`` (the commands that debootstrap), then the release
manifest's ``debian.mirror``, then ``DEBIAN_MIRROR``, then deb.debian.org. The command line
resolves it (``resolve``) and makes it the run's choice (``chosen``) for the commands below
it; without a choice (``guest build``, tied to no release) the environment and the default
apply.

A suite past its end of life (``EOL``: the end of Debian LTS) leaves the main mirror for
archive.debian.org. When the mirror was not chosen by the user (the default) and it no longer
has such a suite, ``debian/debootstrap.py`` retries on ``ARCHIVE_MIRROR`` and says so; a
mirror the user chose is never replaced behind their back: the error names the archive
mirror and the option that picks it.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core.errors import ManifestError
from tkedistro.core.workspace import default_cache_dir

DEFAULT_MIRROR = "http://deb.debian.org/debian"
ARCHIVE_MIRROR = "http://archive.debian.org/debian"
ENV = "DEBIAN_MIRROR"
OPTION = "--debian-mirror"
MANIFEST_KEY = "debian.mirror"
DEFAULT_ORIGIN = "the default"
# suite -> the last day of its support (Debian LTS; planned for the suites still supported);
# after it the main mirror may drop it
EOL = {"jessie": datetime.date(2020, 6, 30), "stretch": datetime.date(2022, 6, 30),
       "buster": datetime.date(2024, 6, 30), "bullseye": datetime.date(2026, 8, 31),
       "trixie": datetime.date(2030, 6, 30)}


@dataclass(frozen=True)
class DebianSource:
    """The mirror, where that choice came from (shown in messages), and the folder failed
    debootstrap logs are kept in (``None``: ``$TKEDISTRO_CACHE/logs``)."""

    mirror: str
    origin: str
    logs_dir: Path | None = None

    @property
    def user_chosen(self) -> bool:
        """False for the default mirror, which may fall back to the archive mirror."""
        return self.origin != DEFAULT_ORIGIN

    def logs(self) -> Path:
        return self.logs_dir or default_cache_dir() / "logs"


_chosen: list[DebianSource] = []


def from_environment() -> DebianSource:
    """``DEBIAN_MIRROR``, else the default mirror."""
    if env := os.environ.get(ENV):
        return DebianSource(env, ENV)
    return DebianSource(DEFAULT_MIRROR, DEFAULT_ORIGIN)


def current() -> DebianSource:
    """The run's choice (``chosen``), else ``from_environment``."""
    return _chosen[-1] if _chosen else from_environment()


@contextmanager
def chosen(source: DebianSource) -> Iterator[DebianSource]:
    """Make ``source`` the Debian source of everything run inside (every thread)."""
    _chosen.append(source)
    try:
        yield source
    finally:
        _chosen.remove(source)


def resolve(option: str | None, manifests: Mapping[str, str | None],
            logs_dir: Path | None = None) -> DebianSource:
    """``--debian-mirror`` > the manifests' ``debian.mirror`` (``{file shown: mirror}``; the
    releases a command works on must agree) > ``DEBIAN_MIRROR`` > the default."""
    if option:
        return DebianSource(option, OPTION, logs_dir)
    named = {shown: url for shown, url in manifests.items() if url}
    if len(set(named.values())) > 1:
        listed = "; ".join(f"{shown}: {MANIFEST_KEY} {url}" for shown, url in named.items())
        raise ManifestError([f"the releases name different Debian mirrors ({listed})"],
                            hint=f"run them one release at a time, or pick one mirror with "
                                 f"{OPTION} URL")
    if named:
        shown, url = next(iter(named.items()))
        return DebianSource(url, f"{shown}: {MANIFEST_KEY}", logs_dir)
    found = from_environment()
    return DebianSource(found.mirror, found.origin, logs_dir)


def end_of_life(suite: str, today: datetime.date | None = None) -> datetime.date | None:
    """The last day of ``suite``'s support, once that day has passed; else None."""
    ended = EOL.get(suite)
    if ended is None or ended >= (today or datetime.datetime.now(datetime.UTC).date()):
        return None
    return ended
