"""A stand-in for a GitHub-hosted runner: the steps of one job of a rendered workflow, in
order, as the runner runs them: as a user with passwordless sudo (or root), through
`bash --noprofile --norc -eo pipefail`, with `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_OUTPUT`,
`GITHUB_STEP_SUMMARY`, `RUNNER_TEMP` and `RUNNER_ENVIRONMENT` honoured between steps, `if:`
conditions (`always()`, `failure()`, `success()`, `steps.<id>.outputs.<name>` compared with
`==`/`!=`) evaluated, `${{ }}` expressions the workflow uses (`runner.temp`,
`github.workspace`, `env.X`, `steps.<id>.outputs.<name>`, `hashFiles(...)`) expanded, and the
`uses:` steps that need GitHub itself replaced by small stand-ins:

- checkout: the workspace already is the repository (made by the test, owned by the user);
- setup-python: the host's python3 as `python` first on PATH;
- cache/restore and cache/save: a real store folder (`CacheStore`), matched as GitHub matches
  (the key exactly, then the key and each restore key as a prefix, newest first, only entries
  saved with the same paths), with the action's outputs (`cache-hit` only set on a restore,
  `cache-primary-key`, `cache-matched-key`); without a store every restore misses;
- upload-artifact: the path is recorded, nothing is sent (`if-no-files-found` honoured).

Any other `uses:` and any expression it does not know fail the test: nothing is skipped
silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SYSTEM_PYTHON = "/usr/bin/python3"  # what setup-python would provide: any python the user runs
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class StepResult:
    name: str
    outcome: str  # success, failure, skipped
    seconds: float = 0.0
    code: int | None = None
    output: str = ""


def copy_tree_as(user: str, source: Path, dest: Path) -> None:
    """``cp -a source/. dest/`` as ``user`` (as the cache action's tar runs as the runner
    user): what it cannot write stays unwritten, and root never writes for it."""
    argv = ["bash", "-c", 'mkdir -p -- "$2" && cp -a -- "$1/." "$2/"', "copy", str(source),
            str(dest)]
    if _ids(user)[0] != os.geteuid():
        argv = ["runuser", "-u", user, "--", *argv]
    subprocess.run(argv, check=True, capture_output=True, text=True)


@dataclass
class CacheStore:
    """The caches of one repository, kept in ``root`` between jobs: one folder per saved
    entry holding ``entry.json`` (key, version, order) and ``data/<n>`` for the nth path."""

    root: Path
    user: str

    def _entries(self) -> list[dict[str, Any]]:
        found = [json.loads(p.read_text()) | {"dir": str(p.parent)}
                 for p in self.root.glob("*/entry.json")]
        return sorted(found, key=lambda e: e["order"], reverse=True)  # newest first

    def find(self, key: str, restore_keys: Sequence[str], version: str) -> dict[str, Any] | None:
        entries = [e for e in self._entries() if e["version"] == version]
        exact = [e for e in entries if e["key"] == key]
        if exact:
            return exact[0]
        for prefix in (key, *restore_keys):
            matched = [e for e in entries if e["key"].startswith(prefix)]
            if matched:
                return matched[0]
        return None

    def restore(self, key: str, restore_keys: Sequence[str],
                paths: Sequence[Path]) -> tuple[dict[str, str], str]:
        outputs = {"cache-primary-key": key}
        entry = self.find(key, restore_keys, version(paths))
        if entry is None:  # as actions/cache v4: cache-hit is left unset on a miss
            return outputs, f"Cache not found for input keys: {', '.join([key, *restore_keys])}"
        for index, path in enumerate(paths):
            copy_tree_as(self.user, Path(entry["dir"]) / "data" / str(index), path)
        outputs |= {"cache-hit": str(entry["key"] == key).lower(),
                    "cache-matched-key": entry["key"]}
        return outputs, f"Cache restored from key: {entry['key']}"

    def save(self, key: str, paths: Sequence[Path]) -> str:
        if not key:
            raise AssertionError("cache/save without a key")
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            return f"Warning: Path Validation Error: {', '.join(missing)} do(es) not exist"
        ver = version(paths)
        if any(e["key"] == key and e["version"] == ver for e in self._entries()):
            return f"Warning: Failed to save: a cache entry for key {key} already exists"
        order = time.time_ns()
        folder = self.root / f"{order}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
        for index, path in enumerate(paths):
            copy_tree_as(self.user, path, folder / "data" / str(index))
        (folder / "entry.json").write_text(json.dumps({"key": key, "version": ver,
                                                       "order": order}))
        return f"Cache saved with key: {key}"


def version(paths: Sequence[Path]) -> str:
    """The cache version: an entry restores only to the paths it was saved from."""
    return hashlib.sha256("|".join(str(p) for p in paths).encode()).hexdigest()


def hash_files(workspace: Path, patterns: Sequence[str]) -> str:
    """``hashFiles()``: the sha256 over each matched file's sha256, '' when none matches."""
    found = [p for pattern in patterns for p in workspace.glob(pattern)]
    matched = sorted({f for p in found for f in ([p] if p.is_file() else p.rglob("*"))
                      if f.is_file()})  # a folder (what `**` matches here) counts its files
    if not matched:
        return ""
    total = hashlib.sha256()
    for path in matched:
        total.update(hashlib.sha256(path.read_bytes()).digest())
    return total.hexdigest()


@dataclass
class Runner:
    user: str
    workspace: Path
    home: Path
    temp: Path
    replace: Mapping[str, str] = field(default_factory=dict)  # step name -> script
    env: dict[str, str] = field(default_factory=dict)
    environment: str = "self-hosted"  # RUNNER_ENVIRONMENT: github-hosted runs the disk step
    cache: CacheStore | None = None  # None: every restore misses, every save is dropped
    after_step: Callable[[StepResult], None] | None = None  # a test's measurement hook
    step_timeout: float | None = None  # seconds; the step's session is killed after it
    trace: frozenset[str] = frozenset()  # steps run with `bash -x`: what they ran is shown
    path: list[str] = field(default_factory=list)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    uploaded: list[Path] = field(default_factory=list)
    sessions: list[int] = field(default_factory=list)  # one session per `run:` step
    failed: bool = False

    def files(self) -> dict[str, Path]:
        return {name: self.temp / f"_{name}" for name in ("env", "path", "summary", "output")}

    def run_job(self, job: Mapping[str, Any]) -> list[StepResult]:
        for path in self.files().values():
            path.write_text("")
            os.chown(path, *_ids(self.user))
        results = []
        for index, step in enumerate(job["steps"]):
            result = self._step(step, index)
            results.append(result)
            if self.after_step is not None:
                self.after_step(result)
        return results

    def _step(self, step: Mapping[str, Any], index: int) -> StepResult:
        name = str(step.get("name") or step.get("uses") or f"step {index}")
        if not self._condition(step.get("if")):
            return StepResult(name, "skipped")
        started = time.monotonic()
        if "uses" in step:
            code, output = self._uses(step)
        else:
            code, output = self._run(self.replace.get(name, self.expand(str(step["run"]))),
                                     step.get("id"), name in self.trace)
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

    def expand(self, text: str) -> str:
        """``text`` with every ``${{ expression }}`` replaced as the runner would."""
        return EXPRESSION.sub(lambda m: self._value(m.group(1)), text)

    def _value(self, expr: str) -> str:
        if expr == "runner.temp":
            return str(self.temp)
        if expr == "github.workspace":
            return str(self.workspace)
        if m := re.fullmatch(r"env\.(\w+)", expr):
            return self.env.get(m.group(1), "")
        if m := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr):
            return self.outputs.get(m.group(1), {}).get(m.group(2), "")
        if m := re.fullmatch(r"hashFiles\((.*)\)", expr):
            return hash_files(self.workspace, re.findall(r"'([^']*)'", m.group(1)))
        raise AssertionError(f"the runner stand-in cannot evaluate ${{{{ {expr} }}}}")

    def _paths(self, value: object) -> list[Path]:
        paths = []
        for line in self.expand(str(value)).splitlines():
            line = line.strip()
            if line:
                path = Path(line.replace("~", str(self.home), 1) if line.startswith("~") else line)
                paths.append(path if path.is_absolute() else self.workspace / path)
        return paths

    def _uses(self, step: Mapping[str, Any]) -> tuple[int, str]:
        action = str(step["uses"]).split("@")[0]
        given = {k: self.expand(str(v)) for k, v in (step.get("with") or {}).items()}
        handler = {"actions/cache/restore": self._restore, "actions/cache/save": self._save,
                   "actions/upload-artifact": self._upload,
                   "actions/setup-python": self._setup_python,
                   "actions/checkout": self._checkout}.get(action)
        if handler is None:
            raise AssertionError(f"no stand-in for {action} (step {step.get('name')!r})")
        return handler(step, given)

    def _checkout(self, step: Mapping[str, Any], given: Mapping[str, str]) -> tuple[int, str]:
        return 0, "actions/checkout (stand-in): the workspace is the repository"

    def _restore(self, step: Mapping[str, Any], given: Mapping[str, str]) -> tuple[int, str]:
        key, paths = given["key"], self._paths(given["path"])
        restore_keys = [k.strip() for k in given.get("restore-keys", "").splitlines()
                        if k.strip()]
        if self.cache is None:
            outputs, text = {"cache-primary-key": key}, "cache miss (no store)"
        else:
            outputs, text = self.cache.restore(key, restore_keys, paths)
        if "id" in step:
            self.outputs.setdefault(str(step["id"]), {}).update(outputs)
        return 0, text

    def _save(self, step: Mapping[str, Any], given: Mapping[str, str]) -> tuple[int, str]:
        paths = self._paths(given["path"])
        if self.cache is None:
            return 0, "nothing saved (no store)"
        return 0, self.cache.save(given["key"], paths)

    def _upload(self, step: Mapping[str, Any], given: Mapping[str, str]) -> tuple[int, str]:
        paths = self._paths(given["path"])
        missing = [p for p in paths if not p.exists()]
        if missing:
            mode = given.get("if-no-files-found", "warn")
            return (1 if mode == "error" else 0), f"no files found: {missing} ({mode})"
        self.uploaded.extend(paths)
        return 0, f"uploaded (stand-in): {paths}"

    def _setup_python(self, step: Mapping[str, Any],
                      given: Mapping[str, str]) -> tuple[int, str]:
        tool = self.temp / "_python" / "bin"  # puts `python` on PATH, as the action does
        tool.mkdir(parents=True, exist_ok=True)
        (tool / "python").unlink(missing_ok=True)
        (tool / "python").symlink_to(SYSTEM_PYTHON)  # root's own may be out of reach
        self.path.insert(0, str(tool))
        return 0, f"actions/setup-python (stand-in): {tool}/python"

    def _run(self, script: str, step_id: object = None, trace: bool = False) -> tuple[int, str]:
        files = self.files()
        path = ":".join([*self.path, BASE_PATH])
        env = {"HOME": str(self.home), "USER": self.user, "PATH": path, "CI": "true",
               "RUNNER_TEMP": str(self.temp), "RUNNER_ENVIRONMENT": self.environment,
               "GITHUB_WORKSPACE": str(self.workspace), "GITHUB_ENV": str(files["env"]),
               "GITHUB_PATH": str(files["path"]), "GITHUB_STEP_SUMMARY": str(files["summary"]),
               "GITHUB_OUTPUT": str(files["output"]), "LANG": "C.UTF-8", **self.env}
        body = self.temp / "_step.sh"
        body.write_text(script)
        os.chown(body, *_ids(self.user))
        argv = ["runuser", "-u", self.user, "--", "env", "-i",
                *(f"{k}={v}" for k, v in env.items()),
                "bash", "--noprofile", "--norc", "-eo", "pipefail", *(["-x"] if trace else []),
                str(body)]
        with subprocess.Popen(argv, cwd=self.workspace, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              start_new_session=True) as proc:  # so leftovers can be found
            self.sessions.append(proc.pid)
            try:
                stdout, stderr = proc.communicate(timeout=self.step_timeout)
            except subprocess.TimeoutExpired:  # as timeout-minutes: the step is cancelled
                os.killpg(proc.pid, signal.SIGKILL)
                stdout, stderr = proc.communicate()
                stderr += f"\n(stand-in) the step ran longer than {self.step_timeout:.0f}s"
        self._read_files(str(step_id) if step_id else None)
        return proc.returncode, stdout + stderr

    def _read_files(self, step_id: str | None) -> None:
        files = self.files()
        for line in files["env"].read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                self.env[key] = value
        added = [line for line in reversed(files["path"].read_text().splitlines()) if line]
        self.path = [*added, *(p for p in self.path if p not in added)]
        outputs = files["output"].read_text().splitlines()
        if step_id:
            for line in outputs:
                key, sep, value = line.partition("=")
                if sep:
                    self.outputs.setdefault(step_id, {})[key] = value
        files["output"].write_text("")  # GITHUB_OUTPUT is a new file for every step


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
