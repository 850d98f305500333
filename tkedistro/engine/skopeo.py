"""Every skopeo command line tkedistro runs (the only module that runs skopeo).

- ``push_archive``: an OCI archive with all its platforms (the image index and each
  platform's manifest, digests kept) to ``docker://REF`` (``skopeo copy --all
  --preserve-digests``);
- ``remote_digest``: the digest of the manifest or index a registry serves for a ref
  (``skopeo inspect --raw``, hashed here: the bytes the registry holds);
- ``copy_platform``: one platform of a multi-platform image (an archive or a registry ref)
  into the Docker engine (``docker-daemon:``, ``--override-os/--override-arch``);
- ``copy_to_layout``: every platform of a registry ref into an OCI layout folder, digests
  kept (``oci:DIR``), for ``tkedistro verify IMAGE`` to check its blobs.
- ``copy_to_docker_archive``: one platform of an image (an OCI archive or an image in the
  Docker engine) into a ``docker load`` archive under one or more names (skopeo writes it
  the same for the same image: entries owned by 0:0, mtime 0).
- ``push_layout`` / ``fetch_to_layout``: one manifest of an OCI layout folder to a registry
  as it is, and back (an image's sigstore signature attachment, ``signing/images.py``).

TLS is verified except for a registry on loopback (127.0.0.0/8, ``localhost``, ``[::1]``),
which is plain HTTP, as the engine and ``engine/registry.py``'s ``LocalRegistry`` have it.
Credentials are skopeo's own (``skopeo login``, ``~/.docker/config.json``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path

from tkedistro.core.errors import ImageError
from tkedistro.core.runner import Result, run
from tkedistro.model.refs import parse_image_ref

BINARY = "skopeo"
INSTALL_HINT = "apt-get install skopeo"
RETRIES = "2"
REF_NAME = "org.opencontainers.image.ref.name"


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


def image_name(archive: Path) -> str:
    """The ref name of the one image in an OCI archive whose ``index.json`` also lists
    referrers (skopeo then needs it named); "" when it lists one entry or is unreadable."""
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile("index.json")
            listed = json.loads(member.read()).get("manifests") if member else None
    except (OSError, KeyError, tarfile.TarError, ValueError, AttributeError):
        return ""
    if not isinstance(listed, list) or len(listed) < 2:
        return ""
    names = [str((m.get("annotations") or {}).get(REF_NAME, "")) for m in listed
             if isinstance(m, dict) and "artifactType" not in m]
    return names[0] if len(names) == 1 else ""


def oci_archive(path: Path) -> str:
    """The skopeo name of an OCI archive holding one image (or index), named by its ref name
    when its ``index.json`` lists referrers beside it (``oci-archive:PATH:v1.20.2-tke.1``)."""
    if ":" in str(path):
        raise ImageError(f"skopeo cannot read an archive whose path has a ':': {path}",
                         hint="move the output folder to a path without ':'")
    name = image_name(path)
    return f"oci-archive:{path}:{name}" if name else f"oci-archive:{path}"


def push_argv(archive: Path, dest_ref: str, authfile: Path | None = None) -> list[str]:
    """``authfile``: the credentials for the destination (``--dest-authfile``), never on the
    command line, where every local user could read them."""
    auth = ["--dest-authfile", str(authfile)] if authfile is not None else []
    return [BINARY, "copy", "--all", "--preserve-digests", "--retry-times", RETRIES,
            *_tls("--dest-tls-verify", dest_ref), *auth, oci_archive(archive),
            f"docker://{dest_ref}"]


def push_layout_argv(layout: Path, tag: str, dest_ref: str) -> list[str]:
    """One manifest of an OCI layout folder (by its ``tag``) to ``docker://dest_ref``, as
    it is."""
    if ":" in str(layout):
        raise ImageError(f"skopeo cannot read a layout whose path has a ':': {layout}")
    return [BINARY, "copy", "--preserve-digests", "--retry-times", RETRIES,
            *_tls("--dest-tls-verify", dest_ref), f"oci:{layout}:{tag}", f"docker://{dest_ref}"]


def inspect_argv(ref: str) -> list[str]:
    return [BINARY, "inspect", "--raw", "--retry-times", RETRIES,
            *_tls("--tls-verify", ref), f"docker://{ref}"]


def layout_argv(ref: str, layout: Path, tag: str | None = None) -> list[str]:
    """``docker://ref`` into the OCI layout folder ``layout``, digests kept: every platform,
    or, with ``tag``, the one manifest ``ref`` names (an index as it is) stored as ``tag``."""
    if ":" in str(layout):
        raise ImageError(f"skopeo cannot write an OCI layout whose path has a ':': {layout}",
                         hint="set TKEDISTRO_CACHE (or --cache-dir) to a path without ':'")
    which, dest = (["--all"], f"oci:{layout}") if tag is None else ([], f"oci:{layout}:{tag}")
    return [BINARY, "copy", *which, "--preserve-digests", "--retry-times", RETRIES,
            *_tls("--src-tls-verify", ref), f"docker://{ref}", dest]


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


def docker_archive_argv(source: str, platform: str, dest: Path,
                        names: Sequence[str]) -> list[str]:
    """``source``: ``oci-archive:PATH`` or ``docker-daemon:REF``; ``names``: at least one."""
    if not names:
        raise ValueError("a docker archive needs at least one name")
    if ":" in str(dest):
        raise ImageError(f"skopeo cannot write an archive whose path has a ':': {dest}",
                         hint="move the output folder to a path without ':'")
    head = platform_argv(source, platform, names[0])[:-1]  # its checks, without the dest
    extra = [arg for name in names[1:] for arg in ("--additional-tag", name)]
    return [*head, "--quiet", *extra, f"docker-archive:{dest}:{names[0]}"]


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


def push_layout(layout: Path, tag: str, dest_ref: str) -> None:
    """Copy the manifest ``tag`` of the OCI layout ``layout`` to ``docker://dest_ref``."""
    _run(push_layout_argv(layout, tag, dest_ref),
         *_registry_failure(f"pushing {layout}:{tag}", dest_ref))


def fetch_to_layout(ref: str, layout: Path, tag: str) -> str | None:
    """Copy ``ref`` (one manifest, not a platform of it) into the OCI layout ``layout`` as
    ``tag``; None when done, else what skopeo said (``manifest unknown`` for a missing one)."""
    find_skopeo()
    result = run(layout_argv(ref, layout, tag), check=False)
    if result.returncode == 0:
        return None
    return (result.stderr or result.stdout).strip()[-2000:] or f"skopeo exit {result.returncode}"


def remote_manifest(ref: str) -> str:
    """The manifest or index the registry serves for ``ref``, as its bytes (text)."""
    return _run(inspect_argv(ref), *_registry_failure("reading the manifest", ref)).stdout


def remote_digest(ref: str) -> str:
    """``sha256:...`` of the manifest or index the registry serves for ``ref``."""
    return "sha256:" + hashlib.sha256(remote_manifest(ref).encode()).hexdigest()


def copy_to_layout(ref: str, layout: Path) -> None:
    """Every platform of ``docker://ref`` (index, manifests, configs, layers, digests
    unchanged) into the OCI layout folder ``layout``."""
    failure, _ = _registry_failure("reading the image", ref)
    registry = parse_image_ref(ref).registry or "docker.io"
    _run(layout_argv(ref, layout), failure,
         f"check that the registry answers and holds {ref} (`skopeo login {registry}` for "
         "one that needs credentials)")


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


def copy_to_docker_archive(source: str, platform: str, dest: Path, names: Sequence[str]) -> None:
    """The ``platform`` image of ``source`` (``oci-archive:PATH`` or ``docker-daemon:REF``)
    as a ``docker load`` archive at ``dest`` (which must not exist) named ``names``."""
    _run(docker_archive_argv(source, platform, dest, names),
         f"writing {dest} ({platform}) from {source} failed",
         "check that the source holds that platform and the folder is writable")
