"""The proof a patch declares in its ``Proof:`` trailer, parsed into a frozen, typed spec.

``Proof: <kind> key=value ...`` names one generic check kind and its parameters (quoted like
a shell word when a value has spaces; continuation lines are joined). The proof travels with
the patch itself, so ``patches reorder``, ``export`` and a rebase keep it attached, and
another distro repo declares its own without code. The kinds are run by
``tkedistro.cluster.proofkinds``; what each accepts is written here, once, so ``validate``
can check it. The format is documented in ``docs/patches.md``.
"""

from __future__ import annotations

import difflib
import shlex
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from tkedistro.core.errors import PatchFormatError

PROOF_TRAILER = "Proof"


def _comma_list(value: Any) -> Any:
    """``401,403`` -> ``("401", "403")`` (a trailer value is one string)."""
    return tuple(v.strip() for v in value.split(",")) if isinstance(value, str) else value


HttpStatus = Annotated[int, Field(ge=100, le=599)]
StatusList = Annotated[tuple[HttpStatus, ...], BeforeValidator(_comma_list)]
Word = Annotated[str, Field(pattern=r"^\S+$")]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid",
                              alias_generator=lambda name: name.replace("_", "-"))


ControlPlane = Literal["kube-apiserver", "kube-controller-manager", "kube-scheduler"]


class ComponentHttp(_Spec):
    """An HTTP request to a control-plane component's secure port inside the control-plane
    node: without credentials, then as a ``system:masters`` client."""

    kind: Literal["component-http"]
    component: ControlPlane
    port: Annotated[int, Field(ge=1, le=65535)] | None = None  # default: the component's
    method: Literal["GET", "PUT", "POST", "PATCH", "DELETE"] = "GET"
    path: Annotated[str, Field(pattern=r"^/\S*$")]
    anonymous: StatusList = ()  # statuses a request without credentials may get
    body: str = ""  # sent by the system:masters client
    status: HttpStatus = 200  # what it must get
    says: str | None = None  # text its answer must hold
    bad_body: str | None = None  # a second body the component must refuse ...
    bad_status: HttpStatus | None = None  # ... with this status
    restore_flag: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")] | None = None

    @model_validator(mode="after")
    def _bad_pair(self) -> ComponentHttp:
        if (self.bad_body is None) != (self.bad_status is None):
            raise ValueError("bad-body and bad-status go together (a body the component "
                             "must refuse, and the status it refuses it with)")
        return self


class MetricLabels(_Spec):
    """The kubelet's metrics endpoint for the check's own pod: its container's series carry
    the container, pod, namespace and image labels; its sandbox's the ``sandbox`` value."""

    kind: Literal["metric-labels"]
    endpoint: Annotated[str, Field(pattern=r"^/metrics(/[a-z]+)*$")]
    sandbox: Word | None = None  # the container label of the pod sandbox's series


CgroupName = Literal["kubepods", "pod", "container"]
Controller = Literal["memory", "cpu", "cpuacct", "pids", "blkio", "cpuset", "hugetlb"]


class CgroupValue(_Spec):
    """A cgroup v1 file of the cgroups the kubelet made for the check's own pod (which has
    a memory limit) must equal, or contain, a value."""

    kind: Literal["cgroup-value"]
    controller: Controller
    file: Annotated[str, Field(pattern=r"^[a-z_]+\.[a-z0-9_.]+$")]
    equals: Annotated[str, Field(pattern=r"^([0-9]+|unlimited)$")] | None = None
    contains: Annotated[str, Field(min_length=1)] | None = None
    cgroups: Annotated[tuple[CgroupName, ...], BeforeValidator(_comma_list),
                       Field(min_length=1)] = ("kubepods", "pod")

    @model_validator(mode="after")
    def _one_expectation(self) -> CgroupValue:
        if (self.equals is None) == (self.contains is None):
            raise ValueError("give one of equals= (a number or unlimited) or contains=")
        if not self.file.startswith(f"{self.controller}."):
            raise ValueError(f"file {self.file} is not a file of the {self.controller} "
                             f"controller (expected {self.controller}.<name>)")
        return self


Spec = ComponentHttp | MetricLabels | CgroupValue
ProofSpec = Annotated[Spec, Field(discriminator="kind")]
SPECS: dict[str, type[_Spec]] = {
    get_args(cls.model_fields["kind"].annotation)[0]: cls
    for cls in (ComponentHttp, MetricLabels, CgroupValue)}
KIND_NAMES = tuple(sorted(SPECS))
_ADAPTER: TypeAdapter[Spec] = TypeAdapter(ProofSpec)


def parse_proof(value: str, display: str) -> Spec:
    """The spec a ``Proof:`` trailer value declares; ``PatchFormatError`` (naming ``display``
    and each wrong key) when it declares none that can run."""
    read = _read(value)
    if isinstance(read, list):
        raise PatchFormatError([f"{display}: trailer {PROOF_TRAILER}: {p}" for p in read])
    return read


def proof_problems(value: str | None, display: str) -> list[str]:
    """What is wrong with a ``Proof:`` trailer value (nothing when absent or good)."""
    read = [] if value is None else _read(value)
    return [f"{display}: trailer {PROOF_TRAILER}: {p}" for p in read] \
        if isinstance(read, list) else []


def _read(value: str) -> Spec | list[str]:
    """The spec, or what is wrong with ``value`` (each message names the key)."""
    try:
        words = shlex.split(value)
    except ValueError as exc:
        return [f"{str(exc).lower()} (quote a value with spaces: key=\"a b\")"]
    if not words:
        return [f"empty (expected a kind: {', '.join(KIND_NAMES)})"]
    kind, params = words[0], _pairs(words[1:])
    if kind not in SPECS:
        close = difflib.get_close_matches(kind, KIND_NAMES, n=1)
        guess = f"; did you mean '{close[0]}'?" if close else ""
        return [f"unknown kind {kind!r}{guess} (known: {', '.join(KIND_NAMES)})"]
    if isinstance(params, list):
        return [f"{kind}: {p}" for p in params]
    try:
        return _ADAPTER.validate_python({**params, "kind": kind})
    except ValidationError as exc:
        return [f"{kind}: {_describe(err, SPECS[kind])}" for err in exc.errors()]


def _pairs(words: list[str]) -> dict[str, str] | list[str]:
    params: dict[str, str] = {}
    problems = []
    for word in words:
        key, sep, val = word.partition("=")
        if not sep or not key:
            problems.append(f"{word!r} is not key=value")
        elif key in params or key == "kind":
            problems.append(f"key {key}: given twice" if key != "kind" else
                            "key kind: the kind is the first word, not a key")
        else:
            params[key] = val
    return problems or params


_EXPECT = {
    "port": "a port number", "path": "a path like /debug/flags/v",
    "anonymous": "HTTP statuses like 401,403", "status": "an HTTP status like 200",
    "bad-status": "an HTTP status like 400", "restore-flag": "a flag name like v",
    "endpoint": "a kubelet path like /metrics/cadvisor", "sandbox": "one word like POD",
    "file": "a cgroup file name like memory.limit_in_bytes",
    "equals": "a number or unlimited", "contains": "some text",
    "cgroups": "some of kubepods,pod,container",
}


def _keys(spec: type[_Spec]) -> list[str]:
    return [f.alias or n for n, f in spec.model_fields.items() if n != "kind"]


def _describe(err: ErrorDetails, spec: type[_Spec]) -> str:
    """One pydantic error as ``key K: what was wrong (what is expected)``."""
    loc = [str(p) for p in err["loc"][1:] if not isinstance(p, int)]  # [0] is the kind
    key, kind, got = (loc[0] if loc else ""), err["type"], err.get("input")
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(key, _keys(spec), n=1)
        guess = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown key {key!r}{guess} (allowed: {', '.join(_keys(spec))})"
    if kind == "missing":
        return f"key {key}: required"
    if kind == "value_error" and not key:
        return str(err.get("ctx", {}).get("error", err["msg"]))
    if kind == "literal_error":
        allowed = str(err.get("ctx", {}).get("expected", "")).replace("'", "")
        close = difflib.get_close_matches(str(got), allowed.replace(" or ", ", ").split(", "),
                                          n=1)
        guess = f"; did you mean '{close[0]}'?" if close else ""
        return f"key {key}: {got!r} is not allowed{guess} (expected {allowed})"
    if key in _EXPECT:
        return f"key {key}: expected {_EXPECT[key]}, got {got!r}"
    return f"key {key}: {err['msg'][:1].lower()}{err['msg'][1:]} (got {got!r})"
