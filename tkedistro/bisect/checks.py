"""What ``tkedistro bisect`` runs at each position: one protocol, one class per kind.

``RunCheck`` runs the user's command (an argv, never a shell string) in the tree on the host
through the one process runner. ``BuildCheck`` builds one component and ``GoTestCheck`` runs
``go test`` in the builder container, the build's own container run (``build/container.py``,
``build/gotest.py``: the invoking user, no network, the tool's and Kubernetes' Go caches).
Each writes the whole output to the step's log and answers with an exit status: 0 good, 125
skip, anything else bad (``search.outcome_of``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tkedistro.build.container import build_in_container
from tkedistro.build.gotest import go_test_argv, run_go_test
from tkedistro.build.pipeline import host_platform, lookup_image, pause_tag
from tkedistro.build.plan import plan_build
from tkedistro.build.publish import Staging
from tkedistro.build.targets import Targets, select_targets
from tkedistro.core import files
from tkedistro.core.errors import BisectError, BuildError, CommandError, SmokeCheckError
from tkedistro.core.runner import run
from tkedistro.core.workspace import Workspace
from tkedistro.engine.protocols import ContainerBackend, ImageInfo
from tkedistro.git.repo import Repo
from tkedistro.model.manifest import Manifest


class Check(Protocol):
    """A check run at each position of the series."""

    @property
    def kind(self) -> str: ...

    def describe(self) -> str:
        """What runs, in one line (``go test ./pkg/...``)."""
        ...

    def to_json(self) -> dict[str, Any]: ...

    def ready(self) -> None:
        """Fail before any work when the check cannot run (no engine, no builder image)."""
        ...

    def run(self, tree: Path, commit: str, log: Path) -> int:
        """Run in ``tree`` (at ``commit``), the whole output to ``log``; the exit status."""
        ...


@dataclass(frozen=True)
class RunCheck:
    """``--run CMD...``: the user's command, in the tree, on the host."""

    argv: tuple[str, ...]
    kind: str = "run"

    def describe(self) -> str:
        return shlex.join(self.argv)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "argv": list(self.argv)}

    def ready(self) -> None:
        if not self.argv:
            raise BisectError("--run needs a command, e.g. `tkedistro bisect 1.20 --run -- "
                              "make test`")

    def run(self, tree: Path, commit: str, log: Path) -> int:
        with files.open_for_writing(log) as out:
            out.write(f"$ {self.describe()}   (in {tree} at {commit})\n".encode())
            out.flush()
            try:
                return run(self.argv, cwd=tree, check=False, output=out).returncode
            except CommandError as exc:  # not found, not executable: no position can pass
                raise BisectError(f"cannot run {self.argv[0]}: {exc.message}",
                                  hint="give the command as the tree sees it, after `--`, "
                                       "e.g. --run -- ./hack/check.sh") from None


@dataclass
class GoTestCheck:
    """``--go-test PKG``: ``go test PKG`` in the builder container."""

    backend: ContainerBackend
    ws: Workspace
    image: str
    packages: tuple[str, ...]
    kind: str = "go-test"

    def describe(self) -> str:
        return shlex.join(go_test_argv(self.packages))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "packages": list(self.packages), "image": self.image}

    def ready(self) -> None:
        go_test_argv(self.packages)  # a package that looks like an option is refused here
        lookup_image(self.backend, self.image)

    def run(self, tree: Path, commit: str, log: Path) -> int:
        return run_go_test(self.backend, self.image, self.ws, tree, self.packages,
                           log).exit_code


@dataclass
class BuildCheck:
    """``--build COMPONENT``: the component built (and smoke-checked) for the host platform
    in the builder container, as ``tkedistro build`` makes it."""

    backend: ContainerBackend
    ws: Workspace
    manifest: Manifest
    component: str
    image: str
    kind: str = "build"
    found: tuple[Targets, ImageInfo] | None = field(default=None, repr=False)  # by ready()

    def describe(self) -> str:
        return f"build {self.component} for {host_platform()}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "component": self.component, "platform": host_platform(),
                "image": self.image}

    def ready(self) -> None:
        targets = select_targets(self.manifest, (self.component,), (host_platform(),))
        self.found = (targets, lookup_image(self.backend, self.image, self.manifest.release))

    def run(self, tree: Path, commit: str, log: Path) -> int:
        if self.found is None:
            self.ready()
        assert self.found is not None
        targets, image = self.found
        plan = plan_build(self.manifest, tree_commit=commit,
                          source_date_epoch=Repo(tree).commit_epoch(commit), image=image.name,
                          image_id=image.id, host_platform=host_platform(), selected=targets,
                          runnable={host_platform(): (True, "native")},
                          pause_tag=pause_tag(self.manifest, tree))
        staging = Staging(files.make_temp_dir(log.parent, ".build-"))
        try:
            for folder in (staging.out, staging.work):
                files.ensure_dir(folder)
            try:
                build_in_container(self.backend, plan, self.ws, tree, staging, log)
                status = 0
            except (BuildError, SmokeCheckError) as exc:
                with files.open_for_writing(staging.log, append=True) as out:
                    out.write(f"\n{exc.message}\n".encode())
                status = 1
            files.rename(staging.log, log)
        finally:
            files.remove(staging.root)
        return status

