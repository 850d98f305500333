"""Pure build planning: a manifest and the user's options become a ``BuildPlan``.

No Docker, no filesystem, no clock: everything here is unit-tested directly. The plan holds
the ``make`` argv (a list, never a shell string), the container environment, the content of
the ``KUBE_GIT_VERSION_FILE`` the Kubernetes Makefile reads, the binaries expected in the tree,
the smoke-check commands and the fingerprint that decides whether a rebuild is needed.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tkedistro.build import pause
from tkedistro.build.targets import Targets, select_targets
from tkedistro.core.errors import BuilderImageError
from tkedistro.core.workspace import output_bin
from tkedistro.model.manifest import Manifest

FINGERPRINT_VERSION = 1

# The conformance tools built beside the components (``--with-conformance-tools``): the e2e
# suite and its runner, from the same patched tree, by the same ``make`` (k8s builds
# ``*.test`` targets with ``go test -c``). Name in ``_output`` -> package in the tree.
CONFORMANCE_TOOLS: Mapping[str, str] = {
    "e2e.test": "test/e2e/e2e.test",
    "ginkgo": "vendor/github.com/onsi/ginkgo/ginkgo",
}

# Where things are inside the builder container. The tree sits where upstream's own build
# container keeps it; the staging dir receives the version file; the cache holds HOME/GOCACHE
# for builds that do not set their own (Kubernetes keeps its Go cache in the tree).
CONTAINER_SRC = PurePosixPath("/go/src/k8s.io/kubernetes")
CONTAINER_WORK = PurePosixPath("/tkedistro/work")
CONTAINER_OUT = PurePosixPath("/tkedistro/out")
CONTAINER_CACHE = PurePosixPath("/tkedistro/cache")
VERSION_FILE_NAME = "kube-git-version"

SMOKE_ARGS: Mapping[str, tuple[str, ...]] = {
    "kubectl": ("version", "--client"),
    "kubeadm": ("version", "-o", "short"),
    "ginkgo": ("version",),
    "pause": ("-v",),
}
# Binaries whose version is not the distro's (ginkgo reports its own): they only must run.
UNSTAMPED = frozenset({"ginkgo"})
DEFAULT_SMOKE_ARGS = ("--version",)
# Built with cgo off (hack/lib/golang.sh KUBE_STATIC_LIBRARIES; pause is -static): they run
# under qemu as they are. The others (the kubelet) need the platform's loader and libc, which
# the builder has for its cross compilers (libc6-dev-<arch>-cross): qemu finds them through
# QEMU_LD_PREFIX.
STATIC_BINARIES = frozenset({"kube-apiserver", "kube-controller-manager", "kube-scheduler",
                             "kube-proxy", "kubeadm", "kubectl", "pause"})
CROSS_LIBC: Mapping[str, PurePosixPath] = {"linux/arm64": PurePosixPath("/usr/aarch64-linux-gnu")}
# How a smoke command runs: on the host's CPU, under qemu-user (binfmt_misc), or not at all
NATIVE, EMULATED, NOT_RUN = "native", "emulated", "not run"

# Commands Kubernetes' `make all` runs in the builder besides `go` (read from the v1.20 tree:
# build/root/Makefile, Makefile.generated_files, hack/lib/*.sh, hack/generate-bindata.sh),
# with why and the Debian package that has each; checked before the build starts.
BUILD_COMMANDS: Mapping[str, tuple[str, str]] = {
    "bash": ("every hack/ script", "bash"),
    "make": ("the Makefile", "make"),
    "gofmt": ("hack/generate-bindata.sh", "golang-go (link gofmt into the PATH)"),
    "rsync": ("hack/lib/golang.sh copies the binaries", "rsync"),
    "find": ("Makefile.generated_files", "findutils"),
    "grep": ("Makefile.generated_files", "grep"),
    "sed": ("hack/lib/*.sh", "sed"),
    "sort": ("hack/lib/golang.sh", "coreutils"),
    "cmp": ("hack/generate-bindata.sh", "diffutils"),
}
# cgo: the host platform's build (the kubelet) needs gcc; other linux platforms their cross
# compiler (hack/lib/golang.sh sets CC when building on linux/amd64)
CGO_COMPILERS: Mapping[str, tuple[str, str]] = {
    "linux/arm64": ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu libc6-dev-arm64-cross"),
    "linux/arm": ("arm-linux-gnueabihf-gcc", "gcc-arm-linux-gnueabihf libc6-dev-armhf-cross"),
    "linux/ppc64le": ("powerpc64le-linux-gnu-gcc",
                      "gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross"),
    "linux/s390x": ("s390x-linux-gnu-gcc", "gcc-s390x-linux-gnu libc6-dev-s390x-cross"),
}

GO_VERSION_RE = re.compile(r"\bgo version go([0-9]+\.[0-9]+(?:\.[0-9]+)?)\S* ")


@dataclass(frozen=True)
class Target:
    """One binary: a component built for a platform (``os/arch``)."""

    component: str
    platform: str

    @property
    def os(self) -> str:
        return self.platform.split("/")[0]

    @property
    def arch(self) -> str:
        return self.platform.split("/")[1]

    @property
    def package(self) -> str:
        """The ``WHAT=`` entry that builds it."""
        return CONFORMANCE_TOOLS.get(self.component, f"cmd/{self.component}")

    @property
    def tree_path(self) -> PurePosixPath:
        """Where the Kubernetes build leaves it, relative to the tree."""
        return PurePosixPath("_output/local/bin", self.os, self.arch, self.component)

    @property
    def output_path(self) -> PurePosixPath:
        """Where it is published, relative to ``_output/<release>``."""
        return output_bin(self.platform) / self.component


@dataclass(frozen=True)
class SmokeCommand:
    target: Target
    argv: tuple[str, ...]
    stamped: bool = True  # must report the distro version (else: only exit 0)
    mode: str = NATIVE  # NATIVE, EMULATED or NOT_RUN
    how: str = "native"  # how it runs (``qemu-aarch64 via binfmt_misc``) or why it does not
    env: tuple[str, ...] = ()  # NAME=value it runs with (through ``env``)

    @property
    def run_argv(self) -> tuple[str, ...]:
        """What the container runs (``env QEMU_LD_PREFIX=... BINARY ARGS`` when needed)."""
        return ("env", *self.env, *self.argv) if self.env else self.argv


@dataclass(frozen=True)
class BuildPlan:
    release: str
    distro_version: str
    image: str
    image_id: str
    go_version: str  # the manifest's pin
    tree_commit: str
    components: tuple[str, ...]
    platforms: tuple[str, ...]
    make_argv: tuple[str, ...]
    env: Mapping[str, str]
    version_file: str
    targets: tuple[Target, ...]
    smoke: tuple[SmokeCommand, ...]
    fingerprint: str
    cpus: float | None = None
    memory: str | None = None
    tools: tuple[str, ...] = ()  # conformance tools built beside the components
    fingerprint_inputs: Mapping[str, object] = field(default_factory=dict)
    # commands the build runs besides go: name -> (why, Debian package); not in the
    # fingerprint (they decide whether the build can run, not what it makes)
    commands: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # run after make_argv in the same container, in the tree: the conformance tools' make for
    # the host platform only (when other platforms are built) and pause's gcc and strip
    extra_argv: tuple[tuple[str, ...], ...] = ()


def version_file(distro_version: str, tree_commit: str) -> str:
    """The ``KUBE_GIT_VERSION_FILE`` content (sourced by hack/lib/version.sh)."""
    major, minor = distro_version.lstrip("v").split(".")[:2]
    values = {
        "KUBE_GIT_VERSION": distro_version,
        "KUBE_GIT_COMMIT": tree_commit,
        "KUBE_GIT_TREE_STATE": "clean",
        "KUBE_GIT_MAJOR": major,
        "KUBE_GIT_MINOR": minor,
    }
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def make_argv(components: Sequence[str], platforms: Sequence[str],
              tools: Sequence[str] = ()) -> tuple[str, ...]:
    what = " ".join([*(f"cmd/{component}" for component in components),
                     *(CONFORMANCE_TOOLS[tool] for tool in tools)])
    return ("make", "all", f"WHAT={what}", f"KUBE_BUILD_PLATFORMS={' '.join(platforms)}")


def container_env(source_date_epoch: int) -> dict[str, str]:
    return {
        "KUBE_GIT_VERSION_FILE": str(CONTAINER_WORK / VERSION_FILE_NAME),
        "SOURCE_DATE_EPOCH": str(source_date_epoch),
        "HOME": str(CONTAINER_CACHE / "home"),
        "GOCACHE": str(CONTAINER_CACHE / "go-build"),
        "GOFLAGS": "",
        "KUBE_VERBOSE": "1",
    }


def smoke_commands(targets: Sequence[Target], host_platform: str,
                   runnable: Mapping[str, tuple[bool, str]] | None = None
                   ) -> tuple[SmokeCommand, ...]:
    """A command that prints the version of each binary: natively for the host platform, under
    emulation where ``runnable`` (``emulation.can_run`` per platform) says it works, else one
    that is not run and says why."""
    commands = []
    for target in targets:
        argv = (str(CONTAINER_OUT / target.output_path),
                *SMOKE_ARGS.get(target.component, DEFAULT_SMOKE_ARGS))
        stamped = target.component not in UNSTAMPED
        if target.platform == host_platform:
            commands.append(SmokeCommand(target, argv, stamped))
            continue
        ok, how = (runnable or {}).get(
            target.platform, (False, f"{target.platform} binaries do not run on {host_platform}"))
        libc = CROSS_LIBC.get(target.platform)
        env = (f"QEMU_LD_PREFIX={libc}",) if (
            ok and libc and target.component not in STATIC_BINARIES) else ()
        commands.append(SmokeCommand(target, argv, stamped, EMULATED if ok else NOT_RUN, how,
                                     env))
    return tuple(commands)


def fingerprint(inputs: Mapping[str, object]) -> str:
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def plan_targets(comps: Sequence[str], plats: Sequence[str], tools: Sequence[str],
                 host_platform: str, with_pause: bool) -> tuple[Target, ...]:
    """Per platform: the components, the conformance tools (host platform only), pause."""
    targets: list[Target] = []
    for plat in plats:
        names = (*comps, *(tools if plat == host_platform else ()),
                 *(("pause",) if with_pause else ()))
        targets.extend(Target(name, plat) for name in names)
    if tools and host_platform not in plats:
        targets.extend(Target(tool, host_platform) for tool in tools)
    return tuple(targets)


def plan_build(
    manifest: Manifest,
    *,
    tree_commit: str,
    source_date_epoch: int,
    image: str,
    image_id: str,
    host_platform: str,
    components: Sequence[str] = (),
    platforms: Sequence[str] = (),
    selected: Targets | None = None,
    cpus: float | None = None,
    memory: str | None = None,
    conformance_tools: bool = False,
    runnable: Mapping[str, tuple[bool, str]] | None = None,
    pause_tag: str | None = None,
) -> BuildPlan:
    """``runnable``: ``emulation.can_run`` of each platform; ``pause_tag``: the ``TAG`` of the
    tree's build/pause/Makefile (needed when the manifest's ``images:`` has pause);
    ``selected``: the targets already selected (else selected from ``components``/``platforms``)."""
    comps, plats = selected or select_targets(manifest, components, platforms)
    tools = tuple(CONFORMANCE_TOOLS) if conformance_tools else ()
    with_pause = "pause" in manifest.images
    targets = plan_targets(comps, plats, tools, host_platform, with_pause)
    # the tools only for the host platform: one make for them when others are built
    split = bool(tools) and tuple(plats) != (host_platform,)
    argv = make_argv(comps, plats, () if split else tools)
    extra = [make_argv((), (host_platform,), tools)] if split else []
    if with_pause:
        extra.extend(pause.all_argvs(plats, host_platform, pause_tag, manifest.distro_version,
                                     CGO_COMPILERS))
    env = container_env(source_date_epoch)
    content = version_file(manifest.distro_version, tree_commit)
    smoke = smoke_commands(targets, host_platform, runnable)
    inputs: dict[str, object] = {
        "fingerprint_version": FINGERPRINT_VERSION,
        "tree_commit": tree_commit,
        "image_id": image_id,  # an image id fixes its Go version
        "make_argv": list(argv),
        "env": env,
        "version_file": content,
        "components": list(comps),
        "platforms": list(plats),
    }
    # each key below is absent when it does not apply: earlier fingerprints stay valid
    if tools:
        inputs["tools"] = list(tools)
    if extra:
        inputs["extra_argv"] = [list(a) for a in extra]
    if foreign := {c.target.platform: c.mode for c in smoke if c.mode != NATIVE}:
        inputs["smoke"] = foreign  # a build whose binaries could not be run is redone
    return BuildPlan(
        release=manifest.release,
        distro_version=manifest.distro_version,
        image=image,
        image_id=image_id,
        go_version=manifest.go.version,
        tree_commit=tree_commit,
        components=comps,
        platforms=plats,
        make_argv=argv,
        tools=tools,
        env=env,
        version_file=content,
        targets=targets,
        smoke=smoke,
        fingerprint=fingerprint(inputs),
        cpus=cpus,
        memory=memory,
        fingerprint_inputs=inputs,
        commands=builder_commands(plats, host_platform, pause=with_pause),
        extra_argv=tuple(extra),
    )


def builder_commands(platforms: Sequence[str], host_platform: str,
                     pause: bool = False) -> dict[str, tuple[str, str]]:
    """Every command the build runs in the builder (besides ``go``): name -> (why, package)."""
    needed = dict(BUILD_COMMANDS)
    for target in platforms:
        if target == host_platform:
            needed["gcc"] = (f"cgo for {target} (the kubelet)", "gcc libc6-dev")
            if pause:
                needed["strip"] = (f"pause for {target}", "binutils")
        elif host_platform == "linux/amd64" and target in CGO_COMPILERS:
            compiler, package = CGO_COMPILERS[target]
            needed[compiler] = (f"cgo for {target} (the kubelet)", package)
            if pause:
                strip = compiler.removesuffix("gcc") + "strip"
                needed[strip] = (f"pause for {target}", package.split()[0])
    return needed


def check_builder_commands(needed: Mapping[str, tuple[str, str]], missing: Sequence[str],
                           image: str, release: str = "RELEASE") -> None:
    """``BuilderImageError`` naming each command of ``needed`` the image lacks."""
    absent = [name for name in needed if name in missing]
    if not absent:
        return
    packages = " ".join(dict.fromkeys(needed[name][1].split(" (")[0] for name in absent))
    raise BuilderImageError(
        f"builder image {image} lacks {', '.join(absent)}, which the build runs; "
        "nothing was built",
        details="\n".join(f"  {name}: {needed[name][0]} (Debian package {needed[name][1]})"
                          for name in absent),
        hint=f"make it again offline with `sudo tkedistro builder-image {release} --force "
        f"--image {image}`, or add "
        f"`apt-get install -y {packages}` to the image, or pass --builder-image with one "
        "that has them",
    )


def parse_go_version(output: str) -> str | None:
    """``go version go1.15.15 linux/amd64`` -> ``1.15.15``."""
    match = GO_VERSION_RE.search(output + " ")
    return match.group(1) if match else None


def check_go_version(pinned: str, go_version_output: str, image: str,
                     release: str = "RELEASE") -> str:
    """The builder's Go version; ``BuilderImageError`` when it is not the pinned one.

    A pin of ``1.15`` accepts any 1.15.x; ``1.15.15`` only that release.
    """
    found = parse_go_version(go_version_output)
    if found is not None and (found == pinned or found.startswith(pinned + ".")):
        return found
    shown = found or f"unknown ({go_version_output.strip()[:200] or 'no output'})"
    raise BuilderImageError(
        f"builder image {image} has Go {shown}, but the manifest pins go.version {pinned}",
        details="Kubernetes releases must be built with the Go line upstream used: v1.20 "
        "built with Go >= 1.18 compiles, but the binaries crash at run time "
        "(vendored modern-go/reflect2).",
        hint=f"make a matching image offline with `sudo tkedistro builder-image {release} "
        f"--force --image {image}`, or pass --builder-image with one that has Go " + pinned,
    )
