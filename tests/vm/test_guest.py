"""vm tier: the cgroup v2 guest through ``tkedistro guest build|run``: it boots a cgroup v2
kernel, Docker in it runs on the systemd cgroup driver, a command's output and exit code come
back, a read-only share cannot be written, a read-write one brings a file back, an image saved
here runs there (and a second run boots on the disk layer it was loaded into), and a guest
past its timeout is killed with exit 25. One boot carries the
checks of a working run (each boot costs about a minute of emulation).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.vm.conftest import GUEST_CACHE, tkedistro

pytestmark = [pytest.mark.vm, pytest.mark.timeout(1800)]

PROBE = """
echo "fs=$(stat -fc %T /sys/fs/cgroup)"
docker info 2>/dev/null | grep -E '^ *Cgroup (Driver|Version):'
echo "shared=$(cat /srv/in/hello.txt)"
if touch /srv/in/new 2>/dev/null; then echo ro=writable; else echo ro=refused; fi
echo "from the guest" > /srv/out/back.txt
docker run --rm --network none {image} cat /proc/self/cgroup | sed 's/^/container=/'
echo "to stderr" >&2
exit 7
"""


@pytest.fixture(scope="module")
def probe(guest_built: str, tiny_image: str, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[object, Path, Path]:
    """One boot running PROBE, with a read-only and a read-write share and the tiny image."""
    shared = tmp_path_factory.mktemp("in")
    (shared / "hello.txt").write_text("hello from the host\n")
    back = tmp_path_factory.mktemp("out")
    base = _base_disk()
    before = base.stat()
    result = tkedistro("guest", "run", "--share", f"{shared}:/srv/in",
                       "--share", f"{back}:/srv/out:rw", "--image", tiny_image,
                       "--timeout", "900", "--", "sh", "-c", PROBE.format(image=tiny_image))
    after = base.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size), \
        "a run wrote the cached base disk"
    return result, shared, back


def _base_disk() -> Path:
    disks = list(Path(GUEST_CACHE).glob("guest-*/disk.img"))
    assert len(disks) == 1, disks
    return disks[0]


def test_the_build_is_cached_by_its_inputs(guest_built: str) -> None:
    assert re.match(r"(built|reused) the guest /.+/guest-[0-9a-f]{16} \(kernel 6\.", guest_built)
    again = tkedistro("guest", "build", "--json")
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["built"] is False
    assert data["folder"] == str(_base_disk().parent)


def test_the_guest_runs_cgroup_v2_and_docker_on_the_systemd_driver(probe: tuple) -> None:
    result = probe[0]
    assert "fs=cgroup2fs\n" in result.stdout
    assert re.search(r"^ *Cgroup Driver: systemd$", result.stdout, re.M), result.stdout
    assert re.search(r"^ *Cgroup Version: 2$", result.stdout, re.M), result.stdout


def test_the_command_output_and_exit_code_come_back(probe: tuple) -> None:
    result = probe[0]
    assert result.returncode == 7, result.stderr
    assert result.stderr.endswith("to stderr\n")


def test_a_read_only_share_is_readable_and_not_writable(probe: tuple) -> None:
    result, shared, back = probe
    assert "shared=hello from the host\n" in result.stdout
    assert "ro=refused\n" in result.stdout
    assert not (shared / "new").exists()
    assert (back / "back.txt").read_text() == "from the guest\n"


def test_an_image_saved_here_runs_in_the_guest_in_its_own_cgroup_namespace(probe: tuple
                                                                           ) -> None:
    # Docker 20.10 on cgroup v2 gives each container a private cgroup namespace: its root
    assert "container=0::/\n" in probe[0].stdout, probe[0].stdout


def test_a_second_run_with_the_same_image_boots_on_its_kept_layer(probe: tuple,
                                                                  tiny_image: str) -> None:
    assert "loading 1 image(s) into a guest disk layer, kept for later runs" in probe[0].stderr
    again = tkedistro("guest", "run", "--json", "--image", tiny_image, "--timeout", "600", "--",
                      "sh", "-c", f"docker image inspect -f '{{{{.Id}}}}' {tiny_image}; "
                                  "test ! -e load.log")
    assert again.returncode == 0, again.stderr
    assert "loading" not in again.stderr
    assert json.loads(again.stdout)["stdout"].startswith("sha256:")


def test_a_guest_past_its_timeout_is_killed_with_exit_25(guest_built: str) -> None:
    result = tkedistro("guest", "run", "--timeout", "20", "--", "sleep", "600")
    assert result.returncode == 25, result.stderr
    found = re.search(r"error: the guest ran past its timeout of 20 s and was killed "
                      r"\(console log: (/\S+/console\.log)\)", result.stderr)
    assert found, result.stderr
    assert Path(found.group(1)).is_file()
