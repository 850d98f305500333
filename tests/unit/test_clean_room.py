"""The clean-room rehearsal (scripts/clean-room.sh, `make clean-room`) gives the tests a fresh
copy of every folder they or the tool keep between runs: a folder that is not pointed into the
room would carry one run's leftovers into the next and hide what a brand-new machine lacks."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "clean-room.sh"


def _room_variables() -> set[str]:
    """The variables the script points into the room (``"NAME=$ROOM/..."``)."""
    return set(re.findall(r'"([A-Z0-9_]+)=\$ROOM/', SCRIPT.read_text()))


def _fixed_folders(path: Path) -> list[str]:
    """``Path("/var/tmp/...")`` and ``Path("~/...")`` literals: folders kept between runs."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Path":
            found += [f"{path.relative_to(REPO)}:{node.lineno}: {arg.value}" for arg in node.args
                      if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                      and re.match(r"(/var/tmp/|~/)", arg.value)]
    return found


def test_every_folder_kept_between_runs_is_moved_into_the_room() -> None:
    room = _room_variables()
    assert {"TKEDISTRO_CACHE", "TKEDISTRO_FIXTURES", "TKEDISTRO_REALK8S_DIR", "HOME",
            "TKEDISTRO_GUEST_CACHE", "TKEDISTRO_TEST_IMAGES_DIR", "TMPDIR",
            "CONTAINERS_STORAGE_CONF"} <= room
    unmoved = []
    for path in sorted((*REPO.glob("tests/**/*.py"), *REPO.glob("tkedistro/**/*.py"))):
        folders = _fixed_folders(path)
        # the variable it reads, by name (in os.environ.get(...) or a constant)
        read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', path.read_text()))
        if folders and not read & room:
            unmoved += folders
    assert unmoved == [], ("a folder kept between runs that no variable of "
                           "scripts/clean-room.sh can move into the clean room")


def test_remove_refuses_a_folder_that_is_not_a_room(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(SCRIPT), "--remove", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() in (f"clean-room: error: not a clean room folder: {tmp_path}",
                                   "clean-room: error: run as root")
    assert tmp_path.is_dir()


def test_the_script_is_valid_bash() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
