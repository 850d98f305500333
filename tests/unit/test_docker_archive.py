"""The ``docker load`` archive a foreign root filesystem goes in with: the platform, ENV and
LABEL lines land in the image config, the layer is the root filesystem byte for byte."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from tkedistro.core.errors import BuildError, UnsafePathError
from tkedistro.engine import docker_archive


def test_the_archive_names_the_platform_and_carries_the_changes(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        (tmp_path / "hello").write_text("hi\n")
        tar.add(tmp_path / "hello", arcname="./hello")
    changes = ("ENV PATH=/usr/sbin:/usr/bin", 'LABEL org.tkedistro.inputs="sha256:1 2"',
               "LABEL plain=yes")
    docker_archive.write_load_archive(rootfs, tmp_path / "load.tar", "x/base:arm/v7",
                                      "linux/arm/v7", changes)
    with tarfile.open(tmp_path / "load.tar") as tar:
        [manifest] = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        config = json.loads(tar.extractfile(manifest["Config"]).read())  # type: ignore[union-attr]
        layer = tar.extractfile("layer/layer.tar").read()  # type: ignore[union-attr]
    assert manifest["RepoTags"] == ["x/base:arm/v7"] and layer == rootfs.read_bytes()
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm", "v7")
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    assert config["config"] == {"Env": ["PATH=/usr/sbin:/usr/bin"],
                                "Labels": {"org.tkedistro.inputs": "sha256:1 2",
                                           "plain": "yes"}}


@pytest.mark.parametrize("line", ["RUN apt-get update", "ENV PATH", "LABEL =x"])
def test_a_change_it_cannot_write_is_refused(line: str) -> None:
    with pytest.raises(BuildError, match="takes ENV NAME=VALUE and LABEL KEY=VALUE changes"):
        docker_archive.container_config([line])


def test_a_platform_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(BuildError, match="expected a platform like linux/arm64, got 'arm64'"):
        docker_archive.platform_fields("arm64")


def test_the_archive_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    """A symlink where the load archive goes (beside the root filesystem tar in the cache)
    is refused with exit 3, and the file it points at is left as it was."""
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w"):
        pass
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    dest = tmp_path / "rootfs.tar.load.tar"
    dest.symlink_to(victim)
    with pytest.raises(UnsafePathError) as err:
        docker_archive.write_load_archive(rootfs, dest, "x/base:1", "linux/arm64")
    assert err.value.exit_code == 3
    assert str(err.value).startswith(f"{dest} is a symlink; tkedistro does not follow")
    assert victim.read_text() == "keep\n"
