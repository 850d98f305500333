"""Docker tier: busybox, pause and httpd made offline with the real engine behave the way the
conformance specs use them, and a second call reuses all three.

The Debian base is debootstrapped once (root, Debian mirror) and kept, with the images' record,
in a fixed folder (``/var/tmp/tkedistro-test-images``, or ``TKEDISTRO_TEST_IMAGES_DIR``: the
clean room's own), so later runs reuse it; pause is built from a tiny C file in a synthetic tree
by the builder image, as the real tree's ``build/pause/linux/pause.c`` is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tkedistro.engine.docker import DockerBackend
from tkedistro.engine.docker_images import DockerImages
from tkedistro.images.upstream import imageset

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

WORK = Path(os.environ.get("TKEDISTRO_TEST_IMAGES_DIR") or "/var/tmp/tkedistro-test-images")
BUILDER = "tkedistro/builder:go1.15-bullseye"
BUSYBOX, PAUSE = "docker.io/library/busybox:1.29", "k8s.gcr.io/pause:3.2"
HTTPD = "docker.io/library/httpd:2.4.38-alpine"
PREFIX = "tkedistro.test/conformance"
PAUSE_C = "#include <unistd.h>\nint main(void) { pause(); return 0; }\n"


def local(ref: str) -> str:
    return imageset.local_ref(ref, PREFIX)


def _docker(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=120,
                          check=check)


@pytest.fixture(scope="module")
def image_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[imageset.ImageSet, ...]:
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("the Debian base needs root and debootstrap (make install)")
    if DockerBackend().image_info(BUILDER) is None:
        pytest.skip(f"needs the builder image {BUILDER} (make install)")
    tree = tmp_path_factory.mktemp("tree")
    (tree / "build/pause/linux").mkdir(parents=True)
    (tree / "build/pause/linux/pause.c").write_text(PAUSE_C)
    tool = imageset.backend_build_tool(DockerBackend(), BUILDER)
    wanted = [BUSYBOX, PAUSE, HTTPD, "invalid.com/invalid/alpine:3.1"]
    commit = "5" * 40
    # under a test prefix: the tool's own local images (tkedistro.local/...) stay untouched
    first = imageset.build_image_set(tree, commit, wanted, DockerImages(), tool, WORK, PREFIX)
    second = imageset.build_image_set(tree, commit, wanted, DockerImages(), tool, WORK, PREFIX)
    return first, second


def test_second_call_reuses_every_image(image_set: tuple[imageset.ImageSet, ...]) -> None:
    first, second = image_set
    assert [o.ref for o in first.built] == [BUSYBOX, PAUSE, HTTPD]
    assert first.no_recipe == ("invalid.com/invalid/alpine:3.1",)
    assert all(o.reused for o in second.built)
    assert [o.image_id for o in second.built] == [o.image_id for o in first.built]


def test_labels_name_the_source_and_inputs(image_set: tuple[imageset.ImageSet, ...]) -> None:
    out = _docker("image", "inspect", "--format",
                  '{{index .Config.Labels "org.opencontainers.image.source"}}', local(HTTPD)).stdout
    assert out.startswith("Debian apache2=2.")
    inputs = _docker("image", "inspect", "--format",
                     '{{index .Config.Labels "org.tkedistro.inputs"}}', local(PAUSE)).stdout.strip()
    assert inputs == image_set[0].built[1].labels["org.tkedistro.inputs"]


def test_busybox_runs_a_shell_with_its_applets(image_set: tuple[imageset.ImageSet, ...]) -> None:
    proc = _docker("run", "--rm", "--network", "none", local(BUSYBOX), "sh", "-c",
                   "echo ok; ls /bin/wget; id -u nobody")
    assert proc.stdout.split() == ["ok", "/bin/wget", "65534"]


def test_httpd_serves_its_htdocs_page(image_set: tuple[imageset.ImageSet, ...]) -> None:
    name = f"tkedistro-test-httpd-{uuid.uuid4().hex[:8]}"
    _docker("run", "-d", "--name", name, "--network", "none", local(HTTPD))
    try:
        page = ""
        for _ in range(20):
            page = _docker("exec", name, "wget", "-qO-", "http://127.0.0.1/", check=False).stdout
            if page:
                break
            subprocess.run(["sleep", "0.5"], check=True)
        moved = _docker("exec", name, "sh", "-c",
                        "mv -v /usr/local/apache2/htdocs/index.html /tmp/").stdout
    finally:
        _docker("rm", "-f", name, check=False)
    assert "It works!" in page
    assert "index.html" in moved  # the statefulset specs break readiness this way


def test_pause_waits_until_stopped(image_set: tuple[imageset.ImageSet, ...]) -> None:
    name = f"tkedistro-test-pause-{uuid.uuid4().hex[:8]}"
    _docker("run", "-d", "--name", name, "--network", "none", local(PAUSE))
    try:
        running = _docker("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
        _docker("stop", "-t", "1", name)
    finally:
        _docker("rm", "-f", name, check=False)
    assert running == "true"
