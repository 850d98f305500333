"""The runner stand-in of tests/helpers/runner.py matches caches as GitHub does, so the
nightly emulation's second night restores what a real second night would restore."""

from __future__ import annotations

import getpass
import time
from pathlib import Path

import pytest

from tests.helpers.runner import CacheStore, Runner, hash_files


@pytest.fixture
def store(tmp_path: Path) -> CacheStore:
    (tmp_path / "store").mkdir()
    return CacheStore(tmp_path / "store", getpass.getuser())


def _folder(path: Path, text: str) -> Path:
    (path / "sub").mkdir(parents=True, exist_ok=True)
    (path / "sub" / "file").write_text(text)
    return path


def test_an_exact_key_restores_with_cache_hit_true(store: CacheStore, tmp_path: Path) -> None:
    path = _folder(tmp_path / "cache", "one")
    assert store.save("gocache-1.20-v1.20.0-abc", [path]) == \
        "Cache saved with key: gocache-1.20-v1.20.0-abc"
    (path / "sub" / "file").unlink()
    outputs, text = store.restore("gocache-1.20-v1.20.0-abc", ["gocache-1.20-"], [path])
    assert outputs == {"cache-primary-key": "gocache-1.20-v1.20.0-abc", "cache-hit": "true",
                       "cache-matched-key": "gocache-1.20-v1.20.0-abc"}
    assert text == "Cache restored from key: gocache-1.20-v1.20.0-abc"
    assert (path / "sub" / "file").read_text() == "one"


def test_a_restore_key_restores_the_newest_entry_it_prefixes(store: CacheStore,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "cache"
    store.save("gocache-1.20-v1.20.0-old", [_folder(path, "old")])
    time.sleep(0.01)
    store.save("gocache-1.20-v1.20.0-new", [_folder(path, "new")])
    store.save("gocache-1.21-v1.21.0-x", [_folder(path, "other line")])
    outputs, _ = store.restore("gocache-1.20-v1.20.1-abc",
                               ["gocache-1.20-v1.20.1-", "gocache-1.20-"], [path])
    assert outputs == {"cache-primary-key": "gocache-1.20-v1.20.1-abc", "cache-hit": "false",
                       "cache-matched-key": "gocache-1.20-v1.20.0-new"}
    assert (path / "sub" / "file").read_text() == "new"


def test_a_miss_leaves_cache_hit_unset_and_other_paths_never_match(store: CacheStore,
                                                                   tmp_path: Path) -> None:
    store.save("mirror-1.20-v1.20.0", [_folder(tmp_path / "a", "a")])
    outputs, text = store.restore("mirror-1.20-v1.20.0", [], [tmp_path / "b"])
    assert outputs == {"cache-primary-key": "mirror-1.20-v1.20.0"}  # as actions/cache v4
    assert text == "Cache not found for input keys: mirror-1.20-v1.20.0"
    assert not (tmp_path / "b").exists()


def test_a_saved_key_is_never_overwritten_and_a_missing_path_is_a_warning(
        store: CacheStore, tmp_path: Path) -> None:
    path = _folder(tmp_path / "cache", "first")
    store.save("builder-1.20", [path])
    _folder(path, "second")
    assert store.save("builder-1.20", [path]) == \
        "Warning: Failed to save: a cache entry for key builder-1.20 already exists"
    assert store.save("builder-1.20-x", [tmp_path / "gone"]).startswith(
        "Warning: Path Validation Error:")
    (path / "sub" / "file").unlink()
    store.restore("builder-1.20", [], [path])
    assert (path / "sub" / "file").read_text() == "first"
    assert len(list(store.root.iterdir())) == 1


def test_expressions_expand_as_the_runner_does_and_unknown_ones_fail(tmp_path: Path) -> None:
    (tmp_path / "patches" / "1.20").mkdir(parents=True)
    (tmp_path / "patches" / "1.20" / "0001-x.patch").write_text("x")
    runner = Runner(getpass.getuser(), tmp_path, tmp_path / "home", tmp_path / "temp")
    runner.outputs["gocache"] = {"cache-primary-key": "k"}
    digest = hash_files(tmp_path, ["patches/1.20/**"])
    assert len(digest) == 64 and hash_files(tmp_path, ["nothing/**"]) == ""
    assert runner.expand("${{ runner.temp }}/x-${{ hashFiles('patches/1.20/**') }}-"
                         "${{ steps.gocache.outputs.cache-primary-key }}") == \
        f"{tmp_path / 'temp'}/x-{digest}-k"
    with pytest.raises(AssertionError, match=r"cannot evaluate \$\{\{ github.token \}\}"):
        runner.expand("${{ github.token }}")
    (tmp_path / "temp").mkdir()
    with pytest.raises(AssertionError, match="no stand-in for actions/other-thing"):
        runner.run_job({"steps": [{"name": "x", "uses": "actions/other-thing@abc"}]})
