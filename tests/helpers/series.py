"""A distro repo with a 5-patch series on a synthetic upstream whose tags make each patch
apply clean, need 3-way, be taken upstream, or conflict (for rebase/export/forecast tests).

Upstream tags:
  v1.20.0  the base the series was made on (pinned in the manifest)
  v1.20.1  limits.go context changed (0002 needs 3-way), 0003 taken upstream verbatim
  v1.20.2  v1.20.1 + README.md line changed (0004 conflicts)
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.gitrepo import (
    FIXED_DATE,
    K8S_LIKE_FILES,
    Upstream,
    git,
    make_upstream,
    write_manifest,
)
from tkedistro.core.workspace import Workspace

TRAILERS = "Patch-Kind: carry\nUpstream-Ref: none\nUpstream-Status: not-submitted"
BACKPORT = ("Patch-Kind: backport\nUpstream-Ref: https://github.com/kubernetes/kubernetes/pull/9"
            "\nUpstream-Status: merged")
DATES = {"GIT_AUTHOR_DATE": FIXED_DATE, "GIT_COMMITTER_DATE": FIXED_DATE}
LIMITS = K8S_LIKE_FILES["pkg/kubelet/cm/limits.go"]
FEATURE = "package feature\n\nconst TKEFeature = true\n"

PATCHES: list[tuple[str, dict[str, str], str]] = [
    ("kubectl: print tke", {"cmd/kubectl/main.go": K8S_LIKE_FILES["cmd/kubectl/main.go"].replace(
        '"kubectl"', '"kubectl-tke"')}, TRAILERS),
    ("kubelet: kmem accounting off", {"pkg/kubelet/cm/limits.go": LIMITS.replace(
        "kmem = true", "kmem = false")}, TRAILERS),
    ("feature: add TKEFeature", {"pkg/feature/tke.go": FEATURE}, BACKPORT),
    ("README: say tke", {"README.md": "# tiny kubernetes (tke)\n"}, TRAILERS),
    ("kubelet: print tke", {"cmd/kubelet/main.go": K8S_LIKE_FILES["cmd/kubelet/main.go"].replace(
        '"kubelet"', '"kubelet-tke"')}, TRAILERS),
]


@dataclass
class Distro:
    root: Path
    upstream: Upstream
    release: str = "1.20"

    @property
    def src(self) -> Path:
        return self.root / "_src" / self.release

    @property
    def manifest(self) -> Path:
        return self.root / "releases" / f"{self.release}.yaml"

    @property
    def patch_dir(self) -> Path:
        return self.root / "patches" / self.release

    def workspace(self) -> Workspace:
        return Workspace.discover(self.root)


def make_upstream_tags(tmp: Path) -> Upstream:
    up = make_upstream(tmp, tags={"v1.20.0": dict(K8S_LIKE_FILES)})
    up.commit({"pkg/kubelet/cm/limits.go": LIMITS.replace("line2 = 2", "line2 = 22")},
              "cm: renumber line2")
    up.commit({"pkg/feature/tke.go": FEATURE}, "feature: add TKEFeature (#9)", tag="v1.20.1")
    up.commit({"README.md": "# tiny kubernetes (upstream)\n"}, "README: upstream wording",
              tag="v1.20.2")
    return up


def make_patches(tmp: Path, up: Upstream, out: Path,
                 patches: list[tuple[str, dict[str, str], str]] | None = None) -> list[Path]:
    """Commit each change on v1.20.0 in a work clone and write it with git format-patch."""
    work = tmp / "patch-work"
    git(tmp, "clone", "-q", str(up.bare), str(work))
    git(work, "checkout", "-q", "-b", "series", "v1.20.0")
    files = []
    for number, (subject, changes, trailers) in enumerate(patches or PATCHES, 1):
        for rel, content in changes.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(content)
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"{subject}\n\nWhy: tke needs it.\n\n{trailers}", env=DATES)
        name = git(work, "format-patch", "-1", f"--start-number={number}", "-o", str(out))
        files.append(Path(name))
    return files


_TEMPLATE: list[tuple[Path, dict[str, str]]] = []


def _template() -> tuple[Path, dict[str, str]]:
    """Upstream + distro repo built once per test process (copied by each test)."""
    if not _TEMPLATE:
        tmp = Path(tempfile.mkdtemp(prefix="tkedistro-series-"))
        atexit.register(shutil.rmtree, tmp, True)
        up = make_upstream_tags(tmp)
        root = tmp / "distro"
        files = make_patches(tmp, up, root / "patches" / "1.20")
        shutil.rmtree(tmp / "patch-work")
        rel = [f"patches/1.20/{f.name}" for f in files]
        write_manifest(root, "1.20", url="@URL@", tag="v1.20.0", commit=up.tags["v1.20.0"],
                       patches=rel)
        # a distro repo names where its nightly installs tkedistro from (`ci render`)
        (root / "tkedistro.yaml").write_text(
            "schema: 1\nci:\n  install:\n    git: https://github.com/example/tkedistro.git\n"
            "    commit: 0123456789abcdef0123456789abcdef01234567\n")
        _TEMPLATE.append((tmp, dict(up.tags)))
    return _TEMPLATE[0]


def make_distro(tmp: Path, *, prepare: bool = True) -> Distro:
    """A copy of the template under ``tmp``; ``prepare`` runs `tkedistro source` on it."""
    template, tags = _template()
    shutil.copytree(template, tmp, dirs_exist_ok=True, symlinks=True)
    up = Upstream(work=tmp / "upstream-work", bare=tmp / "upstream.git", tags=dict(tags))
    distro = Distro(tmp / "distro", up)
    distro.manifest.write_text(distro.manifest.read_text().replace("@URL@", up.url))
    if prepare:
        prepare_src(distro)
    return distro


def prepare_src(d: Distro) -> None:
    """``tkedistro source``: the pinned commit plus one commit per patch in ``_src``."""
    from tkedistro.source.prepare import prepare_source

    prepare_source(d.workspace(), d.release)


def fingerprint(d: Distro) -> dict[str, str]:
    """Hashes of the manifest and every patch file, _src's HEAD, branch and status."""
    prints = {str(p.relative_to(d.root)): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in [d.manifest, *sorted(d.patch_dir.iterdir())]}
    if d.src.exists():
        prints["HEAD"] = git(d.src, "rev-parse", "HEAD")
        prints["branch"] = git(d.src, "symbolic-ref", "-q", "HEAD")
        prints["status"] = git(d.src, "status", "--porcelain", "--ignored")
        tree = subprocess.run(["git", "ls-files", "-s"], cwd=d.src, capture_output=True,
                              text=True, check=True).stdout
        prints["index"] = hashlib.sha256(tree.encode()).hexdigest()
    return prints
