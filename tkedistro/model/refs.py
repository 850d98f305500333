"""The shapes of the names tkedistro hands to git and Docker: one pattern per rule, and the
one image-reference parser (``parse_image_ref``).

The manifest model and the command-line callbacks both use these, so a tag, a commit or a
builder image is held to the same rule wherever it comes from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# an upstream tag: v1.20.2, v1.21.0-rc.1 (ASCII digits only: ``\d`` takes any script's)
TAG_PATTERN = r"v[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?"
MAX_TAG_CHARS = 128  # a tag is a file name in a repository's refs/tags
COMMIT_PATTERN = r"[0-9a-f]{40}"  # a full lowercase hex commit SHA

# An image reference as Docker's reference grammar has it:
# [registry[:port]/]path[:tag][@sha256:digest]; path components are lowercase.
_DOMAIN_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_PATTERN = (rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
                 r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?")
IMAGE = re.compile(IMAGE_PATTERN)
IMAGE_EXAMPLES = "golang:1.15.15 or registry.example.com:5000/tke/builder:1.20@sha256:<64 hex>"
MAX_IMAGE_CHARS = 255 + 1 + 128 + 72  # name, ':' tag, '@sha256:' digest


def tag_problem(tag: str) -> str | None:
    """Why ``tag`` is not an upstream tag (``v1.20.2``-shaped, ASCII, not too long), or None."""
    if len(tag) > MAX_TAG_CHARS:
        return f"expected an upstream tag of at most {MAX_TAG_CHARS} characters, got {len(tag)}"
    if not re.fullmatch(TAG_PATTERN, tag):
        return f"expected an upstream tag like v1.20.2, got {tag!r}"
    return None


def port_problem(hostport: str) -> str | None:
    """Why the port of ``host:port`` (none is fine) is not a TCP port, or None."""
    host, colon, port = hostport.rpartition(":")
    if not colon or "]" in port or not port.isascii() or not port.isdigit():
        return None
    if 1 <= int(port) <= 65535:
        return None
    return f"port {port} of {host or hostport!r} is not a TCP port (1 to 65535)"


def image_problem(image: str) -> str | None:
    """Why ``image`` is not a Docker image reference, or None when it is one."""
    if len(image) <= MAX_IMAGE_CHARS and IMAGE.fullmatch(image):
        registry = parse_image_ref(image).registry
        return port_problem(registry) if registry else None
    return (f"expected an image reference like {IMAGE_EXAMPLES} "
            f"(lowercase path; no spaces, no leading '-'), got {image!r}")


REGISTRY = re.compile(rf"{_DOMAIN}(?:/{_COMPONENT})*")
REGISTRY_EXAMPLES = "127.0.0.1:5000 or registry.example.com/k8s-conformance"


def registry_problem(registry: str) -> str | None:
    """Why ``registry`` is not a registry host[:port][/path] to push to, or None.

    The first component must name a host as Docker reads one (a ``.``, a ``:`` port, or
    ``localhost``): anything else is a Docker Hub namespace (``myreg`` would push to
    ``docker.io/myreg``), so Docker Hub is a push target only when written out."""
    if len(registry) > 255 or not REGISTRY.fullmatch(registry):
        return (f"expected a registry like {REGISTRY_EXAMPLES} (host[:port][/lowercase path], "
                f"no scheme, no tag), got {registry!r}")
    host = registry.partition("/")[0]
    if "." in host or ":" in host or host == "localhost":
        return port_problem(host)
    return (f"{registry!r} names no registry host: Docker would read {host!r} as a Docker Hub "
            f"namespace and push to docker.io/{registry}; name the host with a dot "
            f"(registry.example.com), a port ({host}:5000) or localhost, or write "
            f"docker.io/{registry} to push to Docker Hub")


@dataclass(frozen=True)
class ImageRef:
    """An image reference taken apart: ``[registry/]path[:tag][@digest]``, the one parser
    every module uses (pushes, pulls, the local registry, SBOM purls, conformance recipes).

    ``registry`` is empty when the reference names none (Docker Hub). As Docker reads it,
    the first component is a registry when it has a ``.`` or a ``:`` (a port), is
    ``localhost``, or is a bracketed IPv6 address; a ``:`` after the last ``/`` starts the
    tag, so a registry's port is never taken for one. A digest names the image whatever the
    tag says: both are kept, and ``version`` (what a pull or push names) is the digest.
    """

    registry: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def repository(self) -> str:
        """``registry/path`` (``path`` alone without a registry): the name without tag or
        digest."""
        return f"{self.registry}/{self.path}" if self.registry else self.path

    @property
    def short_name(self) -> str:
        """The last path component: ``agnhost`` of ``k8s.gcr.io/e2e-test-images/agnhost``."""
        return self.path.rpartition("/")[2]

    @property
    def version(self) -> str:
        """The digest when there is one, else the tag; empty when neither is given."""
        return self.digest or self.tag

    @property
    def host(self) -> str:
        """The registry's host, without port or IPv6 brackets: ``127.0.0.1``, ``::1``."""
        if self.registry.startswith("["):
            return self.registry[1:].partition("]")[0]
        return self.registry.partition(":")[0]


def parse_image_ref(ref: str) -> ImageRef:
    """``ref`` taken apart (``ImageRef``); never refuses (``image_problem`` validates)."""
    rest, _, digest = ref.partition("@")
    slash, colon = rest.rfind("/"), rest.rfind(":")
    name, tag = (rest[:colon], rest[colon + 1:]) if colon > slash else (rest, "")
    first, sep, path = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        return ImageRef(first, path, tag, digest)
    return ImageRef("", name, tag, digest)
