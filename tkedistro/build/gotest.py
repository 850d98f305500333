"""``go test`` of a prepared tree in the builder container, as the build runs it.

The same container as the build (``container.builder_spec``: the invoking user, no network,
the tree where upstream's build container keeps it, the tool's Go cache) and the same Go cache
Kubernetes' own ``make`` uses in the tree (``hack/lib/golang.sh``: ``_output/local/go/cache``,
which the tree's ``info/exclude`` keeps out of ``git status``), so packages a build compiled are
not compiled again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tkedistro import __version__
from tkedistro.build.container import builder_spec
from tkedistro.build.plan import CONTAINER_CACHE, CONTAINER_SRC
from tkedistro.core import files
from tkedistro.core.errors import BuildError
from tkedistro.core.workspace import Workspace
from tkedistro.engine.protocols import ContainerBackend, RunResult

# Kubernetes' Go cache inside its tree (hack/lib/golang.sh: ${KUBE_GOPATH}/cache)
TREE_GO_CACHE = CONTAINER_SRC / "_output/local/go/cache"


def go_test_env(tree: Path) -> dict[str, str]:
    """The build's ``HOME``, Kubernetes' Go cache; ``GOFLAGS=-mod=vendor`` for a tree with a
    ``vendor/modules.txt`` (no network to fetch modules), else none from the image."""
    vendored = (tree / "vendor" / "modules.txt").is_file()
    return {"HOME": str(CONTAINER_CACHE / "home"), "GOCACHE": str(TREE_GO_CACHE),
            "GOFLAGS": "-mod=vendor" if vendored else ""}


def go_test_argv(packages: Sequence[str], *, verbose: bool = False,
                 count: int | None = None) -> tuple[str, ...]:
    """``go test [-v] [-count=N] PACKAGES``; a package that looks like an option is refused
    (go would read it as a flag)."""
    for package in packages:
        if not package or package.startswith("-"):
            raise BuildError(f"refusing go test package {package!r}: expected a package "
                             "pattern such as ./pkg/kubelet/cm/...")
    return ("go", "test", *(("-v",) if verbose else ()),
            *((f"-count={count}",) if count is not None else ()), *packages)


def run_go_test(backend: ContainerBackend, image: str, ws: Workspace, tree: Path,
                packages: Sequence[str], log: Path, *, verbose: bool = False,
                count: int | None = None) -> RunResult:
    """``go test PACKAGES`` in ``tree`` in the builder container ``image``; the whole output
    goes to ``log`` (the result keeps its tail), its exit code decides."""
    argv = go_test_argv(packages, verbose=verbose, count=count)
    spec = builder_spec(image, go_test_env(tree), ws, tree)
    files.write_text(log, f"# tkedistro {__version__}: {' '.join(argv)}\n"
                          f"# container: {spec.describe()}\n")
    with backend.session(spec) as session:
        return session.run(argv, log=log)
