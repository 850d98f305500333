"""A YAML document a maintainer writes (a release manifest, ``tkedistro.yaml``): read
round-trip with its line numbers, aliases bounded, and pydantic's errors told as
``file:line: key: reason``.

Each document's module keeps its own model and its own wording of schema errors; this one
holds what they share: the parser, the alias-bomb bound, where a key is, and the
"unknown key; did you mean" message.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from tkedistro.core.errors import TkedistroError

MAX_YAML_NODES = 100_000  # after expanding aliases; stops "billion laughs" alias bombs

# the error a document's problems become (``ManifestError``, ``RepoConfigError``)
ProblemsError = Callable[[Sequence[str]], TkedistroError]


def rt_yaml() -> YAML:
    """The round-trip parser: keeps comments, quotes and line numbers."""
    y = YAML(typ="rt")
    y.preserve_quotes = True
    return y


def load_yaml(text: str, display: str, error: ProblemsError) -> Any:
    """``text`` parsed; a syntax error, a structure nested too deeply or aliases expanding
    past ``MAX_YAML_NODES`` raise ``error`` naming ``display`` (and the line)."""
    try:
        data = rt_yaml().load(io.StringIO(text))
    except MarkedYAMLError as exc:
        raise error([syntax_problem(exc, display)]) from exc
    except YAMLError as exc:  # no position known (e.g. a character YAML does not allow)
        raise error([f"{display}: YAML syntax error: {exc}"]) from None
    except RecursionError:
        raise error([f"{display}: YAML nested too deeply"]) from None
    if _expanded_size(data, display, error) > MAX_YAML_NODES:
        raise error([f"{display}: YAML anchors and aliases expand to more than "
                     f"{MAX_YAML_NODES} values (an alias bomb?); write the values "
                     "out instead of using aliases"])
    return data


def syntax_problem(exc: MarkedYAMLError, display: str) -> str:
    """``file:line: YAML syntax error: ...`` plus where an unclosed [ { or quote started."""
    mark = exc.problem_mark or exc.context_mark
    where = f"{display}:{mark.line + 1}" if mark else display
    message = f"{where}: YAML syntax error: {exc.problem or exc}"
    start = exc.context_mark
    unfinished = exc.context and ("flow" in exc.context or "quoted" in exc.context)
    if unfinished and start and mark and start.line != mark.line:
        message += f" ({exc.context} started on line {start.line + 1})"
    return message


def _expanded_size(data: Any, display: str, error: ProblemsError) -> int:
    """How many nodes ``data`` has with every alias expanded (what pydantic would walk)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, dict | list):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise error([f"{display}: YAML alias refers to itself (a recursive "
                         "structure); this file holds plain values"])
        active.add(key)
        children = node.values() if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_YAML_NODES:
                break
        active.discard(key)
        sizes[key] = total
        return total

    return size(data)


def line_of(data: Any, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the deepest node of ``loc`` that exists in the YAML."""
    line: int | None = None
    node = data
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line = node.lc.key(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
            line = node.lc.item(key)[0] + 1
            node = node[key]
        else:
            break
    return line


def dotted(loc: tuple[int | str, ...]) -> str:
    """``("patches", 0, "file")`` -> ``patches[0].file``; ``()`` -> ``(top level)``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def model_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model under ``root`` that owns the mapping at ``loc``."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            return None
    return model if isinstance(model, type) else None


def field_names(model: type[BaseModel]) -> list[str]:
    """The keys a mapping of ``model`` may have, as written in YAML."""
    return [f.alias or name for name, f in model.model_fields.items() if not f.exclude]


def unknown_key(root: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """``unknown key; did you mean 'x'? (allowed: ...)`` for the key at ``loc``."""
    owner = model_at(root, loc[:-1])
    names = field_names(owner) if owner else []
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    guess = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key{guess} (allowed: {', '.join(names)})"
