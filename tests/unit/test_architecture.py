"""The package keeps its shape: imports point one way, no cycles, each outside tool or library
used by the modules that own it, functions short, one error home.

Imports are read from the source with ``ast`` (module level, inside functions and under
``TYPE_CHECKING`` alike), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import tkedistro
from tests.conftest import REPO
from tkedistro.core import errors

PACKAGE = Path(tkedistro.__file__).parent
MAX_FUNCTION_LINES = 60  # a function's body, without its signature and docstring

# Lower number = lower layer. A module may import its own layer or below, never above.
# The run order sets the middle: conformance runs on the cluster, the cluster runs images,
# images are made through the engine (conformance -> cluster -> images -> engine).
# ``release`` (the one release-build operation) sits above the build and the artifacts it
# runs together; ``conformance`` (whose missing tools that operation builds) above it.
LAYERS = {
    "core": 0,
    "git": 1, "model": 1, "engine": 1, "signing": 1,
    "debian": 2, "source": 2, "series": 2, "build": 2, "images": 2, "ci": 2,
    "cluster": 3, "artifacts": 3, "guest": 3,
    "release": 4, "verify": 4,
    "conformance": 5, "bisect": 5, "setup": 3,
    "cli": 6,
}
TOP_LEVEL = {"tkedistro": 0, "tkedistro.__main__": 6}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The tkedistro module an import names (``from pkg import mod`` may name a module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    """The tkedistro modules ``module`` imports anywhere in its source."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {_resolve(alias.name) or "" for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else _resolve(base) or "")
    return {name for name in found if name.startswith("tkedistro")} - {module}


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _layer(module: str) -> int:
    if module in TOP_LEVEL:
        return TOP_LEVEL[module]
    return LAYERS[module.split(".")[1]]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_every_package_folder_has_a_layer() -> None:
    folders = {m.split(".")[1] for m in MODULES if m.count(".") >= 1 and m not in TOP_LEVEL}
    assert sorted(folders - set(LAYERS)) == []


def test_no_import_cycles() -> None:
    assert _cycles(GRAPH) == []


def _packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``graph`` with each module folded into its package (``tkedistro.build.plan`` ->
    ``tkedistro.build``; ``tkedistro`` and ``tkedistro.__main__`` stay as they are)."""
    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    folded: dict[str, set[str]] = {}
    for module, targets in graph.items():
        edges = folded.setdefault(package(module), set())
        edges |= {package(t) for t in targets} - {package(module)}
    return folded


def test_no_import_cycles_between_packages() -> None:
    assert _cycles(_packages(GRAPH)) == []


def test_packages_fold_a_cycle_no_module_cycle_shows() -> None:
    graph = {"tkedistro.source.state": {"tkedistro.series.state"},
             "tkedistro.series.export": {"tkedistro.source.apply"},
             "tkedistro.source.apply": set(), "tkedistro.series.state": set()}
    assert _cycles(graph) == []
    assert _cycles(_packages(graph)) == [["tkedistro.series", "tkedistro.source"]]


def test_cycle_finder_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_lower_layers_never_import_higher_ones() -> None:
    upward = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() for t in targets
                    if _layer(t) > _layer(m))
    assert upward == []


def test_layers_follow_the_run_order_conformance_cluster_images_engine() -> None:
    order = ["conformance", "cluster", "images", "engine"]
    assert [LAYERS[p] for p in order] == sorted((LAYERS[p] for p in order), reverse=True)
    assert len({LAYERS[p] for p in order}) == len(order)  # each strictly above the next
    assert LAYERS["debian"] <= LAYERS["images"]


def test_the_import_reader_counts_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text("from typing import TYPE_CHECKING\n"
                      "from tkedistro.core import console\n"
                      "if TYPE_CHECKING:\n    from tkedistro.core.workspace import Workspace\n"
                      "def f():\n    import tkedistro.build.plan\n")
    assert _imports("tkedistro.core.example", source) == {
        "tkedistro.core.console", "tkedistro.core.workspace", "tkedistro.build.plan"}


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return (node.end_lineno or node.lineno) - body[0].lineno + 1


def test_no_function_body_is_over_60_lines() -> None:
    long = sorted(f"{m}.{node.name}: {_body_lines(node)} lines" for m, tree in TREES.items()
                  for node in ast.walk(tree)
                  if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                  and _body_lines(node) > MAX_FUNCTION_LINES)
    assert long == []


def _all_error_classes() -> list[type[errors.TkedistroError]]:
    for info in pkgutil.walk_packages([str(PACKAGE)], "tkedistro."):
        if info.name != "tkedistro.__main__":
            importlib.import_module(info.name)
    found: list[type[errors.TkedistroError]] = []
    todo = [errors.TkedistroError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_user_facing_error_lives_in_core_errors() -> None:
    outside = sorted(f"{c.__module__}.{c.__qualname__}" for c in _all_error_classes()
                     if c.__module__ != errors.__name__)
    assert outside == []


def test_every_error_with_its_own_exit_code_says_what_the_code_means() -> None:
    silent = sorted(c.__name__ for c in _all_error_classes()
                    if "exit_code" in vars(c) and "meaning" not in vars(c))
    assert silent == []


def test_exit_codes_are_computed_from_the_classes() -> None:
    assert errors.EXIT_CODES[errors.HostNotReadyError.exit_code] == errors.HostNotReadyError.meaning
    assert errors.EXIT_CODES[3] == "; ".join([errors.ManifestError.meaning,
                                              errors.ReleaseNotFoundError.meaning,
                                              errors.UnsafePathError.meaning,
                                              errors.WorkflowDriftError.meaning,
                                              errors.RepoConfigError.meaning])
    assert errors.EXIT_CODES[0] == "success"
    listed = [line for line in (errors.__doc__ or "").splitlines() if line.strip()[:2].isdigit()]
    assert listed == []


def _package_folders() -> set[str]:
    return {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}


def test_readme_layout_and_architecture_doc_name_every_package_folder_and_only_those() -> None:
    readme = (REPO / "README.md").read_text()
    layout = readme.split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    # the indented rows under "tkedistro/": "      build/ series/   what they hold"
    rows = [line.strip().split("  ")[0] for line in layout.splitlines()
            if line.startswith(" " * 6) and not line.startswith(" " * 7)]
    named = set(re.findall(r"([a-z]+)/", " ".join(rows)))
    assert named == _package_folders()
    doc = (REPO / "docs" / "architecture.md").read_text()
    missing = sorted(f for f in _package_folders() - {"templates"} if f"`{f}/`" not in doc)
    assert missing == []
    assert set(LAYERS) == _package_folders() - {"templates"}


def test_readme_layout_names_every_test_tier() -> None:
    layout = (REPO / "README.md").read_text().split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    tiers = {p.name for p in (REPO / "tests").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert sorted(t for t in tiers if f"tests/{t}" not in layout) == []


def _trees() -> dict[str, ast.Module]:
    return {m: ast.parse(p.read_text(), str(p)) for m, p in MODULES.items()}


TREES = _trees()


def _imports_library(tree: ast.Module, library: str) -> bool:
    """Whether ``tree`` imports ``library`` (or a module of it) anywhere."""
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                 else [])
        if any(name == library or name.startswith(f"{library}.") for name in names):
            return True
    return False


def _programs_run(tree: ast.Module) -> set[str]:
    """The programs ``tree`` names as the first word of a command line (a list or tuple
    literal), or in a module constant (``BINARY = "skopeo"``); a ``--version`` probe (the
    host checks) is not running a program."""
    found = {node.value.value for node in tree.body if isinstance(node, ast.Assign)
             and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
             and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)}
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple) and node.elts \
                and isinstance(first := node.elts[0], ast.Constant) \
                and isinstance(first.value, str):
            second = node.elts[1] if len(node.elts) > 1 else None
            if not (isinstance(second, ast.Constant) and second.value == "--version"):
                found.add(first.value)
    return found


def _reads_yaml(tree: ast.Module) -> bool:
    """Whether ``tree`` imports ruamel and calls a ``load``/``load_all`` (parses YAML)."""
    return _imports_library(tree, "ruamel") and any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("load", "load_all") for node in ast.walk(tree))


# What only some modules may do -> (how to find who does it, the modules that own it).
OWNED = {
    "imports GitPython": (lambda t: _imports_library(t, "git"), r"tkedistro\.git\.\w+"),
    "runs git": (lambda t: "git" in _programs_run(t), r"tkedistro\.git\.\w+"),
    "imports the Docker SDK": (lambda t: _imports_library(t, "docker"),
                               r"tkedistro\.engine\.docker\w*"),
    "runs buildah": (lambda t: "buildah" in _programs_run(t), r"tkedistro\.engine\.buildah"),
    "runs skopeo": (lambda t: "skopeo" in _programs_run(t), r"tkedistro\.engine\.skopeo"),
    "runs docker-registry": (lambda t: "docker-registry" in _programs_run(t),
                             r"tkedistro\.engine\.registry"),
    # the one runner; beside it, two processes that outlive one call and are stopped by
    # hand: the local registry (engine/registry.py) and the e2e suite, interrupted on Ctrl-C
    "imports subprocess": (lambda t: _imports_library(t, "subprocess"),
                           r"tkedistro\.(core\.runner|engine\.registry|conformance\.suite)"),
    # manifests and patch files are read in model/; the catalog reads upstream's
    # test/conformance/testdata/conformance.yaml, which is no input of ours
    "reads YAML": (_reads_yaml, r"tkedistro\.(model\.\w+|conformance\.catalog)"),
}


@pytest.mark.parametrize("what", sorted(OWNED))
def test_only_the_owning_modules_do_it(what: str) -> None:
    finds, owners = OWNED[what]
    doers = sorted(m for m, tree in TREES.items() if finds(tree))
    assert doers, f"nobody {what}: the finder is broken"
    assert [m for m in doers if not re.fullmatch(owners, m)] == []


def test_the_owner_finders_see_what_they_look_for() -> None:
    tree = ast.parse('BINARY = "skopeo"\nimport subprocess\nfrom ruamel.yaml import YAML\n'
                     'def f():\n    run(["git", "log"]); run(("buildah", "--version"))\n'
                     '    return YAML().load("a: 1")\n')
    assert _programs_run(tree) == {"skopeo", "git"}
    assert _imports_library(tree, "subprocess") and _reads_yaml(tree)
    assert not _imports_library(tree, "git")


def test_patterns_take_ascii_digits_only() -> None:
    """``\\d`` matches any script's digits (``int("٣")`` is 3): names, versions and patch
    numbers would collide after normalisation; the package writes ``[0-9]``."""
    found = [f"{path.relative_to(PACKAGE.parent)}:{n}"
             for path in MODULES.values()
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if "\\d" in line and "``\\d``" not in line]
    assert found == []
