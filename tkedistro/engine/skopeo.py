"""Every skopeo command line tkedistro runs (the only module that runs skopeo).

- ``push_archive``: an OCI archive with all its platforms (the image index and each
  platform's manifest, digests kept) to ``docker://REF`` (``skopeo copy --all
  --preserve-digests``);
- ``remote_digest``: the digest of the manifest or index a registry serves for a ref
  (``skopeo inspect --raw``, hashed here: the bytes the registry holds);
- ``copy_platform``: one platform of a multi-platform image (an archive or a registry ref)
  into the Docker engine (``docker-daemon:``, ``--override-os/--override-arch``).

TLS is verified except for a registry on loopback (127.0.0.0/8, ``localhost``, ``[::1]``),
which is plain HTTP, as the engine and ``engine/registry.py``'s ``LocalRegistry`` have it.
Credentials are skopeo's own (``skopeo login``, ``~/.docker/config.json``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
from collections.abc import Sequence
from pathlib import Path

from tkedistro.core.errors import ImageError
from tkedistro.core.runner import Result, run
from tkedistro.model.refs import parse_image_ref

BINARY = "skopeo"
INSTALL_HINT = "apt-get install skopeo"
RETRIES = "2"


def find_skopeo() -> str:
    """The skopeo program, or an ``ImageError`` saying how to install it."""
    found = shutil.which(BINARY)
    if found is None:
        raise ImageError("skopeo not found: pushing and copying OCI images needs it",
                         hint=INSTALL_HINT)
    return found


def is_loopback(ref: str) -> bool:
    """Whether the registry of ``ref`` is on this machine's loopback (plain HTTP)."""
    host = parse_image_ref(ref).host
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls(option: str, ref: str) -> list[str]:
    return [f"{option}=false"] if is_loopback(ref) else []


def oci_archive(path: Path) -> str:
    """The skopeo name of an OCI archive whose ``index.json`` holds one image (or index)."""
    if ":" in str(path):
        raise ImageError(f"skopeo cannot read an archive whose path has a ':': {path}",
                         hint="move the output folder to a path without ':'")
    return f"oci-archive:{path}"


def push_argv(archive: Path, dest_ref: str, authfile: Path | None = None) -> list[str]:
    """``authfile``: the credentials for the destination (``--dest-authfile``), never on the
    command line, where every local user could read them."""
    auth = ["--dest-authfile", str(authfile)] if authfile is not None else []
    return [BINARY, "copy", "--all", "--preserve-digests", "--retry-times", RETRIES,
            *_tls("--dest-tls-verify", dest_ref), *auth, oci_archive(archive),
            f"docker://{dest_ref}"]


def inspect_argv(ref: str) -> list[str]:
    return [BINARY, "inspect", "--raw", "--retry-times", RETRIES,
            *_tls("--tls-verify", ref), f"docker://{ref}"]


def platform_argv(source: str, platform: str, dest_ref: str) -> list[str]:
    """``source``: ``oci-archive:PATH`` or ``docker://REF``; ``platform``: ``linux/arm64``."""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ImageError(f"expected a platform like linux/arm64, got {platform!r}")
    variant = ["--override-variant", parts[2]] if len(parts) == 3 else []
    tls = _tls("--src-tls-verify", source.removeprefix("docker://")) \
        if source.startswith("docker://") else []
    return [BINARY, "--override-os", parts[0], "--override-arch", parts[1], *variant, "copy",
            *tls, source, f"docker-daemon:{dest_ref}"]


def _run(argv: Sequence[str], failure: str, hint: str) -> Result:
    find_skopeo()
    result = run(argv, check=False)
    if result.returncode != 0:
        raise ImageError(failure, details=(result.stderr or result.stdout).strip()[-4000:] or None,
                         hint=hint)
    return result


def _registry_failure(what: str, ref: str) -> tuple[str, str]:
    parsed = parse_image_ref(ref)
    registry = parsed.registry or "docker.io"
    return (f"{what} failed (registry {parsed.host or registry}, image {ref})",
            "check that the registry answers and takes pushes from here (`skopeo login "
            f"{registry}` for one that needs credentials)")


def push_archive(archive: Path, dest_ref: str, authfile: Path | None = None) -> None:
    """Copy every platform of the OCI archive to ``docker://dest_ref``, digests unchanged."""
    _run(push_argv(archive, dest_ref, authfile),
         *_registry_failure(f"pushing {archive}", dest_ref))


def remote_digest(ref: str) -> str:
    """``sha256:...`` of the manifest or index the registry serves for ``ref``."""
    result = _run(inspect_argv(ref), *_registry_failure("reading the manifest", ref))
    return "sha256:" + hashlib.sha256(result.stdout.encode()).hexdigest()


def copy_platform(source: str, platform: str, dest_ref: str) -> None:
    """One platform of ``source`` (``oci-archive:PATH`` or ``docker://REF``) into the Docker
    engine as ``dest_ref`` (``name:tag``)."""
    argv = platform_argv(source, platform, dest_ref)
    what = f"copying the {platform} image into the Docker engine as {dest_ref}"
    if source.startswith("docker://"):
        _run(argv, *_registry_failure(what, source.removeprefix("docker://")))
    else:
        _run(argv, f"{what} from {source} failed",
             "check that the Docker engine answers and the archive holds that platform")
