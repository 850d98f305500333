"""The images the conformance specs need, derived from a Kubernetes source tree (v1.20.2 layout).

No hand-kept table: ``load_catalog(tree)`` reads ``test/utils/image/manifest.go`` (the
``RegistryList`` yaml keys, their defaults in ``initReg()``, the package variables naming them,
``initImageConfigs()`` and one-line helpers such as ``GetPauseImageName()``; a line of those
blocks it cannot read is an error naming file and line, never skipped),
``test/conformance/testdata/conformance.yaml`` (each spec's ``codename`` and ``file``) and Go
sources, comments and string contents masked.

**Needed images**: an image constant (``imageutils.X`` under the file's import alias, or a
manifest helper returning one) referenced in a file holding conformance specs, or in a *helper
file* of the same Go packages (the folders of those files) or of ``test/e2e/framework/**``
(helper file: a ``.go`` file, not ``_test.go``, without ginkgo ``It(`` / ``ConformanceIt(``
calls); plus every image attributed to a spec below.

**Per spec**: the arguments of each ``ConformanceIt("text", ...)`` call (brackets matched)
belong to the codename of its file ending in ``text [Conformance]`` (the longest text wins),
together with the code that runs before it: the ``Describe``/``Context``/``When`` calls holding
it minus every ``It`` call and every container not holding it (``BeforeEach``, container-level
variables). Its images are the constants named there and those of the package-level variables
and functions it names (unqualified in its package, or through the import alias of another
package of the tree), followed transitively. Methods and testdata manifests are not followed,
so an image only a helper uses may list no spec.

Registries whose key says the pull must fail (``invalid``, ``authenticated``, ``private``) mark
their needs ``expect_failure``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from tkedistro.conformance.gosource import GoIndex
from tkedistro.core.errors import ClusterError

MANIFEST = "test/utils/image/manifest.go"
CONFORMANCE_YAML = "test/conformance/testdata/conformance.yaml"
FAILURE_WORDS = ("invalid", "authenticated", "private")
_HINT = ("the image catalogue is derived from the tree; a layout this reader does not know "
         "needs a change in tkedistro/conformance/catalog.py")


@dataclass(frozen=True)
class ImageConfig:
    """One entry of ``initImageConfigs()`` with its registry's default value."""

    constant: str
    registry_key: str
    name: str
    version: str
    registry: str

    @property
    def ref(self) -> str:
        return f"{self.registry}/{self.name}:{self.version}"

    @property
    def expect_failure(self) -> bool:
        return expect_failure_key(self.registry_key)


@dataclass(frozen=True)
class ImageNeed:
    constant: str
    ref: str
    registry_key: str
    name: str
    version: str
    specs: tuple[str, ...]  # conformance codenames; empty when only a helper references it
    files: tuple[str, ...]  # tree-relative files referencing it
    expect_failure: bool = False


@dataclass(frozen=True)
class Catalog:
    registries: Mapping[str, str]  # yaml key -> default value
    needs: tuple[ImageNeed, ...]
    all_configs: tuple[ImageConfig, ...]
    specs: tuple[str, ...] = ()  # every conformance codename

    def need(self, ref: str) -> ImageNeed | None:
        return next((n for n in self.needs if n.ref == ref), None)


def load_catalog(tree: Path) -> Catalog:
    """The catalogue of the tree at ``tree`` (pure: reads files only)."""
    registries, configs, helpers = parse_manifest(tree / MANIFEST)
    specs = parse_conformance_yaml(tree / CONFORMANCE_YAML)
    index = GoIndex(tree, {c.constant for c in configs}, helpers)
    spec_dirs = sorted({str(Path(f).parent) for _, f in specs})
    files = _invert(index.file_images(spec_dirs, {f for _, f in specs}))
    by_spec = _invert(index.spec_images(specs))
    needs = tuple(
        ImageNeed(c.constant, c.ref, c.registry_key, c.name, c.version,
                  tuple(sorted(by_spec.get(c.constant, ()))),
                  tuple(sorted(files.get(c.constant, ()))), c.expect_failure)
        for c in configs if c.constant in files or c.constant in by_spec)
    return Catalog(registries, needs, tuple(configs), tuple(c for c, _ in specs))


def _invert(pairs: Iterable[tuple[str, set[str]]]) -> dict[str, set[str]]:
    """(name, constants) pairs -> constant -> names."""
    found: dict[str, set[str]] = {}
    for name, constants in pairs:
        for constant in constants:
            found.setdefault(constant, set()).add(name)
    return found


def expect_failure_key(key: str) -> bool:
    """A registry key whose pulls specs expect to fail (``invalidRegistry`` ...)."""
    return any(word in key.lower() for word in FAILURE_WORDS)


def specs_needing(catalog: Catalog, refs: Iterable[str]) -> list[str]:
    """Codenames of the specs that need any of ``refs`` (default refs, or names ending in
    ``/<default ref>`` such as a local registry's copy), sorted."""
    wanted = set(refs)
    found: set[str] = set()
    for need in catalog.needs:
        if need.ref in wanted or any(r.endswith("/" + need.ref) for r in wanted):
            found.update(need.specs)
    return sorted(found)


# --- test/utils/image/manifest.go ------------------------------------------------------------

_STRUCT_LINE = re.compile(r'(\w+)\s+string\s+`yaml:"(\w+)"`')
_DEFAULT_LINE = re.compile(r'(\w+):\s*"([^"]*)",')
_VAR_LINE = re.compile(r"(\w+)\s*=\s*(?:registry\.(\w+)|\w+\(\))")
_CONFIG_LINE = re.compile(
    r'configs\s*:=\s*map\[int\]Config\{\}|return configs'
    r'|configs\[(\w+)\]\s*=\s*Config\{(\w+),\s*"([^"]*)",\s*"([^"]*)"\}')
_HELPER = re.compile(r"func (\w+)\(\) string \{\s*return GetE2EImage\((\w+)\)\s*\}")


def parse_manifest(
    path: Path,
) -> tuple[dict[str, str], list[ImageConfig], dict[str, str]]:
    """(yaml key -> default registry, the image configs in file order, helper -> constant)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ClusterError(f"{path}: cannot read the image manifest ({exc.strerror})",
                           hint=_HINT) from None
    lines = text.splitlines()
    keys = {m[1]: m[2] for _, m in _matches(
        path, lines, "type RegistryList struct {", "}", _STRUCT_LINE, "a RegistryList field")}
    defaults: dict[str, str] = {}
    for number, m in _matches(path, lines, "registry := RegistryList{", "}", _DEFAULT_LINE,
                              "a registry default"):
        if m[1] not in keys:
            _fail(path, number, f"initReg() sets {m[1]}, which RegistryList does not declare")
        defaults[keys[m[1]]] = m[2]
    variables: dict[str, str] = {}
    for number, m in _matches(path, lines, "var (", ")", _VAR_LINE, "a package variable"):
        if m[2] is not None:
            if m[2] not in keys:
                _fail(path, number, f"registry.{m[2]} is not a RegistryList field")
            variables[m[1]] = keys[m[2]]
    configs = _configs(path, lines, variables, defaults)
    helpers = {m[1]: m[2] for m in _HELPER.finditer(text)}
    return defaults, configs, helpers


def _configs(path: Path, lines: list[str], variables: Mapping[str, str],
             defaults: Mapping[str, str]) -> list[ImageConfig]:
    configs: list[ImageConfig] = []
    for number, m in _matches(path, lines, "func initImageConfigs() map[int]Config {", "}",
                              _CONFIG_LINE, "an image config"):
        if m[1] is None:
            continue
        key = variables.get(m[2], "")
        if key not in defaults:
            _fail(path, number, f"{m[2]} is not a registry variable with a default in initReg()")
        configs.append(ImageConfig(m[1], key, m[3], m[4], defaults[key]))
    if not configs:
        raise ClusterError(f"{path}: initImageConfigs() sets no image config", hint=_HINT)
    return configs


def _matches(path: Path, lines: list[str], start: str, end: str, pattern: re.Pattern[str],
             what: str) -> list[tuple[int, re.Match[str]]]:
    """Each line strictly inside the block ``start`` .. ``end`` matched by ``pattern``
    (blank and comment lines skipped); any other line is an error naming it."""
    begin = next((i for i, line in enumerate(lines) if line.strip() == start), None)
    if begin is None:
        raise ClusterError(f"{path}: no `{start}` block", hint=_HINT)
    found: list[tuple[int, re.Match[str]]] = []
    for number in range(begin + 2, len(lines) + 1):
        text = lines[number - 1].strip()
        if text == end:
            return found
        if not text or text.startswith("//"):
            continue
        m = pattern.fullmatch(text)
        if m is None:
            _fail(path, number, f"cannot read {what} here: {text!r}")
        found.append((number, m))
    raise ClusterError(f"{path}: the `{start}` block has no closing `{end}`", hint=_HINT)


def _fail(path: Path, number: int, message: str) -> NoReturn:
    raise ClusterError(f"{path}:{number}: {message}", hint=_HINT)


# --- test/conformance/testdata/conformance.yaml -----------------------------------------------

def parse_conformance_yaml(path: Path) -> list[tuple[str, str]]:
    """(codename, tree-relative file) of every conformance spec, in file order."""
    try:
        data = YAML(typ="safe").load(path.read_bytes())
    except (OSError, YAMLError) as exc:
        raise ClusterError(f"{path}: cannot read the conformance spec list ({exc})") from None
    specs: list[tuple[str, str]] = []
    for number, entry in enumerate(data if isinstance(data, list) else [None]):
        if not (isinstance(entry, dict) and isinstance(entry.get("codename"), str)
                and isinstance(entry.get("file"), str)):
            raise ClusterError(f"{path}: entry {number}: expected a mapping with `codename` "
                               "and `file` strings", hint=_HINT)
        specs.append((entry["codename"], entry["file"]))
    return specs
