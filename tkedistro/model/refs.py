"""The shapes of the names tkedistro hands to git and Docker: one pattern per rule.

The manifest model and the command-line callbacks both use these, so a tag, a commit or a
builder image is held to the same rule wherever it comes from.
"""

from __future__ import annotations

import re

TAG_PATTERN = r"v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?"  # an upstream tag: v1.20.2, v1.21.0-rc.1
COMMIT_PATTERN = r"[0-9a-f]{40}"  # a full lowercase hex commit SHA

# An image reference as Docker's reference grammar has it:
# [registry[:port]/]path[:tag][@sha256:digest]; path components are lowercase.
_DOMAIN_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::\d+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_PATTERN = (rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
                 r"(?::\w[\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?")
IMAGE = re.compile(IMAGE_PATTERN)
IMAGE_EXAMPLES = "golang:1.15.15 or registry.example.com:5000/tke/builder:1.20@sha256:<64 hex>"
MAX_IMAGE_CHARS = 255 + 1 + 128 + 72  # name, ':' tag, '@sha256:' digest


def image_problem(image: str) -> str | None:
    """Why ``image`` is not a Docker image reference, or None when it is one."""
    if len(image) <= MAX_IMAGE_CHARS and IMAGE.fullmatch(image):
        return None
    return (f"expected an image reference like {IMAGE_EXAMPLES} "
            f"(lowercase path; no spaces, no leading '-'), got {image!r}")


REGISTRY = re.compile(rf"{_DOMAIN}(?:/{_COMPONENT})*")
REGISTRY_EXAMPLES = "127.0.0.1:5000 or registry.example.com/k8s-conformance"


def registry_problem(registry: str) -> str | None:
    """Why ``registry`` is not a registry host[:port][/path] to push to, or None."""
    if len(registry) <= 255 and REGISTRY.fullmatch(registry):
        return None
    return (f"expected a registry like {REGISTRY_EXAMPLES} (host[:port][/lowercase path], "
            f"no scheme, no tag), got {registry!r}")


def split_image_ref(ref: str) -> tuple[str, str | None]:
    """``host:port/repo:tag`` -> (``host:port/repo``, ``tag``); a digest stays in the tag slot
    (``sha256:...``); no tag -> None. A registry's port is never taken for a tag."""
    if "@" in ref:
        repo, _, digest = ref.partition("@")
        return repo, digest
    repo, sep, tag = ref.rpartition(":")
    if sep and "/" not in tag:
        return repo, tag
    return ref, None
