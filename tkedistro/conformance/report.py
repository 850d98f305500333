"""The cncf/k8s-conformance bundle: ``PRODUCT.yaml`` and ``README.md`` rendered from the
packaged templates ``templates/conformance/`` beside the suite's ``e2e.log`` and ``junit_01.xml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tkedistro.conformance.results import SuiteResults
from tkedistro.core.files import write_text
from tkedistro.core.render import render
from tkedistro.model.manifest import Manifest

# The oldest Kubernetes minor CNCF accepts for new certifications (it moves; checked 2026).
OLDEST_CERTIFIABLE_MINOR = (1, 31)


@dataclass(frozen=True)
class Product:
    """What PRODUCT.yaml says about the distro (the manifest has no product section yet)."""

    name: str
    version: str
    vendor: str = "tkedistro"
    description: str = "A Kubernetes distribution built by tkedistro from pinned upstream " \
                       "sources and a reviewed patch series."
    website_url: str = ""
    repo_url: str = ""
    documentation_url: str = ""
    contact_email_address: str = ""


@dataclass(frozen=True)
class BundleContext:
    product: Product
    manifest: Manifest
    results: SuiteResults
    cluster: str
    focus: str
    skip: str = ""
    unavailable_images: tuple[str, ...] = ()
    command: str = ""


def minor_of(tag: str) -> tuple[int, int]:
    major, minor = tag.lstrip("v").split(".")[:2]
    return int(major), int(minor)


def is_internal(tag: str) -> bool:
    """True when CNCF would not accept results for this Kubernetes version any more."""
    return minor_of(tag) < OLDEST_CERTIFIABLE_MINOR


def _context(ctx: BundleContext) -> dict[str, object]:
    tag = ctx.manifest.upstream.tag
    return {
        "product": ctx.product, "results": ctx.results, "internal": is_internal(tag),
        "k8s_minor": ".".join(str(n) for n in minor_of(tag)), "upstream_tag": tag,
        "upstream_commit": ctx.manifest.upstream.commit,
        "patch_count": len(ctx.manifest.patches), "cluster": ctx.cluster,
        "focus": ctx.focus, "skip": ctx.skip,
        "unavailable_images": ctx.unavailable_images, "command": ctx.command,
    }


def render_product(ctx: BundleContext) -> str:
    return render("conformance/PRODUCT.yaml.j2", **_context(ctx))


def render_readme(ctx: BundleContext) -> str:
    return render("conformance/README.md.j2", **_context(ctx))


def write_bundle(ctx: BundleContext, folder: Path) -> list[Path]:
    written = []
    for name, text in (("PRODUCT.yaml", render_product(ctx)), ("README.md", render_readme(ctx))):
        path = folder / name
        write_text(path, text)
        written.append(path)
    return written
