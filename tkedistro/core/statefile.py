"""Reading one of the tool's own state files back as data, never as something to trust.

A state file (``source.json``, ``build-run.json``, ``rebase.json``, the rebase backup's
``listing.json``) is read without following a symlink, parsed as strict JSON (no ``NaN``, no
``Infinity``, no number that overflows to one, like ``1e400``) and then checked against the
schema of the module that owns it. Whatever does not hold what the tool writes is
``DamagedStateError`` (exit 17): the file, the key, what is wrong, and how to recover.

Cheap to import (no pydantic): ``tkedistro source``'s up-to-date path reads ``source.json``
with the hand checks here; the pydantic schemas' errors are turned into the same words by
``StateFile.invalid``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tkedistro.core import files
from tkedistro.core.errors import DamagedStateError
from tkedistro.core.files import read_text
from tkedistro.core.workspace import path_problem

MAX_STATE_BYTES = 16 * 1024 * 1024  # a rebase of thousands of patches writes well under 1 MiB
T = TypeVar("T")


@dataclass(frozen=True)
class StateFile:
    """One state file: where it is, how messages name it, what it holds, how to recover."""

    path: Path
    shown: str  # repo-relative, as messages name it: _src/.1.20.tkedistro/rebase.json
    what: str  # "the rebase state"
    recovery: str  # the hint of every refusal: what to run, or delete, and what that does

    def damaged(self, problems: Iterable[str]) -> DamagedStateError:
        """The refusal for ``problems`` (each ``key: what is wrong``)."""
        listed = "; ".join(problems)
        return DamagedStateError(f"{self.shown}: {listed}; {self.what} is damaged, "
                                 "not what tkedistro writes", hint=self.recovery)

    def read(self) -> dict[str, Any]:
        """The file's JSON object. ``FileNotFoundError`` when it is missing (the caller says
        what that means), ``UnsafePathError`` for a symlink, ``DamagedStateError`` else."""
        try:
            text = read_text(self.path, max_bytes=MAX_STATE_BYTES)
        except FileNotFoundError:
            raise
        except UnicodeDecodeError:
            raise self.damaged(["not UTF-8 text"]) from None
        except OSError as exc:
            raise self.damaged([f"cannot be read ({exc.strerror or exc})"]) from None
        try:
            data = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
        except _NotFinite as exc:
            raise self.damaged([str(exc)]) from None
        except json.JSONDecodeError as exc:
            raise self.damaged([f"not JSON ({exc.msg} at line {exc.lineno} column "
                                f"{exc.colno})"]) from None
        except (ValueError, RecursionError) as exc:  # an integer of 4,300+ digits, deep nesting
            raise self.damaged([f"not JSON tkedistro writes ({str(exc)[:80]})"]) from None
        if not isinstance(data, dict):
            raise self.damaged([f"{kind_of(data)} where a JSON object is expected"])
        return data

    def keys(self, data: Mapping[str, Any], where: str, required: Sequence[str],
             optional: Sequence[str] = ()) -> None:
        """Refuse a missing key of ``required`` and any key not in either."""
        problems = [f"{_at(where, k)}: required" for k in required if k not in data]
        problems += [f"{_at(where, k)}: unknown key (known: {', '.join([*required, *optional])})"
                     for k in data if k not in required and k not in optional]
        if problems:
            raise self.damaged(problems)

    def value(self, data: Mapping[str, Any], key: str, kind: type[T], where: str = "",
              expected: str = "") -> T:
        """``data[key]`` when it is a ``kind`` (a ``bool`` is no ``int``)."""
        value = data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            got = kind_of(value)
            raise self.damaged([f"{_at(where, key)}: expected {expected or kind.__name__}, "
                                f"got {got}"])
        return value

    def in_repo(self, root: Path, name: str, key: str) -> str:
        """``name`` when the path policy takes it as a repo file (relative, no ``..`` or
        symlink out of the repo; it need not exist)."""
        problem = path_problem(root, name, must_exist=False)
        if problem and (link := planted_symlink(root, name)):
            raise files.refuse_symlink(link)  # the state is fine: the repo has a symlink
        if problem:
            raise self.damaged([f"{key}: {problem}"])
        return name

    def invalid(self, errors: Iterable[Mapping[str, Any]]) -> DamagedStateError:
        """The refusal for a pydantic ``ValidationError``'s ``errors()``."""
        return self.damaged(_described(e) for e in list(errors)[:5])


def planted_symlink(root: Path, name: str) -> Path | None:
    """The symlink inside the repo through which the repo-relative ``name`` leaves it."""
    if os.path.isabs(name) or os.path.normpath(name).startswith(".."):
        return None
    return files.symlink_below(root, name)


class _NotFinite(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotFinite(f"holds {name}, which is no number tkedistro writes")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(f"holds the number {text[:40]}, too large to be one tkedistro writes")
    return value


def kind_of(value: object) -> str:
    """How a message names a JSON value: the value itself when short, else its kind."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def dotted(loc: Iterable[int | str]) -> str:
    """``("series", 2, "file")`` -> ``series[2].file``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _described(error: Mapping[str, Any]) -> str:
    """One pydantic error as ``key: what is wrong`` (``what is wrong`` for the whole object)."""
    key, kind = dotted(error.get("loc", ())), error.get("type")
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if kind in ("missing", "extra_forbidden"):
        message = "required" if kind == "missing" else "unknown key"
    elif message.startswith("Input should be "):
        message = f"expected {message.removeprefix('Input should be ')}, got " \
                  f"{kind_of(error.get('input'))}"
    elif kind != "value_error":
        message = f"{message[:1].lower()}{message[1:]} (got {kind_of(error.get('input'))})"
    return f"{key}: {message}" if key else message
