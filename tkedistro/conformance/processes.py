"""Long-running services of the local cluster: started in their own session, logged, stopped.

``runner.run`` is for commands that finish; the cluster's daemons need a handle that lives
while the suite runs, so they get this small supervisor instead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tkedistro.core import console
from tkedistro.core.errors import ClusterError
from tkedistro.core.files import log_tail
from tkedistro.core.runner import clean_env


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    _handle: IO[bytes]

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        return log_tail(self.log, lines)


@dataclass
class Supervisor:
    """Starts services in start order; ``stop_all`` stops them in reverse order."""

    log_dir: Path
    services: list[Service] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str | os.PathLike[str]]) -> Service:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        handle = log.open("ab")
        args = [os.fspath(a) for a in argv]
        console.verbose(f"$ {' '.join(args)}   (log: {log})")
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=handle,
                                stderr=subprocess.STDOUT, env=clean_env(),
                                start_new_session=True)
        service = Service(name, proc, log, handle)
        self.services.append(service)
        return service

    def check_alive(self) -> None:
        for service in self.services:
            if not service.alive():
                raise ClusterError(
                    f"{service.name} exited with code {service.process.returncode}",
                    details=service.tail(), hint=f"full log: {service.log}",
                )

    def stop(self, service: Service, grace: float = 10.0) -> None:
        if service.alive():
            _signal_group(service.process.pid, signal.SIGTERM)
            try:
                service.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(service.process.pid, signal.SIGKILL)
                service.process.wait(timeout=grace)
        _signal_group(service.process.pid, signal.SIGKILL)  # stragglers of its session
        _wait_group_gone(service.process.pid)
        service._handle.close()

    def stop_all(self) -> None:
        while self.services:
            self.stop(self.services.pop())


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_group_gone(pgid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)


def pids_matching(needle: str) -> list[int]:
    """PIDs whose command line contains ``needle`` (shims re-parented to init, etc.)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline:
            found.append(int(entry.name))
    return found


def kill_pids(pids: Sequence[int], wait: float = 5.0) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.1)
