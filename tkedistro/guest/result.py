"""What a run brings back from the guest's work folder: the command's stdout, stderr and exit
code, and where the time went (``timings``, written by the guest's runner with
``/proc/uptime`` and systemd's timestamps of ``docker.service``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tkedistro.core import files
from tkedistro.core.errors import GuestError

CONSOLE_TAIL_LINES = 40


@dataclass(frozen=True)
class GuestResult:
    exit_code: int
    stdout: str
    stderr: str
    run_dir: Path  # the run's work folder and console log stay here for diagnosis
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def console_log(self) -> Path:
        return self.run_dir / "console.log"

    def timing_line(self) -> str:
        """``boot 43.2 s (Docker 15.4 s), images 0.4 s, command 1.4 s, total 50.3 s``."""
        names = (("boot_s", "boot"), ("load_s", "images"), ("command_s", "command"),
                 ("total_s", "total"))
        parts = [f"{label} {self.timings[key]:.1f} s" for key, label in names
                 if key in self.timings]
        if "docker_start_s" in self.timings and parts and "boot_s" in self.timings:
            parts[0] += f" (Docker {self.timings['docker_start_s']:.1f} s)"
        return ", ".join(parts)


def parse_timings(text: str) -> dict[str, float]:
    """Seconds from boot to the command's start (``boot_s``, Docker's start included), Docker's
    own start (``docker_start_s``), loading images (``load_s``) and the command
    (``command_s``). A line the runner did not write leaves its entries out."""
    marks: dict[str, float] = {}
    docker: list[int] = []
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == "docker_monotonic_us":
            docker = [int(v) for v in value.split() if v.isdigit()]
        elif value.strip():
            try:
                marks[name] = float(value)
            except ValueError:
                continue
    found: dict[str, float] = {}
    start = marks.get("command_service_start")
    if start is not None:
        found["boot_s"] = start
    if len(docker) == 2 and 0 < docker[0] <= docker[1]:
        found["docker_start_s"] = round((docker[1] - docker[0]) / 1e6, 2)
    if start is not None and "images_loaded" in marks:
        found["load_s"] = round(marks["images_loaded"] - start, 2)
    if "images_loaded" in marks and "command_done" in marks:
        found["command_s"] = round(marks["command_done"] - marks["images_loaded"], 2)
    return found


def parse_exit_code(text: str) -> int | None:
    value = text.strip()
    return int(value) if value.isdigit() else None


def read_result(run_dir: Path, wall_s: float) -> GuestResult:
    """The run's result; ``GuestError`` (with the console's last lines) when the guest did not
    get as far as writing an exit code."""
    work = run_dir / "work"
    code = parse_exit_code(_read(work / "exit-code"))
    if code is None:
        problem = _read(work / "setup-error").strip() or "the guest wrote no exit code"
        raise GuestError(f"the guest did not run the command: {problem} "
                         f"(console log: {run_dir / 'console.log'})",
                         details=files.log_tail(run_dir / "console.log", CONSOLE_TAIL_LINES),
                         hint="read the console log; `tkedistro guest build --force` makes the "
                              "guest anew")
    timings = parse_timings(_read(work / "timings"))
    timings["total_s"] = round(wall_s, 2)
    return GuestResult(code, _read(work / "stdout"), _read(work / "stderr"), run_dir, timings)


def _read(path: Path) -> str:
    if not path.is_file():
        return ""
    return files.read_bytes(path).decode(errors="replace")
