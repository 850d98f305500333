"""core helpers a user meets indirectly: the lock that makes a second run wait or fail, atomic
writes, and progress steps that nest on a terminal."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock
from rich.console import Console

from tkedistro.core import console
from tkedistro.core.errors import LockedError
from tkedistro.core.files import write_atomic
from tkedistro.core.locks import exclusive_lock


def test_a_held_lock_fails_at_once_with_exit_13(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with FileLock(str(path)):
        started = time.monotonic()
        with pytest.raises(LockedError) as err, exclusive_lock(path, "busy: someone has x"):
            pass
    assert time.monotonic() - started < 0.5
    assert err.value.exit_code == 13
    assert err.value.render() == ("busy: someone has x\nhint: wait for it to finish; "
                                  "the lock is freed when that process exits")


def test_waiting_says_so_and_gives_up_after_the_wait(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.lock"
    with FileLock(str(path)):
        started = time.monotonic()
        with pytest.raises(LockedError, match="^held for too long$"), exclusive_lock(
                path, "held for too long", wait=0.3, waiting="waiting for x ..."):
            pass
    assert time.monotonic() - started >= 0.3
    assert "waiting for x ..." in capsys.readouterr().err


def test_waiting_gets_the_lock_once_the_holder_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    held = threading.Event()

    def hold_briefly() -> None:
        with FileLock(str(path)):
            held.set()
            time.sleep(0.3)

    thread = threading.Thread(target=hold_briefly)
    thread.start()
    held.wait()
    with exclusive_lock(path, "busy", wait=5):
        entered_after = time.monotonic()
    thread.join()
    assert entered_after > 0


def test_write_atomic_replaces_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "state.json"
    write_atomic(target, b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]


def test_steps_nest_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step inside a step (build's prepare_source runs source's fetch steps) must not raise
    rich's LiveError; rich before 14.1 did, hence the floor in pyproject.toml."""
    screen = io.StringIO()
    monkeypatch.setattr(console, "_err", Console(file=screen, force_terminal=True, width=80))
    monkeypatch.setattr(console._settings, "plain", False)
    with console.step("build", "outer"), console.step("fetch_source", "inner"):
        pass
    text = screen.getvalue()
    assert "fetch_source: inner" in text and "build: outer" in text
    assert text.index("✓\x1b[0m fetch_source: inner") < text.index("✓\x1b[0m build: outer")
