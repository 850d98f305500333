"""Commands that build: build, images, doctor."""

from __future__ import annotations

from typing import Annotated

import typer

from tkedistro.cli.common import (
    G,
    JsonOpt,
    UpstreamOpt,
    check_cpus,
    check_image,
    check_memory,
    check_registry,
    emit,
    guarded,
)


def register(app: typer.Typer) -> None:
    app.command("build")(guarded(build))
    app.command("images")(guarded(images))
    app.command("doctor")(guarded(doctor))


def build(
    release: str,
    component: Annotated[
        list[str] | None, typer.Option("--component", "-c", help="Build only these components.")
    ] = None,
    platform: Annotated[
        list[str] | None, typer.Option("--platform", "-p", help="os/arch, e.g. linux/arm64.")
    ] = None,
    builder_image: Annotated[
        str | None, typer.Option("--builder-image", callback=check_image,
                                 help="Override the manifest's builder image.")
    ] = None,
    upstream: UpstreamOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when up to date.")] = False,
    cpus: Annotated[float | None, typer.Option(
        "--cpus", callback=check_cpus, help="CPU limit for the build, e.g. 4 or 1.5.")] = None,
    memory: Annotated[str | None, typer.Option(
        "--memory", callback=check_memory, help="Memory limit for the build, e.g. 8g.")] = None,
    verify_reproducible: Annotated[
        bool,
        typer.Option("--verify-reproducible", help="Build twice and compare SHA256SUMS."),
    ] = False,
    with_conformance_tools: Annotated[
        bool,
        typer.Option("--with-conformance-tools",
                     help="Also build e2e.test and ginkgo (for tkedistro conformance)."),
    ] = False,
    no_images: Annotated[
        bool, typer.Option("--no-images",
                           help="Leave the component images out (tkedistro images adds them).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build the release into _output/RELEASE: binaries (in the builder container), component
    images, release tarballs, SHA256SUMS/SHA512SUMS, SBOM and provenance."""
    from tkedistro.artifacts.finish import ReleaseFinisher
    from tkedistro.build import pipeline

    options = pipeline.BuildOptions(
        components=tuple(component or ()),
        platforms=tuple(platform or ()),
        builder_image=builder_image,
        upstream=upstream,
        force=force,
        cpus=cpus,
        memory=memory,
        verify_reproducible=verify_reproducible,
        conformance_tools=with_conformance_tools,
    )
    result = pipeline.build_release(G.workspace(), release, options,
                                    finisher=ReleaseFinisher(images=not no_images))
    emit(result.to_json(), result.format_text(), as_json)


def images(
    release: str,
    platform: Annotated[
        list[str] | None, typer.Option("--platform", "-p", help="os/arch, e.g. linux/arm64.")
    ] = None,
    push: Annotated[
        str | None, typer.Option("--push", metavar="REGISTRY", callback=check_registry,
                                 help="Push every image (all platforms) to REGISTRY, e.g. "
                                      "127.0.0.1:5000 or registry.example.com/tke.")
    ] = None,
    upstream: UpstreamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make the release's component images (multi-arch OCI archives in _output/RELEASE/images),
    building what is not built yet; push them with --push."""
    from tkedistro.artifacts import imagescmd

    report = imagescmd.make_and_push(G.workspace(), release, tuple(platform or ()), push,
                                     upstream)
    emit(report.to_json(), report.format_text(), as_json)


def doctor(as_json: JsonOpt = False) -> None:
    """Check git, the Docker engine, builder images, disk and cache; say how to fix each."""
    from tkedistro.build import doctor as doctor_mod

    report = doctor_mod.run_doctor(G.workspace())
    emit(report.to_json(), report.format_text(), as_json)
    report.raise_for_problems()


