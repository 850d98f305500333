"""Loaded images kept as a disk layer: ``docker load`` of a 466 MB node image takes minutes
in the emulated guest, so the first run with a set of images loads them in a boot of its own
and keeps that boot's overlay (``CACHE/guest-*/images/<key>.qcow2``, backed by the base disk);
later runs with the same images start on a fresh overlay of that layer and load nothing.

The key is each ref with the image id this host's engine has for it: a rebuilt image (new id)
makes a new layer. The newest ``KEEP_LAYERS`` layers are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tkedistro.core import files
from tkedistro.core.files import json_digest
from tkedistro.core.runner import run
from tkedistro.guest.build import Guest

KEEP_LAYERS = 4


def image_ids(refs: Sequence[str]) -> list[str]:
    """The engine's image id of each ref (``docker image inspect``)."""
    result = run(["docker", "image", "inspect", "--format", "{{.Id}}", "--", *refs],
                 message="looking up the images to load into the guest failed",
                 hint="check that each --image is in this host's Docker engine (docker images)")
    return result.stdout.split()


def layer_path(guest: Guest, refs: Sequence[str]) -> Path:
    """Where the layer holding ``refs`` (as this host's engine has them now) is kept."""
    key = json_digest(sorted(zip(refs, image_ids(refs), strict=True)))
    return guest.folder / "images" / (key.removeprefix("sha256:")[:16] + ".qcow2")


def prune_layers(folder: Path, keep: Path) -> None:
    """The newest ``KEEP_LAYERS`` layers (``keep`` among them) stay; the rest go."""
    layers = sorted(folder.glob("*.qcow2"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [p for p in layers if p != keep][KEEP_LAYERS - 1:]:
        files.remove(old)
        files.remove(old.with_suffix(".lock"))
