"""pause, built from the tree's ``build/pause/linux/pause.c`` as its ``build/pause/Makefile`` does
(``CFLAGS = -Os -Wall -Werror -static -DVERSION=v$(TAG)-$(REV)``, then strip), with the
builder's gcc or cross gcc, in the builder container after ``make``.

Pure: the Makefile text in, argv lists out. ``REV`` (upstream: ``git describe --contains`` of
the tree, the release tag) is the distro version, so ``pause -v`` prints
``pause.c v3.4-v1.20.2-tke.1`` and the smoke check finds the distro's stamp in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

from tkedistro.core.errors import BuildError

SOURCE = PurePosixPath("build/pause/linux/pause.c")
MAKEFILE = PurePosixPath("build/pause/Makefile")
_TAG_RE = re.compile(r"^TAG\s*\??=\s*(\S+)\s*$", re.MULTILINE)


def pause_tag(makefile_text: str) -> str:
    """The ``TAG = 3.4`` of ``build/pause/Makefile``; ``BuildError`` when it has none."""
    match = _TAG_RE.search(makefile_text)
    if match is None:
        raise BuildError(f"{MAKEFILE} has no `TAG = ...` line, so pause has no version",
                         hint="the release lists pause in images:, which needs the tree's "
                              "build/pause")
    return match.group(1)


def toolchain(platform: str, host_platform: str,
              cross: Mapping[str, tuple[str, str]]) -> tuple[str, str]:
    """(C compiler, strip) for ``platform``: the host's own, or its cross compiler."""
    if platform == host_platform:
        return "gcc", "strip"
    if host_platform == "linux/amd64" and platform in cross:
        compiler = cross[platform][0]
        return compiler, compiler.removesuffix("gcc") + "strip"
    raise BuildError(f"no C compiler for pause on {platform} is known on {host_platform}")


def pause_argvs(platform: str, host_platform: str, tag: str, distro_version: str,
                cross: Mapping[str, tuple[str, str]]) -> tuple[tuple[str, ...], ...]:
    """The commands (run in the tree) that leave ``_output/local/bin/<os>/<arch>/pause``."""
    compiler, strip = toolchain(platform, host_platform, cross)
    out = PurePosixPath("_output/local/bin", platform, "pause")
    return (
        ("mkdir", "-p", str(out.parent)),
        (compiler, "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{tag}-{distro_version}",
         "-o", str(out), str(SOURCE)),
        (strip, str(out)),
    )


def all_argvs(platforms: Sequence[str], host_platform: str, tag: str | None, distro_version: str,
              cross: Mapping[str, tuple[str, str]]) -> list[tuple[str, ...]]:
    """:func:`pause_argvs` for each platform; ``tag`` is None when it could not be read."""
    if tag is None:
        raise BuildError(f"pause is to be built (images:) but no version was read from the "
                         f"tree's {MAKEFILE}")
    return [argv for platform in platforms
            for argv in pause_argvs(platform, host_platform, tag, distro_version, cross)]
