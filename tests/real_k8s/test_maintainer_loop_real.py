"""real_k8s tier: the maintainer loop of issue 28 on the real Kubernetes v1.20.2 tree, with no
hand edit of a patch file.

A third-party series of 20 plain ``git diff`` files (tests/real_k8s/thirdparty_series.py) is
imported into an empty 1.20 series, the two it cannot take as they are (binary diffs without
index lines) are imported by re-running with ``--text-only`` and land at their positions, a
reorder that would put a patch before the one it needs is refused and an independent one
keeps the other files' names, the series is rebased onto a tag whose upstream change
conflicts with one patch, the conflict is resolved with git in ``_src``, the rebase goes on,
the export writes nothing new, ``source`` finds the tree current, a commit made by hand is
exported with the trailers given as flags, and ``patches confirm`` leaves ``validate`` with
nothing to say. Every step goes through the CLI; the test never writes into ``patches/``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.real_k8s import thirdparty_series as tp
from tests.real_k8s.conftest import copy_distro
from tkedistro.cli.app import app
from tkedistro.model.manifest import load_manifest

pytestmark = [pytest.mark.real_k8s, pytest.mark.timeout(1800)]

STEPS: list[tuple[str, float]] = []


def cli(distro: Path, *args: str) -> Result:
    started = time.monotonic()
    result = CliRunner().invoke(app, ["--root", str(distro), *args])
    STEPS.append((" ".join(args[:3]), time.monotonic() - started))
    return result


def series(distro: Path) -> list[str]:
    return [Path(e.file).name for e in load_manifest(distro / "releases" / "1.20.yaml").patches]


def subjects(src: Path, base: str) -> list[str]:
    return tp.git(src, "log", "--reverse", "--format=%s", f"{base}..HEAD").splitlines()


def patch_bytes(distro: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (distro / "patches" / "1.20").glob("*.patch")}


@pytest.fixture
def loop(tmp_path: Path, k8s_upstream: Path) -> tuple[Path, Path, Path, tp.ThirdParty]:
    """A distro with an empty 1.20 series pinned to a clone of the fixture, a work clone and
    the third-party series made in it."""
    upstream = tmp_path / "upstream.git"
    tp.git(tmp_path, "clone", "-q", "--bare", str(k8s_upstream), str(upstream))
    distro = copy_distro(tmp_path / "distro", upstream)
    manifest = distro / "releases" / "1.20.yaml"
    head, _, _ = manifest.read_text(encoding="utf-8").partition("patches:")
    manifest.write_text(f"{head}patches: []\n", encoding="utf-8")
    shutil.rmtree(distro / "patches" / "1.20")
    work = tmp_path / "work"
    tp.git(tmp_path, "clone", "-q", str(upstream), str(work))
    made = tp.make_series(work, tmp_path / "third-party")
    return distro, upstream, work, made


def test_import_resume_reorder_rebase_export_source_without_hand_edits(
        loop: tuple[Path, Path, Path, tp.ThirdParty], capsys: pytest.CaptureFixture[str]) -> None:
    distro, upstream, work, made = loop
    src = distro / "_src" / "1.20"
    base = load_manifest(distro / "releases" / "1.20.yaml").upstream.commit
    assert cli(distro, "source", "1.20").exit_code == 0

    # 1. import: 18 of 20 go in; the two binary ones are named with the flag that takes them
    first = cli(distro, "patches", "import", "1.20", "--from", str(made.folder))
    assert first.exit_code == 7, first.output
    binary = [made.name(n) for n in tp.BINARY]
    assert all(name in first.stderr for name in binary), first.stderr
    assert "--text-only" in first.stderr
    assert series(distro) == [n for n in made.names if n not in binary]

    # 2. resume: the same folder again with --text-only imports only those two, in place
    resumed = cli(distro, "patches", "import", "1.20", "--from", str(made.folder), "--text-only")
    assert resumed.exit_code == 0, resumed.output
    assert series(distro) == made.names

    # _src holds them in the same order; the revert is a carry, marked until confirmed
    shown = cli(distro, "show", "1.20", "--json")
    assert shown.exit_code == 0, shown.output
    listed = json.loads(shown.stdout)["patches"]
    assert subjects(src, base) == [p["subject"] for p in listed]
    revert = next(p for p in listed
                  if p["file"].endswith(made.name(tp.REVERT)))
    assert revert["kind"] == "carry", revert
    assert "Patch-Kind" in revert["unconfirmed"], revert

    # 3. reorder: a patch before the one it needs is refused, naming both; another move
    # keeps every other file's name
    needs, needed = made.name(tp.NEEDS), made.name(tp.NEEDED)
    refused = cli(distro, "patches", "reorder", "1.20", "--move", needs[:4], "--before",
                  needed[:4])
    assert refused.exit_code == 3, refused.output
    assert needs in refused.stderr and needed in refused.stderr and "needs" in refused.stderr
    assert series(distro) == made.names
    before = patch_bytes(distro)
    moved = cli(distro, "patches", "reorder", "1.20", "--move", made.name(20)[:4], "--before",
                made.name(2)[:4])
    assert moved.exit_code == 0, moved.output
    order = series(distro)
    assert order[0] == made.name(1) and order[2:] == made.names[1:19], order
    assert order[1] != made.name(20)  # the moved file has a number between its neighbours
    assert set(before) - {made.name(20)} <= set(patch_bytes(distro))

    # 4. rebase onto a tag that changes the line 0005 changes: a conflict, resolved with git
    onto = tp.tag_conflicting_upstream(work, upstream, made, base)
    stopped = cli(distro, "rebase", "1.20", "--onto", "v1.20.3-flow")
    assert stopped.exit_code == 7, stopped.output
    assert made.name(tp.CONFLICT) in stopped.stderr
    conflicted = src / made.conflict_file
    text = conflicted.read_text(encoding="utf-8")
    assert "<<<<<<<" in text
    resolved = re.sub(r"<<<<<<<[^\n]*\n.*?>>>>>>>[^\n]*\n",
                      "Copyright 2015 The Kubernetes Authors (upstream), TKE.\n", text, flags=re.S)
    conflicted.write_text(resolved, encoding="utf-8")
    tp.git(src, "add", "--", made.conflict_file)
    done = cli(distro, "rebase", "1.20", "--continue")
    assert done.exit_code == 0, done.output
    assert load_manifest(distro / "releases" / "1.20.yaml").upstream.commit == onto
    head = tp.git(src, "rev-parse", "HEAD").strip()

    # 5. export writes nothing new; source finds the tree current (no patch applied again)
    exported = cli(distro, "patches", "export", "1.20", "--json")
    assert exported.exit_code == 0, exported.output
    assert {p["action"] for p in json.loads(exported.stdout)["patches"]} == {"unchanged"}
    current = cli(distro, "source", "1.20", "--json")
    assert current.exit_code == 0, current.output
    assert tp.git(src, "rev-parse", "HEAD").strip() == head
    assert "TKE" in tp.git(src, "diff", "v1.20.3-flow", "--", made.conflict_file)  # tags

    # 6. a commit made by hand: export asks for its trailers, then takes them from flags
    note = src / "TKE-NOTES.md"
    note.write_text("kept by the TKE team\n", encoding="utf-8")
    tp.git(src, "add", "TKE-NOTES.md")
    tp.git(src, "commit", "-q", "-m", "docs: TKE notes")
    missing = cli(distro, "patches", "export", "1.20")
    assert missing.exit_code == 4, missing.output
    assert "docs: TKE notes" in missing.stderr and "--kind" in missing.stderr
    completed = cli(distro, "patches", "export", "1.20", "--kind", "carry", "--upstream-ref",
                    "none", "--upstream-status", "not-submitted")
    assert completed.exit_code == 0, completed.output
    assert "added" in completed.stdout
    assert cli(distro, "source", "1.20").exit_code == 0

    # 7. confirm the trailers the import inferred or defaulted: validate has nothing to say
    confirmed = cli(distro, "patches", "confirm", "1.20")
    assert confirmed.exit_code == 0, confirmed.output
    valid = cli(distro, "validate", "1.20")
    assert valid.exit_code == 0, valid.output
    assert "confirm" not in valid.output
    assert cli(distro, "source", "1.20").exit_code == 0
    assert len(subjects(src, onto)) == tp.SIZE + 1
    with capsys.disabled():
        print("\nmaintainer loop on the real tree: " + ", ".join(
            f"{what} {seconds:.2f}s" for what, seconds in STEPS))
    assert subprocess.run(["git", "-C", str(src), "status", "--porcelain"], capture_output=True,
                          text=True, check=True).stdout == ""
