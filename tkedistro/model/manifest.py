"""The release manifest (``releases/<release>.yaml``): a typed, frozen model and its loader.

Nothing outside this module touches raw manifest YAML. The format is documented in
``docs/manifest.md``; ``SCHEMA_VERSION`` is the version this tool reads.
"""

from __future__ import annotations

import difflib
import io
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml.comments import CommentedMap

from tkedistro.core.errors import ManifestError, ReleaseNotFoundError
from tkedistro.core.files import write_atomic
from tkedistro.core.workspace import (
    MANIFEST_SUFFIX,
    MAX_MANIFEST_BYTES,
    MAX_RELEASE_CHARS,
    RELEASE_NAME,
    Workspace,
    check_release_name,
    manifest_name,
)
from tkedistro.core.workspace import list_release_names as list_release_names  # its old home
from tkedistro.model.patches import header_problem
from tkedistro.model.refs import COMMIT_PATTERN, MAX_TAG_CHARS, TAG_PATTERN, image_problem
from tkedistro.model.url import debian_mirror_problem, url_problem
from tkedistro.model.yamldoc import dotted, line_of, load_yaml, rt_yaml, unknown_key

SCHEMA_VERSION = 1

Component = Literal[
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
    "kubelet",
    "kubectl",
    "kubeadm",
]
Platform = Literal["linux/amd64", "linux/arm64"]
# What a release can ship as an image (``images:``); pause is built from the tree's build/pause
ImageComponent = Literal["kube-apiserver", "kube-controller-manager", "kube-scheduler",
                         "kube-proxy", "pause"]
IMAGE_COMPONENTS: tuple[str, ...] = get_args(ImageComponent)
COMPONENTS: tuple[str, ...] = get_args(Component)
PLATFORMS: tuple[str, ...] = get_args(Platform)
Hex40 = Annotated[str, Field(pattern=f"^{COMMIT_PATTERN}$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Tag = Annotated[str, Field(pattern=f"^{TAG_PATTERN}$", max_length=MAX_TAG_CHARS)]
MAX_VERSION_CHARS = 128  # distro_version is an image tag (Docker allows 128 characters)


def _checked_url(url: str) -> str:
    problem = url_problem(url)
    if problem:
        raise ValueError(problem)
    return url


UpstreamUrl = Annotated[str, Field(min_length=1), AfterValidator(_checked_url)]


def _checked_image(image: str) -> str:
    problem = image_problem(image)
    if problem:
        raise ValueError(problem)
    return image


ImageRef = Annotated[str, Field(min_length=1), AfterValidator(_checked_image)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Upstream(_Frozen):
    url: UpstreamUrl
    tag: Tag
    commit: Hex40


class Go(_Frozen):
    version: Annotated[str, Field(pattern=r"^1\.[0-9]+(\.[0-9]+)?$", max_length=16)]


class Builder(_Frozen):
    image: ImageRef


def _checked_mirror(url: str) -> str:
    problem = debian_mirror_problem(url)
    if problem:
        raise ValueError(problem)
    return url


class Debian(_Frozen):
    """Where the Debian roots this release needs are fetched from (``--debian-mirror``
    overrides it; ``DEBIAN_MIRROR`` and deb.debian.org come after it)."""

    mirror: Annotated[str | None, Field(min_length=1, max_length=2048),
                      AfterValidator(lambda u: None if u is None else _checked_mirror(u))] = None


def _checked_subject(subject: str | None) -> str | None:
    if subject is not None and (problem := header_problem(subject)):
        raise ValueError(f"{problem}; a subject is one line of text")
    return subject


class PatchEntry(_Frozen):
    """One entry of the ordered series; ``file`` is relative to the distro repo root."""

    file: str = Field(min_length=1)
    # for plain `git diff` files without mail headers; it becomes a mail's Subject: header
    subject: Annotated[str | None, AfterValidator(_checked_subject)] = None


class Manifest(_Frozen):
    schema_version: Literal[1] = Field(alias="schema")
    release: Annotated[str, Field(pattern=f"^{RELEASE_NAME.pattern}$",
                                  max_length=MAX_RELEASE_CHARS)]
    upstream: Upstream
    distro_version: Annotated[str, Field(pattern=r"^v[0-9]+\.[0-9]+\.[0-9]+-[0-9A-Za-z.-]+$",
                                         max_length=MAX_VERSION_CHARS)]
    go: Go
    builder: Builder
    components: tuple[Component, ...] = Field(min_length=1)
    platforms: tuple[Platform, ...] = Field(default=("linux/amd64",), min_length=1)
    patches: tuple[PatchEntry, ...] = ()
    images: tuple[ImageComponent, ...] = ()  # shipped as OCI images, one index per component
    debian: Debian | None = None  # the Debian mirror of its builder image and bases

    # Where it was loaded from (not part of the YAML).
    path: Path = Field(default=Path(), exclude=True)

    def summary(self) -> dict[str, Any]:
        left_out = {"path"} | ({"debian"} if self.debian is None else set())
        return self.model_dump(mode="json", by_alias=True, exclude=left_out)

    @property
    def debian_mirror(self) -> str | None:
        """``debian.mirror``, when the manifest names one."""
        return self.debian.mirror if self.debian else None


_EXPECT = {
    "upstream.commit": "a full 40-character lowercase hex commit SHA",
    "upstream.tag": "a tag like v1.20.2",
    "distro_version": "a version like v1.20.2-tke.1",
    "release": 'a release name like "1.20"',
    "go.version": 'a Go version like "1.15.15"',
}


def _describe(err: ErrorDetails) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden" and loc == ("upstream", "archive"):
        return ("no longer supported: tkedistro always fetches upstream with git; "
                "delete upstream.archive")
    if kind == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    if kind == "extra_forbidden":
        return unknown_key(Manifest, loc)
    if kind == "missing":
        return "required key is missing"
    key = dotted(tuple(p for p in loc if not isinstance(p, int)))
    if kind == "literal_error" and loc and loc[0] in ("components", "platforms"):
        allowed = COMPONENTS if loc[0] == "components" else PLATFORMS
        close = difflib.get_close_matches(str(err.get("input")), allowed, n=1)
        guess = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown value {err.get('input')!r}{guess} (allowed: {', '.join(allowed)})"
    if kind == "literal_error" and loc == ("schema",):
        got = err.get("input")
        if isinstance(got, str) and got.strip() == str(SCHEMA_VERSION):
            return (f"expected the number {SCHEMA_VERSION}, got the string {got!r}; "
                    f"write schema: {SCHEMA_VERSION} without quotes")
        return f"unsupported schema version {got!r}; this tkedistro reads {SCHEMA_VERSION}"
    if kind == "string_pattern_mismatch" and key in _EXPECT:
        return f"expected {_EXPECT[key]}, got {err.get('input')!r}"
    return _describe_type(err, key)


def _describe_type(err: ErrorDetails, key: str) -> str:
    """A value of the wrong YAML type: a number for a string, a scalar for a list or mapping."""
    kind, got = err["type"], err.get("input")
    if kind == "string_type" and isinstance(got, int | float):
        expected = _EXPECT.get(key, "a string")
        return f"expected {expected}, got the number {got!r}; quote it in YAML"
    if kind in ("tuple_type", "list_type"):
        empty = " (write [] for an empty list)" if got is None else ""
        return f"expected a list, got {got!r}{empty}"
    if kind == "too_short":
        return f"expected at least one entry, got {got!r}"
    if kind == "string_too_long" and isinstance(got, str):
        most = err.get("ctx", {}).get("max_length")
        return f"expected at most {most} characters, got {len(got)}"
    if kind in ("model_type", "dict_type"):
        return f"expected a mapping of keys, got {got!r}"
    return f"{err['msg']} (got {got!r})"


def _problems(exc: ValidationError, data: CommentedMap, display: str) -> list[str]:
    """One message per schema error, in file order; follow-on errors of a bad item are dropped."""
    errors = exc.errors()
    bad = {tuple(e["loc"][:-1]) for e in errors if e["type"] == "literal_error"}
    found: list[tuple[int, str]] = []
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "too_short" and loc in bad:
            continue  # "at least 1 item" after an unknown value was rejected
        line = line_of(data, loc)
        where = f"{display}:{line}" if line else display
        found.append((line or 0, f"{where}: {dotted(loc)}: {_describe(err)}"))
    return [message for _, message in sorted(found, key=lambda item: item[0])]


def parse_manifest(text: str, path: Path, display: str) -> Manifest:
    """Parse manifest text; every problem is collected into one ``ManifestError``."""
    data = load_yaml(text, display, ManifestError)
    if not isinstance(data, CommentedMap):
        raise ManifestError([f"{display}: expected a mapping of keys at the top level"])
    if "path" in data:  # the loader's own field, never a YAML key
        line = line_of(data, ("path",))
        raise ManifestError([f"{display}:{line}: path: unknown key"])
    try:
        manifest = Manifest.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise ManifestError(_problems(exc, data, display)) from None
    expected = path.stem
    if manifest.release != expected:
        line = line_of(data, ("release",))
        raise ManifestError(
            [f"{display}:{line}: release: {manifest.release!r} does not match the file name "
             f"(expected {expected!r})"]
        )
    _refuse_repeats(manifest, data, display)
    unbuilt = [c for c in manifest.images if c != "pause" and c not in manifest.components]
    if unbuilt:
        line = line_of(data, ("images",))
        raise ManifestError(
            [f"{display}:{line}: images: {', '.join(unbuilt)} not in components (an image "
             "holds the component's binary: add it to components or drop the image)"])
    return manifest


def _refuse_repeats(manifest: Manifest, data: CommentedMap, display: str) -> None:
    """A component, platform or image listed twice is a mistake (the build would make it
    twice, or one entry would silently win): every repeat is named."""
    problems = []
    for key in ("components", "platforms", "images"):
        values: tuple[str, ...] = getattr(manifest, key)
        for index, value in enumerate(values):
            if value in values[:index]:
                line = line_of(data, (key, index))
                problems.append(f"{display}:{line}: {key}[{index}]: {value} is listed twice "
                                f"(first as {key}[{values.index(value)}]); list each once")
    if problems:
        raise ManifestError(problems)


def load_manifest(path: Path, display: str | None = None) -> Manifest:
    """Load and check the manifest at ``path`` (shown as ``display`` in messages)."""
    shown = display or str(path)
    return parse_manifest(_read_text(path, shown), path, shown)


def load_release(ws: Workspace, release: str) -> Manifest:
    """The manifest of ``release`` in ``ws``: the one loader every command uses."""
    path = ws.manifest_path(check_release_name(release))
    manifest = load_manifest(path, manifest_name(release))
    _refuse_case_twins(path.parent, release)
    return manifest


def _refuse_case_twins(releases_dir: Path, release: str) -> None:
    """Two manifests whose names differ only in case are one release on a case-insensitive
    file system (a checkout, an archive, a registry path): refused, naming both."""
    stems = (name.removesuffix(MANIFEST_SUFFIX) for name in os.listdir(releases_dir)
             if name.endswith(MANIFEST_SUFFIX))
    twins = sorted(stem for stem in stems if stem != release and stem.lower() == release.lower())
    if twins:
        raise ManifestError(
            [f"{manifest_name(release)} and {manifest_name(twins[0])} differ only in case: "
             "they collide on a case-insensitive file system"],
            hint="rename or remove one of them (release names are best lowercase)")


def _read_text(path: Path, shown: str) -> str:
    """The manifest's text; a missing, odd, huge or non-UTF-8 file is a ``ManifestError``."""
    try:
        info = path.stat()
    except FileNotFoundError:
        names = list_release_names(path.parent) if path.parent.is_dir() else []
        known = ", ".join(names) or "none"
        raise ReleaseNotFoundError([f"{shown}: no such manifest (releases: {known})"]) from None
    if path.is_dir():
        raise ManifestError([f"{shown}: is a folder, not a manifest file"])
    if not path.is_file():
        raise ManifestError([f"{shown}: not a regular file (a FIFO or device?); "
                             "a manifest is a plain YAML file"])
    if info.st_size > MAX_MANIFEST_BYTES:
        raise ManifestError([f"{shown}: {info.st_size} bytes is more than the "
                             f"{MAX_MANIFEST_BYTES // 1024} KiB a manifest may have"])
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ManifestError([f"{shown}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} "
                             "cannot be decoded); save the manifest as UTF-8"]) from None


def update_pin(path: Path, *, tag: str, commit: str, distro_version: str | None = None,
               patch_files: list[str] | None = None,
               renamed: dict[str, str] | None = None) -> None:
    """Rewrite the upstream pin (and optionally version and series) keeping comments;
    ``renamed`` maps a new patch file name to the entry (old name) it continues."""
    y = rt_yaml()
    text = path.read_text(encoding="utf-8")
    if re.search(r"^[A-Za-z_][A-Za-z0-9_-]*:[ \t]*(#.*)?\n  - ", text, re.M):
        y.indent(mapping=2, sequence=4, offset=2)  # keep "key:\n  - item" lists as written
    data = y.load(text)
    data["upstream"]["tag"] = tag
    data["upstream"]["commit"] = commit
    if distro_version is not None:
        data["distro_version"] = distro_version
    if patch_files is not None:
        old = {e["file"]: e for e in data.get("patches") or []}
        was = renamed or {}
        data["patches"] = [old.get(was.get(f, f), {"file": f}) for f in patch_files]
        for entry, f in zip(data["patches"], patch_files, strict=True):
            if was.get(f, f) != f:
                entry["file"] = f
    buf = io.StringIO()
    y.dump(data, buf)
    write_atomic(path, buf.getvalue().encode("utf-8"))
