"""The pieces of one image build: tree binaries cached per commit, the inputs digest that
decides reuse, the labels, and the build context folder (Dockerfile text + files).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tkedistro.core import console, files
from tkedistro.core.errors import BuildError
from tkedistro.core.files import json_digest, rename, sha256_file, write_atomic
from tkedistro.images.upstream.debianbase import INPUTS_LABEL, SOURCE_LABEL, DebianBase
from tkedistro.images.upstream.recipes import Binary, Recipe, tag_of

BuildTool = Callable[[Path, Path, list[str]], None]
"""Runs argv in the builder container, source tree at /src and output folder at /out (a seam)."""

REVISION_LABEL = "org.opencontainers.image.revision"
BASE_LABEL = "org.tkedistro.base"


@dataclass(frozen=True)
class Inputs:
    """Everything one image is made from; its digest is the image's ``org.tkedistro.inputs``."""

    ref: str
    dockerfile: str
    files: Mapping[str, Path]  # context name -> host file
    texts: Mapping[str, str]  # context name -> generated content
    commit: str  # "" for images that do not come from the tree
    parent_id: str  # the image it starts from ("" for scratch)

    def digest(self) -> str:
        doc = {"ref": self.ref, "dockerfile": self.dockerfile, "commit": self.commit,
               "parent": self.parent_id,
               "files": {name: file_digest(path) for name, path in sorted(self.files.items())},
               "texts": {name: _sha(text.encode()) for name, text in sorted(self.texts.items())}}
        return json_digest(doc)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str:
    return "sha256:" + sha256_file(path)


def build_binaries(tree: Path, out: Path, wanted: Sequence[Binary], tool: BuildTool) -> None:
    """Each binary into ``out`` (one folder per commit) unless it is already there."""
    files.ensure_dir(out)
    owner = tree.stat()
    if os.geteuid() == 0:
        os.chown(out, owner.st_uid, owner.st_gid, follow_symlinks=False)
    for binary in wanted:
        if (out / binary.name).exists():
            continue
        with console.step("conformance_images", f"build {binary.name}"):
            tool(tree, out, binary.partial_argv())
        partial = out / (binary.name + ".partial")
        if not partial.exists():
            raise BuildError(f"building {binary.name} wrote no /out/{binary.name}.partial",
                             hint=" ".join(binary.argv))
        rename(partial, out / binary.name)


def inputs_for(ref: str, recipe: Recipe, tree: Path, commit: str, bins: Path,
               base: DebianBase | None, parent_id: str, parent: str | None = None) -> Inputs:
    sources = {b.name: bins / b.name for b in recipe.binaries}
    sources.update({Path(p).name: tree / p for p in recipe.tree_files})
    missing = [str(p) for p in sources.values() if not p.is_file()]
    if missing:
        raise BuildError(f"cannot build {ref}: missing {', '.join(missing)}")
    return Inputs(ref, recipe.render(base.ref if base else "", parent), sources, dict(recipe.texts),
                  commit if recipe.from_tree else "", parent_id)


def source_line(recipe: Recipe, commit: str, base: DebianBase | None) -> str:
    """One human line saying where the image comes from."""
    debs = ", ".join(f"{p}={base.version(p)}" for p in recipe.packages) if base else ""
    on = f" on {base.ref} ({base.image_id[:19]})" if base and recipe.parent == "base" else ""
    if recipe.parent not in ("base", "scratch"):
        on = f" on {recipe.parent}"
    if recipe.from_tree:
        extra = f" + Debian {debs}" if debs else ""
        return f"kubernetes {recipe.origin} at {commit[:12]}{extra}{on}"
    return f"Debian {debs or 'base'}{on} standing in for {recipe.name}"


def labels_for(inputs: Inputs, recipe: Recipe, source: str) -> dict[str, str]:
    labels = {SOURCE_LABEL: source, INPUTS_LABEL: inputs.digest(),
              "org.tkedistro.recipe": f"{recipe.name}:{tag_of(inputs.ref)}"}
    if inputs.commit:
        labels[REVISION_LABEL] = inputs.commit
    if inputs.parent_id:
        labels[BASE_LABEL] = inputs.parent_id
    return labels


def write_context(folder: Path, inputs: Inputs) -> Path:
    """A fresh build context: the Dockerfile, the files (hard links when possible), the texts."""
    files.remove(folder)
    files.ensure_dir(folder)
    write_atomic(folder / "Dockerfile", inputs.dockerfile.encode())
    for name, text in inputs.texts.items():
        write_atomic(folder / name, text.encode())
    for name, source in inputs.files.items():
        files.link_or_copy(source, folder / name)
    return folder
