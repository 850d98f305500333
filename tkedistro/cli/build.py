"""Commands that build and set up the host: build, images, doctor, builder-image, host-setup."""

from __future__ import annotations

from typing import Annotated

import typer

from tkedistro.cli.common import (
    DebianMirrorOpt,
    G,
    JsonOpt,
    SignKeyOpt,
    UpstreamOpt,
    check_cpus,
    check_image,
    check_memory,
    check_registry,
    debian_source,
    emit,
    guarded,
)


def register(app: typer.Typer) -> None:
    app.command("build")(guarded(build))
    app.command("images")(guarded(images))
    app.command("doctor")(guarded(doctor))
    app.command("builder-image")(guarded(builder_image))
    app.command("host-setup")(guarded(host_setup))


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
    debian_mirror: DebianMirrorOpt = None,
    sign_key: SignKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the release into _output/RELEASE: binaries (in the builder container), component
    images, release tarballs, SHA256SUMS/SHA512SUMS, SBOM and provenance, signed with a key
    (--sign-key)."""
    from tkedistro.build.pipeline import BuildOptions
    from tkedistro.model.manifest import load_release
    from tkedistro.release.operation import build_release
    from tkedistro.signing.keys import resolve_signing_key

    options = BuildOptions(
        components=tuple(component or ()),
        platforms=tuple(platform or ()),
        builder_image=builder_image,
        upstream=upstream,
        force=force,
        cpus=cpus,
        memory=memory,
        verify_reproducible=verify_reproducible,
        conformance_tools=with_conformance_tools,
        images=not no_images,
        signing=resolve_signing_key(sign_key),  # before any work: a bad key stops here
    )

    ws = G.settled(release)
    manifest = load_release(ws, release)
    with debian_source(debian_mirror, (release,), (manifest,)):
        result = build_release(ws, manifest, options, G.engines())
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
    debian_mirror: DebianMirrorOpt = None,
    sign_key: SignKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make the release's component images (multi-arch OCI archives in _output/RELEASE/images),
    building what is not built yet; push them with --push, signed with a key (--sign-key)."""
    from tkedistro.release import imagescmd
    from tkedistro.signing.keys import resolve_signing_key

    signing = resolve_signing_key(sign_key)  # before any work: a bad key stops here
    ws = G.settled(release)
    with debian_source(debian_mirror, (release,)):
        report = imagescmd.make_and_push(ws, release, tuple(platform or ()), push, upstream,
                                         G.engines(), signing=signing)
    emit(report.to_json(), report.format_text(), as_json)


def doctor(as_json: JsonOpt = False) -> None:
    """Check git, the Docker engine, builder images, disk and cache; say how to fix each."""
    from tkedistro.setup import doctor as doctor_mod

    report = doctor_mod.run_doctor(G.workspace(), G.engines().containers)
    emit(report.to_json(), report.format_text(), as_json)
    report.raise_for_problems()




def builder_image(
    release: Annotated[list[str] | None, typer.Argument(
        help="Releases (default: every release in releases/).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Make it again even when current.")
                     ] = False,
    image: Annotated[
        str | None, typer.Option("--image", callback=check_image,
                                 help="Name it IMAGE instead of the manifest's builder.image "
                                      "(one release).")
    ] = None,
    debian_mirror: DebianMirrorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make each release's builder image offline for its go.version (debootstrap, root),
    reused while its inputs match."""
    from tkedistro.build import builderimage

    if image and len(release or ()) != 1:
        raise typer.BadParameter("--image names the image of exactly one release",
                                 param_hint="--image")
    with debian_source(debian_mirror, tuple(release or ())):
        report = builderimage.make_builder_images(G.workspace(), tuple(release or ()),
                                                  G.engines(), force=force, image=image)
    emit(report.to_json(), report.format_text(), as_json)


def host_setup(
    release: Annotated[list[str] | None, typer.Argument(
        help="Releases (default: every release in releases/).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Change nothing; list what is "
                                                        "missing and the fix.")] = False,
    debian_mirror: DebianMirrorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Install the host packages, register qemu-user with binfmt_misc and make the builder
    images and component bases the releases need (root); a no-op when all are in place."""
    from tkedistro.setup import hostsetup

    with debian_source(debian_mirror, tuple(release or ())):
        report = hostsetup.setup_host(G.workspace(), tuple(release or ()), G.engines(),
                                      check_only=check)
    emit(report.to_json(), report.format_text(), as_json)
    report.raise_if_not_ready()
