"""Every path rule of a release is spelled once: in ``tkedistro/core/workspace.py``.

The manifest's name (``releases/<release>.yaml``), the output's ``bin/<os>/<arch>``, the
``_src``/``_output``/``_results``/``_cluster`` folders and the state files are asked of
``Workspace.release(name)`` (``ReleasePaths``), ``manifest_name`` or ``output_bin``. This test
reads every string in the package's code (f-strings with their ``{}`` holes; docstrings and
comments are prose and left alone) and fails on a copy of such a rule anywhere else.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import tkedistro
from tkedistro.core.workspace import Workspace, manifest_name, output_bin

PACKAGE = Path(tkedistro.__file__).parent
HANDLE = PACKAGE / "core" / "workspace.py"

RULES = {
    "releases/<release>.yaml": re.compile(r"(?<![\w.])releases/[^\s'\"]*\.ya?ml"),
    "patches/<release>": re.compile(r"(?<![\w.])patches/\{\}"),
    "bin/<os>/<arch>": re.compile(r"bin/linux/|(?<![\w.{}/])bin/\{\}/"),
    "workspace folder": re.compile(r"(?<![\w.])_(src|output|results|cluster)(/|$)"),
    "state file": re.compile(r"^(source|rebase|build-run|cluster)\.json$|^source\.(lock|applying)$"
                             r"|^(current|import)\.patch$|\.tkedistro$|^\.\{\}\.(cluster\.)?lock$"),
}
# A path built by hand from these parts (``root / "releases"``, ``out / "bin" / "linux"``).
PARTS = re.compile(r"^(releases|linux)$")

# Strings that look like a rule but are another one; each with its reason.
ALLOWED = {
    # Kubernetes' own build folder inside a source tree (``_output/local/bin/<os>/<arch>``,
    # its go cache), which `make` writes; not the workspace's ``_output/<release>``
    ("*", "_output/local"),
    # the same folder of the tree, kept out of git status by the tree's info/exclude
    ("tkedistro/git/repo.py", "/_output/\n"),
    # exit-code meanings are the README's table (prose with a <release> placeholder); errors.py
    # is below the workspace module and cannot ask it
    ("tkedistro/core/errors.py", "/<release>"),
    # rewrites the ``file:`` entries in a manifest's text (a pattern, not a path)
    ("tkedistro/series/newline.py", "?)patches/{}/"),
    ("tkedistro/series/newline.py", "\\g<1>patches/{}/"),
    # a scratch file in the forecast's throw-away tree, not the release's state folder
    ("tkedistro/series/forecast.py", "current.patch"),
}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are docstrings (prose, not a path being built)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _render(node: ast.JoinedStr) -> str:
    return "".join(part.value if isinstance(part, ast.Constant) else "{}"
                   for part in node.values)


def _path_parts(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, text) of the strings a path is joined from with ``/``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and isinstance(side.value, str):
                    yield side.lineno, side.value


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, text) of every string literal but the docstrings; an f-string is one text with
    ``{}`` for each replacement field."""
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip |= {id(part) for part in node.values}
            yield node.lineno, _render(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in skip:
            yield node.lineno, node.value


def _allowed(where: str, text: str, rule: re.Pattern[str]) -> bool:
    """The rule matches ``text`` only inside what ``ALLOWED`` lets ``where`` say."""
    for place, allowed in ALLOWED:
        if place in ("*", where):
            text = text.replace(allowed, "")
    return not rule.search(text)


def copies(path: Path, where: str) -> Iterator[str]:
    """``where:line: rule: text`` for each copy of a path rule in the module ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for line, text in _strings(tree):
        for name, rule in RULES.items():
            if rule.search(text) and not _allowed(where, text, rule):
                yield f"{where}:{line}: {name}: {text!r}"
    for line, text in _path_parts(tree):
        if PARTS.match(text):
            yield f"{where}:{line}: a path joined by hand: {text!r}"


def spellings(root: Path = PACKAGE) -> list[str]:
    """Every copy of a path rule outside the handle module, in the package at ``root``."""
    return [copy for path in sorted(root.rglob("*.py")) if path != HANDLE
            for copy in copies(path, path.relative_to(root.parent).as_posix())]


def test_no_path_rule_is_spelled_outside_the_handle() -> None:
    assert spellings() == []


def test_templates_take_a_release_s_paths_from_the_handle() -> None:
    per_release = re.compile(r"(releases|patches|_src|_output|_results|_cluster)/\[\[")
    found = [f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
             for path in sorted((PACKAGE / "templates").rglob("*.j2"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if per_release.search(line)]
    assert found == []


@pytest.mark.parametrize("source", [
    'where = f"releases/{release}.yaml"',
    'path = root / "releases" / name',
    'bins = out / "bin/linux/amd64"',
    'binary = binaries.get(f"bin/{platform}/{component}")',
    'tree = root / "_src" / release',
    'print(f"another run uses _output/{release}")',
    'state = folder / "rebase.json"',
    'state = src.with_name(f".{release}.tkedistro")',
    'lock = folder.with_name(f".{release}.cluster.lock")',
    'ws.repo_file(f"patches/{release}", "patch folder")',
])
def test_the_check_sees_a_copied_rule(tmp_path: Path, source: str) -> None:
    package = tmp_path / "tkedistro"
    package.mkdir()
    (package / "copy.py").write_text(f'"""A docstring may say _src/<release>."""\n{source}\n')
    assert len(spellings(package)) == 1


def test_prose_and_kubernetes_own_output_are_not_copies(tmp_path: Path) -> None:
    package = tmp_path / "tkedistro"
    package.mkdir()
    (package / "prose.py").write_text(
        '"""Writes _output/<release> and releases/<release>.yaml."""\n'
        "def f():\n"
        '    """Reads _src/<release>."""\n'
        '    # a comment on _cluster/<release>\n'
        '    return "_output/local/bin", f"{x}/bin/{commit}", "releases/"\n')
    assert spellings(package) == []


def test_the_handle_names_what_the_rules_name(tmp_path: Path) -> None:
    release = Workspace(tmp_path, tmp_path / "cache").release("1.20")
    assert release.manifest_name == manifest_name("1.20") == "releases/1.20.yaml"
    assert release.manifest_file == tmp_path / "releases/1.20.yaml"
    assert release.bin_dir("linux/arm64") == tmp_path / "_output/1.20/bin/linux/arm64"
    assert output_bin("linux/arm/v7").as_posix() == "bin/linux/arm/v7"
    assert release.rebase_state == tmp_path / "_src/.1.20.tkedistro/rebase.json"
    assert str(release.layout.src) == "_src/1.20"


def test_the_binaries_default_to_this_host_s_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tkedistro.core import host

    monkeypatch.setattr(host.host, "machine", lambda: "aarch64")
    release = Workspace(tmp_path, tmp_path / "cache").release("1.20")
    assert release.bin_dir() == tmp_path / "_output/1.20/bin/linux/arm64"
