"""A stand-in for a GitHub-hosted runner: the `run:` steps of one job of a rendered workflow,
in order, as the runner runs them: as a non-root user with passwordless sudo, through
`bash --noprofile --norc -eo pipefail`, with `GITHUB_ENV`, `GITHUB_PATH`,
`GITHUB_STEP_SUMMARY` and `RUNNER_TEMP` honoured between steps, `if:` conditions
(`always()`, `failure()`, `success()`, `steps.<id>.outputs.<name>` compared with `==`/`!=`)
evaluated, and the `uses:` steps that need GitHub itself replaced by small stand-ins:

- checkout: the workspace already is the repository (made by the test, owned by the user);
- setup-python: the host's python3 as `python` first on PATH;
- cache/restore: always a miss (``cache-hit`` false, ``cache-primary-key`` = the key);
- cache/save, upload-artifact: the path must exist; it is recorded, nothing is sent.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SYSTEM_PYTHON = "/usr/bin/python3"  # what setup-python would provide: any python the user runs
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class StepResult:
    name: str
    outcome: str  # success, failure, skipped
    seconds: float = 0.0
    code: int | None = None
    output: str = ""


@dataclass
class Runner:
    user: str
    workspace: Path
    home: Path
    temp: Path
    replace: Mapping[str, str] = field(default_factory=dict)  # step name -> script
    env: dict[str, str] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    uploaded: list[Path] = field(default_factory=list)
    failed: bool = False

    def files(self) -> dict[str, Path]:
        return {name: self.temp / f"_{name}" for name in ("env", "path", "summary", "output")}

    def run_job(self, job: Mapping[str, Any]) -> list[StepResult]:
        files = self.files()
        for path in files.values():
            path.write_text("")
            os.chown(path, *_ids(self.user))
        return [self._step(step, index) for index, step in enumerate(job["steps"])]

    def _step(self, step: Mapping[str, Any], index: int) -> StepResult:
        name = str(step.get("name") or step.get("uses") or f"step {index}")
        if not self._condition(step.get("if")):
            return StepResult(name, "skipped")
        started = time.monotonic()
        if "uses" in step:
            code, output = self._uses(step)
        else:
            code, output = self._run(self.replace.get(name, str(step["run"])))
        outcome = "success" if code == 0 else "failure"
        if code != 0 and not step.get("continue-on-error"):
            self.failed = True
        return StepResult(name, outcome, time.monotonic() - started, code, output)

    def _condition(self, text: object) -> bool:
        if text is None:
            return not self.failed
        expr = str(text)
        expr = re.sub(r"\balways\(\)", "True", expr)
        expr = re.sub(r"\bfailure\(\)", str(self.failed), expr)
        expr = re.sub(r"\bsuccess\(\)", str(not self.failed), expr)
        expr = re.sub(r"steps\.([\w-]+)\.outputs\.([\w-]+)",
                      lambda m: repr(self.outputs.get(m.group(1), {}).get(m.group(2), "")), expr)
        expr = expr.replace("&&", " and ").replace("||", " or ").replace("!=", " != ")
        if not re.fullmatch(r"[\w\s'\"=!.()-]*", expr):
            raise AssertionError(f"cannot evaluate if: {text}")
        result = eval(expr, {"__builtins__": {}}, {})  # noqa: S307 - the test's own YAML
        return bool(result) if "always" in str(text) or "failure" in str(text) \
            else bool(result) and not self.failed

    def _expand(self, value: str) -> Path:
        value = value.replace("${{ runner.temp }}", str(self.temp))
        return Path(value.replace("~", str(self.home), 1) if value.startswith("~") else value)

    def _uses(self, step: Mapping[str, Any]) -> tuple[int, str]:
        action = str(step["uses"]).split("@")[0]
        given = step.get("with") or {}
        if action == "actions/cache/restore":
            self.outputs[str(step["id"])] = {"cache-hit": "false",
                                             "cache-primary-key": str(given["key"])}
            return 0, "cache miss (stand-in)"
        if action in ("actions/cache/save", "actions/upload-artifact"):
            path = self._expand(str(given["path"]).strip())
            if not path.exists():
                return (0, f"{path}: nothing to save") if action.endswith("save") else \
                    (1, f"{path}: missing")
            self.uploaded.append(path)
            return 0, f"{action}: {path}"
        if action == "actions/setup-python":  # puts `python` on PATH, as the action does
            tool = self.temp / "_python" / "bin"
            tool.mkdir(parents=True, exist_ok=True)
            (tool / "python").unlink(missing_ok=True)
            (tool / "python").symlink_to(SYSTEM_PYTHON)  # root's own may be out of reach
            self.path.insert(0, str(tool))
            return 0, f"{action} (stand-in): {tool}/python"
        if action == "actions/checkout":
            return 0, f"{action} (stand-in)"
        raise AssertionError(f"no stand-in for {action}")

    def _run(self, script: str) -> tuple[int, str]:
        files = self.files()
        path = ":".join([*self.path, BASE_PATH])
        env = {"HOME": str(self.home), "USER": self.user, "PATH": path, "CI": "true",
               "RUNNER_TEMP": str(self.temp), "RUNNER_ENVIRONMENT": "self-hosted",
               "GITHUB_WORKSPACE": str(self.workspace), "GITHUB_ENV": str(files["env"]),
               "GITHUB_PATH": str(files["path"]), "GITHUB_STEP_SUMMARY": str(files["summary"]),
               "GITHUB_OUTPUT": str(files["output"]), "LANG": "C.UTF-8", **self.env}
        body = self.temp / "_step.sh"
        body.write_text(script)
        os.chown(body, *_ids(self.user))
        argv = ["runuser", "-u", self.user, "--", "env", "-i",
                *(f"{k}={v}" for k, v in env.items()),
                "bash", "--noprofile", "--norc", "-eo", "pipefail", str(body)]
        done = subprocess.run(argv, cwd=self.workspace, capture_output=True, text=True,
                              check=False)
        self._read_files()
        return done.returncode, done.stdout + done.stderr

    def _read_files(self) -> None:
        files = self.files()
        for line in files["env"].read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                self.env[key] = value
        added = [line for line in reversed(files["path"].read_text().splitlines()) if line]
        self.path = [*added, *(p for p in self.path if p not in added)]


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
