"""Docker tier: a two-platform OCI archive made as the build makes the shipped images (see
test_push_docker.py) goes into the cluster's registry (Debian's docker-registry, asking for a
login) the way ``cluster up`` puts it there: skopeo with the run's login in a 0600 file, every
platform, and the registry then serves images.json's index digest and, inside that index, each
platform's manifest digest, under the distro version and (pause) kubeadm's ``3.2`` too. The
registry's storage is what the nodes serve at 127.0.0.1:5000."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_push_docker import VERSION, two_platform_source
from tkedistro.cluster.shippedimages import push_release_images
from tkedistro.engine.registry import LocalRegistry
from tkedistro.images.push import archived

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``_output/1.20`` holding ``images/pause.oci.tar`` (two platforms) and images.json."""
    tmp = tmp_path_factory.mktemp("cluster-images")
    made = two_platform_source(tmp)
    out = made.parent.parent
    made.rename(out / "images/pause.oci.tar")
    layout = tmp / "layout"
    index_digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    index = json.loads((layout / "blobs/sha256" / index_digest[7:]).read_text())
    entry = {"component": "pause", "ref": f"tkedistro.local/k8s/pause:{VERSION}",
             "index_digest": index_digest, "archive": "images/pause.oci.tar",
             "manifests": {f"{m['platform']['os']}/{m['platform']['architecture']}":
                           m["digest"] for m in index["manifests"]}}
    (out / "images/images.json").write_text(json.dumps({"schema": 1, "images": [entry]}))
    return out


def _raw(registry: LocalRegistry, ref: str) -> bytes:
    """What the registry serves for ``ref``, fetched with the run's login file."""
    done = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--authfile",
                           str(registry.write_auth_file()), f"docker://{registry.ref(ref)}"],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def test_the_cluster_registry_serves_the_archives_index_and_platform_manifests(
        output: Path, tmp_path: Path) -> None:
    entry = json.loads((output / "images/images.json").read_text())["images"][0]
    image = archived(output, entry, "images.json: images[0]")
    with LocalRegistry(tmp_path / "registry") as registry:
        [pushed] = push_release_images([image], registry, VERSION)
        auth = registry.auth_file
        assert os.stat(auth).st_mode & 0o777 == 0o600
        assert pushed.ref == f"127.0.0.1:5000/tkedistro/pause:{VERSION}"
        assert pushed.index_digest == entry["index_digest"]
        for tag in (VERSION, "3.2"):
            raw = _raw(registry, f"tkedistro/pause:{tag}")
            assert "sha256:" + hashlib.sha256(raw).hexdigest() == entry["index_digest"]
            listed = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
                      for m in json.loads(raw)["manifests"]}
            assert listed == entry["manifests"] == dict(pushed.manifests)
            for digest in listed.values():  # each platform's manifest is there by digest
                got = _raw(registry, f"tkedistro/pause@{digest}")
                assert "sha256:" + hashlib.sha256(got).hexdigest() == digest
        # a second run finds the index there and copies nothing
        assert push_release_images([image], registry, VERSION) == [pushed]
    assert not auth.exists()  # the login file goes with the registry
