"""Package URLs (https://github.com/package-url/purl-spec, made with packageurl-python) and
SPDX identifiers for the SBOM."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from tkedistro.model.refs import parse_image_ref


def _purl(kind: str, name: str, version: str, namespace: str | None = None,
          **qualifiers: str) -> str:
    from packageurl import PackageURL

    return str(PackageURL(type=kind, namespace=namespace, name=name, version=version,
                          qualifiers={k: v for k, v in sorted(qualifiers.items()) if v}
                          ).to_string())


def golang_purl(path: str, version: str) -> str:
    """``pkg:golang/<module path>@<version>``; the path keeps its case, as Go does."""
    namespace, _, name = path.rpartition("/")
    return _purl("golang", name, version, namespace or None)


def oci_purl(repository: str, digest: str, **qualifiers: str) -> str:
    """``pkg:oci/<name>@sha256:...`` with ``repository_url`` (where it is published) and any
    other qualifiers (``arch``, ``tag``)."""
    name = repository.rsplit("/", 1)[-1].lower()
    return _purl("oci", name, digest, repository_url=repository, **qualifiers)


def deb_purl(name: str, version: str, arch: str, distro: str, source: str = "") -> str:
    """``pkg:deb/debian/<name>@<version>?arch=..&distro=debian-11`` (``upstream``: the source
    package when its name differs)."""
    return _purl("deb", name, version, "debian", arch=arch, distro=distro,
                 upstream=source if source != name else "")


def github_purl(url: str, version: str) -> str | None:
    """``pkg:github/<owner>/<repo>@<version>`` for a github.com URL, None for any other."""
    parts = urlsplit(url)
    if parts.hostname != "github.com":
        return None
    segments = parts.path.strip("/").removesuffix(".git").split("/")
    if len(segments) != 2 or not all(segments):
        return None
    owner, repo = (s.lower() for s in segments)
    return _purl("github", repo, version, owner)


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
