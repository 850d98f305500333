"""qemu's command line for one run: software emulation (TCG, ``-cpu max``; KVM does not work
on this host), no network, the run's overlay as the root disk, the serial console to a file,
the shares over 9p, and a kernel command line that boots cgroup v2 and runs the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tkedistro.guest.share import WORK_TAG, Share, qemu_escape, tag_of, virtfs_arg

QEMU = "qemu-system-x86_64"
DEFAULT_SMP = 2
DEFAULT_MEMORY_MB = 8192
CMDLINE = ("root=/dev/vda", "rw", "console=ttyS0", "systemd.unified_cgroup_hierarchy=1",
           "tkedistro.run=1", "panic=-1", "mitigations=off")


@dataclass(frozen=True)
class MachineSpec:
    smp: int = DEFAULT_SMP
    memory_mb: int = DEFAULT_MEMORY_MB


@dataclass(frozen=True)
class RunFiles:
    """One run's files on the host: boot files, its disk overlay, console log, work folder."""

    vmlinuz: Path
    initrd: Path
    overlay: Path
    console_log: Path
    work: Path


def kernel_cmdline() -> str:
    return " ".join(CMDLINE)


def qemu_argv(run: RunFiles, shares: list[Share] | tuple[Share, ...],
              spec: MachineSpec | None = None) -> list[str]:
    """The whole qemu command line (an argv list; paths are escaped for qemu's options)."""
    spec = spec or MachineSpec()
    argv = [QEMU, "-accel", "tcg", "-cpu", "max", "-smp", str(spec.smp),
            "-m", str(spec.memory_mb), "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-nic", "none", "-device", "virtio-rng-pci",
            "-kernel", str(run.vmlinuz), "-initrd", str(run.initrd),
            "-append", kernel_cmdline(),
            "-drive", f"file={qemu_escape(str(run.overlay))},format=qcow2,if=virtio,"
                      "cache=unsafe",
            "-chardev", f"file,id=console,path={qemu_escape(str(run.console_log))}",
            "-serial", "chardev:console",
            "-virtfs", virtfs_arg(run.work, WORK_TAG, readonly=False)]
    for index, share in enumerate(shares):
        argv += ["-virtfs", virtfs_arg(share.host, tag_of(index), share.readonly)]
    return argv
