"""Several ``docker load`` archives joined into one, byte for byte the same for the same parts.

A docker archive (``docker save``'s format, which ``skopeo`` writes as ``docker-archive:``)
holds ``manifest.json`` (one entry per image: its config, its ``RepoTags`` and its layers),
the legacy ``repositories`` map, and files named by digest (configs, layers, per-layer
folders). Files of the same name in two parts are the same content (their names are digests
or derived from them), so the union of the parts' files, one ``manifest.json`` listing every
image and one ``repositories`` merging every name, is an archive ``docker load`` and
``ctr images import`` read whole. Entries are sorted, owned by 0:0 with no names, mode 0444
(0755 for folders) and the given mtime, in plain ustar.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Collection, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tkedistro.core import files
from tkedistro.core.errors import ImageError

MANIFEST = "manifest.json"
REPOSITORIES = "repositories"


def _json_member(tar: tarfile.TarFile, name: str, archive: Path) -> Any:
    try:
        handle = tar.extractfile(name)
        if handle is None:
            raise KeyError(name)
        return json.loads(handle.read())
    except (KeyError, ValueError) as exc:
        raise ImageError(f"{archive}: not a docker archive (no readable {name})") from exc


def archive_names(archive: Path) -> list[str]:
    """Every name (``RepoTags``) the docker archive at ``archive`` loads as."""
    with tarfile.open(archive, "r:") as tar:
        entries = _json_member(tar, MANIFEST, archive)
    return [str(tag) for entry in entries for tag in entry.get("RepoTags") or []]


Members = dict[str, tuple[tarfile.TarFile, tarfile.TarInfo]]


def _index(parts: Sequence[tuple[Path, tarfile.TarFile]]
           ) -> tuple[list[Any], dict[str, Any], Members]:
    manifest: list[Any] = []
    repositories: dict[str, Any] = {}
    members: Members = {}
    for path, tar in parts:
        manifest += _json_member(tar, MANIFEST, path)
        try:
            for repo, tags in _json_member(tar, REPOSITORIES, path).items():
                repositories.setdefault(repo, {}).update(tags)
        except ImageError:
            pass  # optional: docker load and ctr read manifest.json
        for info in tar.getmembers():
            name = info.name.rstrip("/")
            if name in (MANIFEST, REPOSITORIES) or name in members:
                continue
            if not (info.isfile() or info.isdir() or info.issym()):
                raise ImageError(f"{path}: unexpected entry {info.name} in a docker archive")
            members[name] = (tar, info)
    return manifest, repositories, members


def join_archives(parts: Sequence[Path], dest: Path, mtime: int,
                  keep: Collection[str] | None = None) -> None:
    """Write ``dest`` (atomically, never through a symlink) holding every image of ``parts``
    (with ``keep``: under only those of their names); two images with one name are refused."""
    with ExitStack() as stack:
        opened = [(p, stack.enter_context(tarfile.open(p, "r:"))) for p in parts]
        manifest, repositories, members = _index(opened)
        if keep is not None:
            manifest, repositories = _keep(manifest, repositories, set(keep))
        names = [tag for entry in manifest for tag in entry.get("RepoTags") or []]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ImageError(f"two images are named {', '.join(doubled)} in {dest.name}")
        manifest.sort(key=lambda e: (e.get("RepoTags") or [""])[0])
        docs = {MANIFEST: json.dumps(manifest, separators=(",", ":")).encode(),
                REPOSITORIES: json.dumps(repositories, sort_keys=True,
                                         separators=(",", ":")).encode()}
        _write(dest, members, docs, mtime)


def _keep(manifest: list[Any], repositories: dict[str, Any],
          keep: set[str]) -> tuple[list[Any], dict[str, Any]]:
    """The entries and names of ``keep`` only; an image left without a name is refused."""
    kept = []
    for entry in manifest:
        entry = {**entry, "RepoTags": [t for t in entry.get("RepoTags") or [] if t in keep]}
        if not entry["RepoTags"]:
            raise ImageError(f"an image of the archive ({entry.get('Config')}) has none of "
                             f"the names {', '.join(sorted(keep))}")
        kept.append(entry)
    names = {tuple(name.rsplit(":", 1)) for name in keep}
    repos = {repo: {tag: v for tag, v in tags.items() if (repo, tag) in names}
             for repo, tags in repositories.items()}
    return kept, {repo: tags for repo, tags in repos.items() if tags}


def _write(dest: Path, members: Members, docs: dict[str, bytes], mtime: int) -> None:
    import io

    temp = files.make_temp_dir(dest.parent, f".{dest.name}.tmp-")
    try:
        with files.open_for_writing(temp / dest.name) as handle:
            with tarfile.open(fileobj=handle, mode="w", format=tarfile.USTAR_FORMAT) as out:
                for name in sorted([*members, *docs]):
                    if name in docs:
                        out.addfile(_info(name, mtime, size=len(docs[name])),
                                    io.BytesIO(docs[name]))
                        continue
                    source, info = members[name]
                    new = _info(name, mtime, size=info.size if info.isfile() else 0)
                    if info.isdir():
                        new.type, new.mode = tarfile.DIRTYPE, 0o755
                    elif info.issym():
                        new.type, new.linkname = tarfile.SYMTYPE, info.linkname
                    out.addfile(new, source.extractfile(info) if info.isfile() else None)
            handle.flush()
            os.fsync(handle.fileno())
        files.rename(temp / dest.name, dest)
    finally:
        files.remove(temp)


def _info(name: str, mtime: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.size = 0o444, mtime, size
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
