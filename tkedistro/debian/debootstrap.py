"""The one debootstrap command line, run with the Release signature always verified.

Every Debian root this tool makes (builder images, component and node bases, the upstream
images' base, the cgroup v2 guest) goes through ``bootstrap``:

- ``--keyring`` names Debian's archive keyring (``debian-archive-keyring``) and
  ``--force-check-gpg`` makes debootstrap abort rather than go on unverified; the keyring is
  checked first, so a host without it gets one message naming the file and the package.
  Output that still says ``Cannot check Release signature`` is an error, whatever the exit
  code.
- A failed run keeps its log: debootstrap's own ``debootstrap/debootstrap.log`` from the
  target and the command's output, copied to ``<cache>/logs/debootstrap-<suite>-<arch>-<UTC
  time>.log`` (the nightly uploads that folder); the error names the file.
- A suite past its end of life that the default mirror no longer has is fetched again from
  the archive mirror (``debian/source.py``), saying so; a mirror the user chose is not
  replaced: the error names the archive mirror and ``--debian-mirror``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core import console, files
from tkedistro.core.errors import BuildError, HostNotReadyError
from tkedistro.core.runner import Result, run
from tkedistro.debian.source import (
    ARCHIVE_MIRROR,
    DEFAULT_MIRROR,
    ENV,
    MANIFEST_KEY,
    OPTION,
    DebianSource,
    end_of_life,
)
from tkedistro.model.url import debian_mirror_problem

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
KEYRING_PACKAGE = "debian-archive-keyring"
UNVERIFIED = "Cannot check Release signature"
NO_RELEASE = "Failed getting release file"
# debootstrap's words for a Release whose signature does not verify against the keyring
BAD_SIGNATURE = ("Release signed by unknown key", "Invalid Release signature",
                 "Invalid Release file")
MAX_LOG_BYTES = 16 * 2**20  # debootstrap.log of a few hundred packages is well under 1 MiB


@dataclass(frozen=True)
class Bootstrap:
    """One debootstrap run: the suite, packages and architecture of ``target``."""

    suite: str
    target: Path
    packages: tuple[str, ...]
    arch: str = ""  # "" is the host's

    def cmd(self, mirror: str, keyring: Path = KEYRING) -> list[str]:
        """``debootstrap --variant=minbase --keyring=K --force-check-gpg ...``."""
        arch = [f"--arch={self.arch}"] if self.arch else []
        return ["debootstrap", "--variant=minbase", f"--keyring={keyring}",
                "--force-check-gpg", *arch, "--include=" + ",".join(self.packages),
                self.suite, str(self.target), mirror]


def check_keyring(keyring: Path | None = None) -> Path:
    """Debian's archive keyring (default ``KEYRING``), which must be there before debootstrap
    runs (else exit 19, naming the file and the package)."""
    keyring = keyring or KEYRING
    if not keyring.is_file():
        raise HostNotReadyError(
            f"{keyring} is missing: debootstrap cannot verify the Debian Release signature "
            "without it, and tkedistro does not install unverified packages",
            hint=f"install the {KEYRING_PACKAGE} package (sudo tkedistro host-setup, or "
                 f"apt-get install {KEYRING_PACKAGE})")
    return keyring


def bootstrap(job: Bootstrap, source: DebianSource, log: Path, *,
              keyring: Path | None = None) -> str:
    """debootstrap ``job`` from ``source`` (then, for an end-of-life suite the default
    mirror lacks, from the archive mirror); ``log`` gets the output. Returns the mirror the
    root came from; raises ``BuildError`` naming the kept log when it failed."""
    keyring = check_keyring(keyring)
    if problem := debian_mirror_problem(source.mirror):
        raise BuildError(f"{source.origin}: {problem}",
                         hint=f"set {ENV} to a mirror like {DEFAULT_MIRROR}, or pass {OPTION} URL")
    result = _run(job, source.mirror, keyring, log)
    if result.returncode == 0 and UNVERIFIED not in _output(result):
        return source.mirror
    if _archive_retry(job, source, result):
        console.warn(f"{source.mirror} has no {job.suite} (end of life "
                     f"{end_of_life(job.suite)}); fetching it from the archive mirror "
                     f"{ARCHIVE_MIRROR}")
        first = result
        result = _run(job, ARCHIVE_MIRROR, keyring, log)
        if result.returncode == 0 and UNVERIFIED not in _output(result):
            return ARCHIVE_MIRROR
        result = Result(result.argv, result.returncode,
                        _output(first) + "\n" + result.stdout, result.stderr)
        raise _failure(job, ARCHIVE_MIRROR, source, result, keep_log(job, result, source))
    raise _failure(job, source.mirror, source, result, keep_log(job, result, source))


def _run(job: Bootstrap, mirror: str, keyring: Path, log: Path) -> Result:
    result = run(job.cmd(mirror, keyring), check=False)
    files.write_text(log, _output(result))
    return result


def _output(result: Result) -> str:
    return result.stdout + result.stderr


def _archive_retry(job: Bootstrap, source: DebianSource, result: Result) -> bool:
    """The default mirror no longer has an end-of-life suite's Release file."""
    return (result.returncode != 0 and NO_RELEASE in _output(result)
            and not source.user_chosen and end_of_life(job.suite) is not None)


def keep_log(job: Bootstrap, result: Result, source: DebianSource) -> Path | None:
    """The failed run's output and debootstrap's own log, in ``<cache>/logs``; the file (None
    when it could not be written: the error still carries the output)."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = source.logs() / f"debootstrap-{job.suite}-{job.arch or 'host'}-{stamp}.log"
    parts = [f"$ {' '.join(result.argv)}\nexit code {result.returncode}\n", _output(result)]
    own = job.target / "debootstrap" / "debootstrap.log"
    try:
        parts += [f"\n--- {own} ---\n",
                  files.read_bytes(own, max_bytes=MAX_LOG_BYTES).decode(errors="replace")]
    except OSError as exc:
        parts.append(f"\n--- {own}: not kept ({exc.strerror or exc}) ---\n")
    try:
        files.ensure_dir(kept.parent)
        files.write_text(kept, "".join(parts))
    except OSError as exc:
        console.warn(f"could not keep the debootstrap log in {kept}: {exc}")
        return None
    return kept


def _failure(job: Bootstrap, mirror: str, source: DebianSource, result: Result,
             kept: Path | None) -> BuildError:
    output = _output(result)
    where = f"log: {kept}" if kept else "log not kept"
    if result.returncode == 0:  # went on without checking: refuse what it made
        return BuildError(f"debootstrap {job.suite} from {mirror} did not verify the Release "
                          f"signature ({where})", details=output[-4000:],
                          hint=f"check {KEYRING} (package {KEYRING_PACKAGE}) and run again")
    return BuildError(f"debootstrap {job.suite} from {mirror} failed ({where})",
                      details=output[-4000:], hint=_hint(job, source, output))


def _hint(job: Bootstrap, source: DebianSource, output: str) -> str:
    ended = end_of_life(job.suite)
    if any(words in output for words in BAD_SIGNATURE):
        return (f"the {job.suite} Release from {source.mirror} (from {source.origin}) did not "
                f"verify against Debian's keyring: update it (apt-get install --only-upgrade "
                f"{KEYRING_PACKAGE}); a mirror serving a Release Debian did not sign is refused")
    if NO_RELEASE in output and ended is not None and source.user_chosen:
        return (f"{job.suite} reached its end of life on {ended} and {source.mirror} "
                f"(from {source.origin}) no longer has it: use the archive mirror, "
                f"{OPTION} {ARCHIVE_MIRROR} (or {MANIFEST_KEY} in the release manifest)")
    if NO_RELEASE in output:
        return (f"{source.mirror} (from {source.origin}) has no {job.suite}: "
                f"check that the mirror answers, or pick another with {OPTION} URL")
    return (f"check that the mirror answers (from {source.origin}; {OPTION} URL picks "
            f"another) and the package names exist in {job.suite}: " + ",".join(job.packages))
