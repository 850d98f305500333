"""Smoke check: run every binary and check its stamped version: the host platform's natively,
another platform's under qemu-user (binfmt_misc, ``emulation.py``) when this host has it, and
otherwise not at all, which the result says (those binaries are not checked).

ginkgo (a conformance tool) reports its own version, not the distro's: it only has to run.

A Kubernetes v1.20 binary built with the wrong Go can compile and still crash when run, and a
binary built without the version file reports ``v0.0.0-master``: both fail the build here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tkedistro.build.plan import EMULATED, NATIVE, NOT_RUN, SmokeCommand
from tkedistro.core.errors import SmokeCheckError
from tkedistro.engine.protocols import Session

VERSION_RE = re.compile(r"v[0-9]+\.[0-9]+\.[0-9]+[0-9A-Za-z.+-]*")


@dataclass(frozen=True)
class SmokeResult:
    component: str
    platform: str
    argv: tuple[str, ...]
    exit_code: int | None  # None: not run
    output: str
    version: str | None
    stamped: bool = True
    mode: str = NATIVE  # NATIVE, EMULATED or NOT_RUN
    how: str = "native"  # ``qemu-aarch64 via binfmt_misc``, or why it was not run
    env: tuple[str, ...] = ()  # NAME=value it ran with

    @property
    def command(self) -> str:
        return " ".join(("env", *self.env, *self.argv) if self.env else self.argv)

    @property
    def checked(self) -> bool:
        return self.mode != NOT_RUN

    def to_json(self) -> dict[str, object]:
        return {
            "component": self.component,
            "platform": self.platform,
            "command": self.command,
            "exit_code": self.exit_code,
            "version": self.version,
            "run": self.mode,
            "how": self.how,
        }

    def summary(self) -> str:
        """``v1.20.2-tke.1``, ``exit 0`` (unstamped) or ``not run``, as the text output shows it."""
        if not self.checked:
            return "not run"
        return (self.version or "no version") if self.stamped else "exit 0"


def not_run_lines(results: Sequence[SmokeResult]) -> list[str]:
    """One line per platform whose binaries were not run, saying why and that they are not
    checked."""
    lines = []
    for platform in dict.fromkeys(r.platform for r in results if not r.checked):
        skipped = [r for r in results if r.platform == platform and not r.checked]
        count = f"{len(skipped)} binar{'y' if len(skipped) == 1 else 'ies'}"
        lines.append(f"{platform}: {count} not run ({skipped[0].how}); they are not checked")
    return lines


def smoke_detail(commands: Sequence[SmokeCommand]) -> str:
    """What the smoke_check step announces: ``10 binaries (4 under qemu)``."""
    emulated = sum(c.mode == EMULATED for c in commands)
    skipped = sum(c.mode == NOT_RUN for c in commands)
    parts = [*([f"{emulated} under qemu"] if emulated else []),
             *([f"{skipped} not run"] if skipped else [])]
    return f"{len(commands)} binaries" + (f" ({', '.join(parts)})" if parts else "")


def reported_version(output: str, expected: str) -> str | None:
    """``expected`` when the output names exactly it, else the first version it names."""
    exact = re.search(re.escape(expected) + r"(?![0-9A-Za-z.+-])", output)
    if exact:
        return expected
    other = VERSION_RE.search(output)
    return other.group(0) if other else None


def _problem(result: SmokeResult, expected: str) -> str | None:
    tail = "\n".join(result.output.strip().splitlines()[-5:])
    if result.exit_code is None:
        return None
    if result.exit_code != 0:
        return f"{result.component} ({result.platform}): `{' '.join(result.argv[1:])}` " \
               f"exited {result.exit_code}\n{tail}"
    if result.stamped and result.version != expected:
        return f"{result.component} ({result.platform}): reports " \
               f"{result.version or 'no version'}, expected {expected}\n{tail}"
    return None


def run_smoke_check(
    session: Session, commands: Sequence[SmokeCommand], expected: str
) -> list[SmokeResult]:
    """Run each command in the builder container; ``SmokeCheckError`` lists every failure."""
    results = []
    for command in commands:
        target = command.target
        if command.mode == NOT_RUN:
            results.append(SmokeResult(target.component, target.platform, command.argv, None,
                                       "", None, command.stamped, command.mode, command.how))
            continue
        run = session.run(command.run_argv)
        results.append(
            SmokeResult(
                component=target.component,
                platform=target.platform,
                argv=command.argv,
                exit_code=run.exit_code,
                output=run.output,
                version=reported_version(run.output, expected),
                stamped=command.stamped,
                mode=command.mode,
                how=command.how,
                env=command.env,
            )
        )
    problems = [p for r in results if (p := _problem(r, expected))]
    if problems:
        raise SmokeCheckError(
            f"smoke check failed: {len(problems)} of {len(results)} binaries",
            details="\n".join(problems),
            hint="a binary that crashes usually means a wrong Go version in the builder image; "
            "a wrong version means KUBE_GIT_VERSION_FILE was not honoured; an emulated one "
            "that cannot start (exec format error) means qemu's binfmt entry lacks the F flag "
            "(tkedistro doctor)",
        )
    return results
