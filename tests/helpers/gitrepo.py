"""Build tiny k8s-shaped upstream repositories and distro repos for tests (real git)."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.manifests import manifest_text

FIXED_DATE = "2021-01-13T12:00:00+0000"


# The identity tests commit with: the CLI removes inherited GIT_* identity variables from
# the process environment (tkedistro.core.runner.clean_process_env), so it is given here.
IDENTITY = {"GIT_AUTHOR_NAME": "Test Author", "GIT_AUTHOR_EMAIL": "author@example.invalid",
            "GIT_COMMITTER_NAME": "Test Committer",
            "GIT_COMMITTER_EMAIL": "committer@example.invalid"}


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    full_env = {**os.environ, **IDENTITY, **(env or {})}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=full_env, check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass
class Upstream:
    """A non-bare upstream work repo (``work``) and its bare clone served as ``url``."""

    work: Path
    bare: Path
    tags: dict[str, str] = field(default_factory=dict)  # tag -> commit sha

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def commit(
        self, files: Mapping[str, str | bytes | None], message: str, tag: str | None = None
    ) -> str:
        """Write (or delete, for None) files, commit, optionally tag (annotated), push."""
        for rel, content in files.items():
            path = self.work / rel
            if content is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        dates = {"GIT_AUTHOR_DATE": FIXED_DATE, "GIT_COMMITTER_DATE": FIXED_DATE}
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message, env=dates)
        sha = git(self.work, "rev-parse", "HEAD")
        if tag:
            git(self.work, "tag", "-a", tag, "-m", f"Kubernetes {tag}", env=dates)
            self.tags[tag] = sha
        git(self.work, "push", "-q", "--tags", str(self.bare), "HEAD:refs/heads/master")
        return sha


_MAIN = 'package main\n\nimport "fmt"\n\nfunc main() {{ fmt.Println("{name}") }}\n'

K8S_LIKE_FILES: dict[str, str] = {
    "go.mod": "module k8s.io/kubernetes\n\ngo 1.15\n",
    "README.md": "# tiny kubernetes\n",
    "pkg/version/base.go": 'package version\n\nvar gitVersion = "v0.0.0-master+$Format:%h$"\n',
    "cmd/kubectl/main.go": _MAIN.format(name="kubectl"),
    "cmd/kubelet/main.go": _MAIN.format(name="kubelet"),
    "pkg/kubelet/cm/limits.go": (
        "package cm\n\nconst kmem = true\n\nconst line2 = 2\nconst line3 = 3\nconst line4 = 4\n"
    ),
}


def make_upstream(
    root: Path, tags: Mapping[str, Mapping[str, str | bytes | None]] | None = None
) -> Upstream:
    """An upstream with k8s-like files; ``tags`` maps tag -> file changes, in order.

    By default two tags: v1.20.0 (K8S_LIKE_FILES) and v1.20.1 (README changed).
    Each distinct upstream is made once per test run and copied (fixed dates and identity
    make the commits the same anyway); the copy under ``root`` is the test's own.
    """
    identity = tuple(os.environ.get(k, "") for k in _IDENTITY)
    key = repr((identity, list((tags or {}).items())))
    if key not in _MADE:
        template = Path(tempfile.mkdtemp(prefix="tkedistro-test-upstream-"))
        atexit.register(shutil.rmtree, template, True)
        _MADE[key] = _build_upstream(template, tags)
    made = _MADE[key]
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(made.work, root / "upstream-work", symlinks=True)
    shutil.copytree(made.bare, root / "upstream.git", symlinks=True)
    return Upstream(work=root / "upstream-work", bare=root / "upstream.git", tags=dict(made.tags))


_IDENTITY = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")
_MADE: dict[str, Upstream] = {}


def _build_upstream(
    root: Path, tags: Mapping[str, Mapping[str, str | bytes | None]] | None
) -> Upstream:
    work, bare = root / "upstream-work", root / "upstream.git"
    work.mkdir(parents=True)
    git(work, "init", "-q", "-b", "master")
    git(root, "init", "-q", "--bare", str(bare))
    up = Upstream(work=work, bare=bare)
    plan = tags or {
        "v1.20.0": K8S_LIKE_FILES,
        "v1.20.1": {"README.md": "# tiny kubernetes\n\nv1.20.1\n"},
    }
    for tag, files in plan.items():
        up.commit(files, f"Release {tag}", tag=tag)
    return up


def write_manifest(repo: Path, release: str, *, url: str, tag: str, commit: str,
                   patches: list[str] | None = None, components: list[str] | None = None,
                   extra: str = "") -> Path:
    """Write ``releases/<release>.yaml`` into a distro repo at ``repo``."""
    (repo / "releases").mkdir(parents=True, exist_ok=True)
    (repo / "patches" / release).mkdir(parents=True, exist_ok=True)
    text = manifest_text(release=release, url=url, tag=tag, commit=commit,
                         components=components or ("kubectl", "kubelet"), patches=patches or (),
                         extra=extra)
    path = repo / "releases" / f"{release}.yaml"
    path.write_text(text)
    return path
