"""Offline test images: build what can be built here, load it into the cluster's containerd
and report which images the suite expects that are still unavailable.

Buildable without a registry: ``pause`` (the tree's ``build/pause/linux/pause.c``, static gcc),
``agnhost`` (``test/images/agnhost``, vendored Go, with busybox and the host's ``curl`` and
OpenBSD ``nc`` with their libraries, as upstream's agnhost carries them: the network specs dial
through them; busybox's nc has no ``-u``) and
``busybox`` (Debian's busybox-static).
Images are written as docker-archive tars (``manifest.json`` + config + one layer) that
``ctr images import`` reads; no Docker engine is needed to assemble them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tkedistro.build.backend import ContainerBackend, ContainerSpec, Mount
from tkedistro.core import console
from tkedistro.core.errors import BuildError
from tkedistro.core.runner import run

BUSYBOX = Path("/usr/bin/busybox")
CURL = Path("/usr/bin/curl")
# host binary -> its path in the agnhost image. /bin/sh is dash: busybox's sh runs its own
# applets before PATH, so `sh -c "nc -u ..."` would never reach OpenBSD nc in /usr/bin.
AGNHOST_TOOLS = ((CURL, PurePosixPath("/usr/bin/curl")),
                 (Path("/usr/bin/nc.openbsd"), PurePosixPath("/usr/bin/nc")),
                 (Path("/usr/bin/dash"), PurePosixPath("/bin/sh")))


@dataclass(frozen=True)
class ImageFile:
    """One file of an image layer: host source (or None for a symlink) and its path inside."""

    inside: PurePosixPath
    source: Path | None = None
    link: str | None = None
    mode: int = 0o755


@dataclass(frozen=True)
class ImagePlan:
    name: str  # what the suite expects, e.g. k8s.gcr.io/pause:3.2
    files: tuple[ImageFile, ...]
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()


def short_name(image: str) -> str:
    """``k8s.gcr.io/e2e-test-images/agnhost:2.21`` -> ``agnhost``."""
    return image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]


def expected_images(e2e_test: Path) -> list[str]:
    out = run([e2e_test, "--list-images"], message="e2e.test --list-images failed").stdout
    return sorted({line.strip() for line in out.splitlines() if line.strip()})


def _layer(files: tuple[ImageFile, ...]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for folder in sorted({str(p) for f in files for p in f.inside.parents if str(p) != "/"}):
            info = tarfile.TarInfo(folder.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for item in files:
            info = tarfile.TarInfo(str(item.inside).lstrip("/"))
            info.mode = item.mode
            if item.link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, item.link
                tar.addfile(info)
                continue
            assert item.source is not None
            data = item.source.read_bytes()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_archive(plan: ImagePlan, dest: Path) -> None:
    """A docker-archive tar (``docker save`` layout) with one layer, tagged ``plan.name``."""
    layer = _layer(plan.files)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": list(plan.entrypoint), "Cmd": list(plan.cmd) or None,
                   "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [plan.name],
                            "Layers": ["layer/layer.tar"]}]).encode()
    tmp = dest.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        for name, data in (("layer/layer.tar", layer), (config_name, config),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(dest)


def busybox_files(prefix: str = "/bin") -> tuple[ImageFile, ...]:
    applets = run([BUSYBOX, "--list"]).stdout.split()
    links = tuple(ImageFile(PurePosixPath(prefix) / a, link="busybox")
                  for a in applets if a != "busybox")
    return (ImageFile(PurePosixPath(prefix) / "busybox", BUSYBOX), *links)


def parse_ldd(text: str) -> list[PurePosixPath]:
    """The libraries (and the loader) ``ldd`` lists, by the path the binary will look up."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        path = line.split("=>", 1)[1] if "=>" in line else line
        path = path.split("(", 1)[0].strip()
        if path.startswith("/"):
            found.append(PurePosixPath(path))
    return found


def host_binary_files(binary: Path, inside: PurePosixPath) -> tuple[ImageFile, ...]:
    """A dynamically linked host binary (at ``inside``) and every library it loads, at the
    paths it looks them up."""
    libs = parse_ldd(run(["ldd", binary], message=f"ldd {binary} failed").stdout)

    def same(source: Path, path: PurePosixPath) -> ImageFile:  # host's mode: the loader runs
        real = source.resolve()
        return ImageFile(path, real, mode=stat.S_IMODE(real.stat().st_mode))

    return (same(binary, inside), *(same(Path(lib), lib) for lib in libs))


def agnhost_tools() -> tuple[ImageFile, ...]:
    files: dict[PurePosixPath, ImageFile] = {}
    for binary, inside in AGNHOST_TOOLS:
        if binary.exists():
            files.update((f.inside, f) for f in host_binary_files(binary, inside))
    return tuple(files.values())


def pause_plan(name: str, binary: Path) -> ImagePlan:
    return ImagePlan(name, (ImageFile(PurePosixPath("/pause"), binary),), ("/pause",))


def busybox_plan(name: str) -> ImagePlan:
    return ImagePlan(name, busybox_files(), (), ("sh",))


def agnhost_plan(name: str, binary: Path, porter: Path) -> ImagePlan:
    layers = (
        *busybox_files(),
        *agnhost_tools(),  # replaces busybox's /bin/sh link
        ImageFile(PurePosixPath("/agnhost"), binary),
        ImageFile(PurePosixPath("/agnhost-2"), link="agnhost"),
        ImageFile(PurePosixPath("/localhost.crt"), porter / "localhost.crt", mode=0o644),
        ImageFile(PurePosixPath("/localhost.key"), porter / "localhost.key", mode=0o644),
    )
    files = {f.inside: f for f in layers}  # a later file at the same path wins
    return ImagePlan(name, tuple(files.values()), ("/agnhost",), ("pause",))


BuildTool = Callable[[Path, Path, list[str]], None]
"""Runs argv in the builder container, source tree at /src and output folder at /out (a seam)."""


def backend_build_tool(backend: ContainerBackend, image: str) -> BuildTool:
    """Build in a session of the build backend (no network, as the tree's owner)."""

    def build(src: Path, out: Path, argv: list[str]) -> None:
        src, out = src.resolve(), out.resolve()
        owner = src.stat()
        spec = ContainerSpec(
            image=image, user=f"{owner.st_uid}:{owner.st_gid}", network="none",
            env={"HOME": "/tmp", "CGO_ENABLED": "0", "GOFLAGS": "-mod=vendor",
                 "GOCACHE": "/src/_output/local/go/cache"},
            mounts=(Mount(src, PurePosixPath("/src")), Mount(out, PurePosixPath("/out"))),
            workdir=PurePosixPath("/src"),
        )
        with backend.session(spec) as session:
            result = session.run(argv)
        if not result.ok:
            raise BuildError(f"building a test image binary failed: {' '.join(argv)}",
                             details=result.output[-4000:])

    return build


def build_binaries(src: Path, out: Path, tool: BuildTool) -> dict[str, Path]:
    """pause and agnhost built from ``src`` into ``out`` (reused when present)."""
    out.mkdir(parents=True, exist_ok=True)
    os.chown(out, src.stat().st_uid, src.stat().st_gid)
    targets = {
        "pause": ["gcc", "-Os", "-Wall", "-Werror", "-static", "-DVERSION=v3.2-tkedistro",
                  "-o", "/out/pause", "build/pause/linux/pause.c"],
        "agnhost": ["go", "build", "-o", "/out/agnhost", "./test/images/agnhost"],
    }
    for name, argv in targets.items():
        if not (out / name).exists():
            with console.step("conformance_images", f"build {name}"):
                tool(src, out, argv)
    return {name: out / name for name in targets}


# Registries the suite uses for images that must NOT pull (private-registry and bad-name specs).
UNPULLABLE_ON_PURPOSE = ("k8s-authenticated-test", "authenticated-image-pulling", "invalid.com")


def plans(expected: list[str], binaries: dict[str, Path], src: Path) -> list[ImagePlan]:
    found = []
    for image in expected:
        if any(marker in image for marker in UNPULLABLE_ON_PURPOSE):
            continue
        short = short_name(image)
        if short == "pause" and image.endswith(":3.2"):
            found.append(pause_plan(image, binaries["pause"]))
        elif short == "agnhost" and "agnhost" in binaries:
            found.append(agnhost_plan(image, binaries["agnhost"],
                                      src / "test/images/agnhost/porter"))
        elif short == "busybox" and BUSYBOX.exists():
            found.append(busybox_plan(image))
    return found


def load(plan_list: list[ImagePlan], tars: Path, sock: Path) -> list[str]:
    """Write and import each image into containerd's ``k8s.io`` namespace; returns names."""
    tars.mkdir(parents=True, exist_ok=True)
    loaded = []
    for plan in plan_list:
        dest = tars / (short_name(plan.name) + "-" + plan.name.rsplit(":", 1)[-1] + ".tar")
        write_archive(plan, dest)
        run(["ctr", "--address", str(sock), "-n", "k8s.io", "images", "import", dest],
            message=f"importing {plan.name} into containerd failed")
        loaded.append(plan.name)
    return loaded
