"""The host's Debian packages and binfmt_misc entries: the one list, what is missing, the fix.

``missing_packages`` is the union of the local cluster's packages (``CLUSTER_TOOLS``), Debian's
archive keyring (every debootstrap verifies the Release signature against it), the OCI image
tools (buildah, skopeo) and, when a release has a platform this host does not run natively,
qemu-user-static and binfmt-support. The emulation entry (``qemu-aarch64`` for linux/arm64)
must be registered with the F flag (``engine/emulation.py`` says whether it is).

Ubuntu 24.04 and 26.04 differ: on 26.04 ``qemu-user-static`` is a virtual package (providers
``qemu-user-binfmt``, ``qemu-user-binfmt-hwe``, and apt refuses a virtual package with several
providers), so each package is looked up with ``apt-cache showpkg`` first and a virtual one
replaced by a real provider (not the ``-hwe`` one); and qemu >= 10 registers binfmt through
``binfmt.d`` (``/usr/lib/binfmt.d/qemu-aarch64.conf``), whose line is written to binfmt_misc's
``register`` here, where older hosts use ``update-binfmts --enable``. A package apt does not
know (``docker-registry`` is in Ubuntu's universe) is named with the fix.
Every command is an argv list through ``core.runner.run``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core.errors import HostNotReadyError
from tkedistro.core.runner import run
from tkedistro.debian import debootstrap
from tkedistro.engine import emulation

BINFMT_CONF_DIRS = (Path("/etc/binfmt.d"), Path("/run/binfmt.d"), Path("/usr/lib/binfmt.d"))


@dataclass(frozen=True)
class Requirement:
    """A program this host runs (or a file it reads), and the Debian package that has it.

    ``file``: present when that file exists (the keyring); ``binfmt``: also present when a
    ``binfmt.d`` file of that name exists (qemu >= 10 ships no ``qemu-aarch64-static``)."""

    program: str
    package: str
    file: Path | None = None
    binfmt: str = ""

    def present(self) -> bool:
        if self.file is not None:
            return self.file.is_file()
        if self.binfmt and binfmt_conf(self.binfmt) is not None:
            return True
        return shutil.which(self.program) is not None


# the node image, the upstream images' Debian base, and the local registry they are served
# from (the nodes bring containerd, CNI plugins and iptables in their image)
CLUSTER_TOOLS = (Requirement("debootstrap", "debootstrap"),
                 Requirement("docker-registry", "docker-registry"))
# OCI images: made with buildah, copied and inspected with skopeo
IMAGE_TOOLS = (Requirement("buildah", "buildah"), Requirement("skopeo", "skopeo"))
# another platform's binaries under qemu-user (the smoke check, a foreign Debian base)
EMULATION_TOOLS = (Requirement("update-binfmts", "binfmt-support"),)
# no package of this name: apt-get install would fail; say where it is
UNIVERSE_HINT = ("on Ubuntu, docker-registry, buildah, skopeo and qemu-user-static are in the "
                 "universe component: `sudo add-apt-repository universe` (or add universe to "
                 "the sources), then run host-setup again")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


def foreign_platforms(platforms: Iterable[str]) -> list[str]:
    """The platforms this host runs only under emulation (sorted, unique)."""
    own = emulation.host_platform()
    return sorted({p for p in platforms if p != own})


def qemu_name(platform: str) -> str:
    """``linux/arm64`` -> ``qemu-aarch64`` (its binfmt_misc entry and ``-static`` binary)."""
    arch = emulation.platform_arch(platform)
    return f"qemu-{emulation.QEMU_NAME.get(arch, arch)}"


def requirements(foreign: Sequence[str]) -> list[Requirement]:
    """Every program this host needs and the Debian package that has it."""
    # every debootstrap verifies the Release signature against Debian's archive keyring
    keyring = Requirement(debootstrap.KEYRING.name, debootstrap.KEYRING_PACKAGE,
                          file=debootstrap.KEYRING)
    needed = [*CLUSTER_TOOLS, keyring, *IMAGE_TOOLS]
    if foreign:
        needed += [Requirement(f"{qemu_name(p)}-static", "qemu-user-static",
                               binfmt=qemu_name(p)) for p in foreign]
        needed += list(EMULATION_TOOLS)
    return needed


def missing_packages(foreign: Sequence[str]) -> list[str]:
    """The Debian packages to install, one per missing program (sorted, unique)."""
    return sorted({r.package for r in requirements(foreign) if not r.present()})


def install_packages(packages: Sequence[str]) -> list[str]:
    """``apt-get update``, then ``apt-get install -y --no-install-recommends`` of ``packages``
    with each virtual one replaced by a real provider; what was installed."""
    if shutil.which("apt-get") is None:
        raise HostNotReadyError(
            "missing host packages: " + ", ".join(packages) + ", and this host has no apt-get",
            hint="install them with this system's package manager (Debian/Ubuntu names)")
    run(["apt-get", "update", "-qq"], env=APT_ENV, message="apt-get update failed")
    found = run(["apt-cache", "showpkg", *packages], env=APT_ENV,
                message="apt-cache showpkg " + " ".join(packages) + " failed")
    real = resolve_packages(packages, found.stdout)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *real], env=APT_ENV,
        message="apt-get install " + " ".join(real) + " failed")
    return real


def resolve_packages(packages: Sequence[str], showpkg: str) -> list[str]:
    """``packages`` with each virtual one (``apt-cache showpkg`` output: no versions, reverse
    provides) replaced by a real provider; a package apt does not know is an error."""
    entries = parse_showpkg(showpkg)
    unknown = [name for name in packages if name not in entries]
    if unknown:
        raise HostNotReadyError("apt knows no package " + ", ".join(unknown) + " (after "
                                "apt-get update)", hint=UNIVERSE_HINT)
    real = []
    for name in packages:
        has_versions, providers = entries[name]
        if has_versions:
            real.append(name)
        elif providers:
            real.append(pick_provider(providers))
        else:
            raise HostNotReadyError(f"apt has no installable {name}: a virtual package no "
                                    "package provides", hint=UNIVERSE_HINT)
    return real


SHOWPKG_SECTIONS = ("Versions", "Reverse Depends", "Dependencies", "Provides",
                    "Reverse Provides")


def parse_showpkg(text: str) -> dict[str, tuple[bool, list[str]]]:
    """``apt-cache showpkg A B`` -> {package: (has versions, providers)}; a package apt
    does not know has no entry."""
    entries: dict[str, tuple[bool, list[str]]] = {}
    name, section = "", ""
    for line in text.splitlines():
        if line.startswith("Package: "):
            name, section = line.split(":", 1)[1].strip(), ""
            entries[name] = (False, [])
        elif not name or not line.strip():
            continue
        elif line.rstrip().endswith(":") and line.rstrip()[:-1] in SHOWPKG_SECTIONS:
            section = line.rstrip()[:-1]
        elif section == "Versions" and not line[0].isspace():
            entries[name] = (True, entries[name][1])
        elif section == "Reverse Provides":
            entries[name][1].append(line.split()[0])
    return entries


def pick_provider(providers: Sequence[str]) -> str:
    """A real package for a virtual one: not a ``-hwe`` variant when another exists (26.04's
    ``qemu-user-static``: ``qemu-user-binfmt`` over ``qemu-user-binfmt-hwe``)."""
    names = sorted(set(providers))
    plain = [name for name in names if not name.endswith("-hwe") and "-hwe-" not in name]
    return (plain or names)[0]


def binfmt_problems(foreign: Sequence[str],
                    binfmt_dir: Path = emulation.BINFMT_DIR) -> dict[str, str]:
    """Each foreign platform that cannot run here -> why (and what to do)."""
    problems = {}
    for platform in foreign:
        able, why = emulation.can_run(platform, binfmt_dir)
        if not able:
            problems[platform] = why
    return problems


def binfmt_conf(name: str, conf_dirs: Sequence[Path] | None = None) -> Path | None:
    """The ``binfmt.d`` file that registers ``name`` (``qemu-aarch64.conf``; qemu >= 10 and
    Debian's qemu-user-static ship one), first of ``/etc``, ``/run``, ``/usr/lib``."""
    for folder in conf_dirs if conf_dirs is not None else BINFMT_CONF_DIRS:
        if (folder / f"{name}.conf").is_file():
            return folder / f"{name}.conf"
    return None


def binfmt_line(conf: Path, name: str) -> str | None:
    """The registration line for ``name`` in a ``binfmt.d`` file (``:name:M::magic:mask:
    interpreter:flags``), as the kernel's ``register`` file takes it."""
    try:
        text = conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(":") and line.split(":")[1:2] == [name]:
            return line
    return None


# (argv, what it reads on stdin): a step of registering an emulator
Step = tuple[list[str], str | None]


def binfmt_fix(platform: str, binfmt_dir: Path = emulation.BINFMT_DIR,
               conf_dirs: Sequence[Path] | None = None) -> list[Step]:
    """The commands that register ``platform``'s qemu-user with binfmt_misc, the way this
    host's qemu does: its ``binfmt.d`` line written to ``register`` (an entry left disabled
    or without the F flag removed first), else ``update-binfmts --enable``."""
    name = qemu_name(platform)
    steps: list[Step] = []
    if not (binfmt_dir / "status").exists():
        steps.append((["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt_dir)], None))
    conf = binfmt_conf(name, conf_dirs)
    line = binfmt_line(conf, name) if conf else None
    if line is None:
        return [*steps, (["update-binfmts", "--enable", name], None)]
    if (binfmt_dir / name).exists():
        steps.append((["tee", str(binfmt_dir / name)], "-1\n"))
    return [*steps, (["tee", str(binfmt_dir / "register")], line + "\n")]


def register_binfmt(platform: str, binfmt_dir: Path = emulation.BINFMT_DIR,
                    conf_dirs: Sequence[Path] | None = None) -> None:
    for argv, stdin in binfmt_fix(platform, binfmt_dir, conf_dirs):
        run(argv, input=stdin, message=f"registering {qemu_name(platform)} with binfmt_misc "
                                       "failed",
            hint="an unprivileged container cannot: run it on the host, or build only the "
                 "host's platform")
