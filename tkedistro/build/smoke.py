"""Smoke check: run every binary built for the host platform and check its stamped version.

ginkgo (a conformance tool) reports its own version, not the distro's: it only has to run.

A Kubernetes v1.20 binary built with the wrong Go can compile and still crash when run, and a
binary built without the version file reports ``v0.0.0-master``: both fail the build here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tkedistro.build.backend import Session
from tkedistro.build.plan import SmokeCommand
from tkedistro.core.errors import SmokeCheckError

VERSION_RE = re.compile(r"v\d+\.\d+\.\d+[0-9A-Za-z.+-]*")


@dataclass(frozen=True)
class SmokeResult:
    component: str
    platform: str
    argv: tuple[str, ...]
    exit_code: int
    output: str
    version: str | None
    stamped: bool = True

    def to_json(self) -> dict[str, object]:
        return {
            "component": self.component,
            "platform": self.platform,
            "command": " ".join(self.argv),
            "exit_code": self.exit_code,
            "version": self.version,
        }


def reported_version(output: str, expected: str) -> str | None:
    """``expected`` when the output names exactly it, else the first version it names."""
    exact = re.search(re.escape(expected) + r"(?![0-9A-Za-z.+-])", output)
    if exact:
        return expected
    other = VERSION_RE.search(output)
    return other.group(0) if other else None


def _problem(result: SmokeResult, expected: str) -> str | None:
    tail = "\n".join(result.output.strip().splitlines()[-5:])
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
        run = session.run(command.argv)
        results.append(
            SmokeResult(
                component=command.target.component,
                platform=command.target.platform,
                argv=command.argv,
                exit_code=run.exit_code,
                output=run.output,
                version=reported_version(run.output, expected),
                stamped=command.stamped,
            )
        )
    problems = [p for r in results if (p := _problem(r, expected))]
    if problems:
        raise SmokeCheckError(
            f"smoke check failed: {len(problems)} of {len(results)} binaries",
            details="\n".join(problems),
            hint="a binary that crashes usually means a wrong Go version in the builder image; "
            "a wrong version means KUBE_GIT_VERSION_FILE was not honoured",
        )
    return results
