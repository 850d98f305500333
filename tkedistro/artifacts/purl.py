"""Package URLs (https://github.com/package-url/purl-spec) and SPDX identifiers for the SBOM."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from tkedistro.model.refs import parse_image_ref


def _enc(value: str, safe: str = "") -> str:
    return quote(value, safe=safe)


def _qualifiers(qualifiers: Mapping[str, str]) -> str:
    pairs = [f"{k}={_enc(v, safe='/:')}" for k, v in sorted(qualifiers.items()) if v]
    return "?" + "&".join(pairs) if pairs else ""


def golang_purl(path: str, version: str) -> str:
    """``pkg:golang/<module path>@<version>``; the path keeps its case, as Go does."""
    return f"pkg:golang/{'/'.join(_enc(s) for s in path.split('/'))}@{_enc(version)}"


def oci_purl(repository: str, digest: str, **qualifiers: str) -> str:
    """``pkg:oci/<name>@sha256:...`` with ``repository_url`` (where it is published) and any
    other qualifiers (``arch``, ``tag``)."""
    name = repository.rsplit("/", 1)[-1].lower()
    return f"pkg:oci/{_enc(name)}@{_enc(digest)}" + _qualifiers(
        {"repository_url": repository, **qualifiers}
    )


def github_purl(url: str, version: str) -> str | None:
    """``pkg:github/<owner>/<repo>@<version>`` for a github.com URL, None for any other."""
    parts = urlsplit(url)
    if parts.hostname != "github.com":
        return None
    segments = parts.path.strip("/").removesuffix(".git").split("/")
    if len(segments) != 2 or not all(segments):
        return None
    owner, repo = (_enc(s.lower()) for s in segments)
    return f"pkg:github/{owner}/{repo}@{_enc(version)}"


def split_ref(ref: str) -> tuple[str, str]:
    """An image reference's repository and tag: ``("reg/k8s/kube-proxy", "v1.20.2-tke.1")``
    (the tag empty when the reference has none or is by digest)."""
    parsed = parse_image_ref(ref)
    return parsed.repository, parsed.tag


class SpdxIds:
    """Readable, unique SPDX identifiers (``SPDXRef-`` + letters, digits, ``.`` and ``-``):
    the same names in the same order give the same identifiers."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def new(self, *parts: str) -> str:
        base = "SPDXRef-" + "-".join(re.sub(r"[^A-Za-z0-9.]+", "-", p).strip("-") for p in parts)
        ident, count = base, 1
        while ident in self._taken:
            count += 1
            ident = f"{base}-{count}"
        self._taken.add(ident)
        return ident
