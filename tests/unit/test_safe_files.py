"""The one safe file layer (``tkedistro/core/files.py``): what it refuses, and that nothing
else in the package writes, moves or deletes files itself."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from tkedistro.core import files
from tkedistro.core.errors import UnsafePathError

PACKAGE = Path(__file__).resolve().parents[2] / "tkedistro"

# Calls that write, move or delete: only core/files.py may make them.
RAW_METHODS = {"write_text", "write_bytes", "mkdir", "unlink", "rmdir", "touch", "symlink_to",
               "hardlink_to", "chmod", "rename", "makedirs", "rmtree", "copyfile", "copy",
               "copy2", "copytree", "move", "mkdtemp", "mkstemp", "TemporaryDirectory",
               "NamedTemporaryFile", "symlink", "remove", "replace", "fdopen"}
RAW_OWNERS = {"os", "shutil", "tempfile", "Path", "path"}

def _raw_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "open" and _writes(node, 1):
            found.append(f"line {node.lineno}: open(..., write mode)")
        if isinstance(func, ast.Attribute) and func.attr in RAW_METHODS:
            owner = func.value
            if isinstance(owner, ast.Name) and owner.id == "files":
                continue  # the layer itself: files.write_text, files.rename
            plain_str = func.attr == "replace" and not (
                isinstance(owner, ast.Name) and owner.id == "os")
            if func.attr == "remove" and not (isinstance(owner, ast.Name) and owner.id == "os"):
                continue  # list.remove
            if func.attr == "copy" and not (isinstance(owner, ast.Name) and owner.id == "shutil"):
                continue  # dict.copy
            if not plain_str:
                found.append(f"line {node.lineno}: .{func.attr}()")
        if isinstance(func, ast.Attribute) and func.attr == "open" and _writes(node, 0) \
                and not any(k.arg == "fileobj" for k in node.keywords):  # a layer's handle
            found.append(f"line {node.lineno}: .open(..., write mode)")
    return found


def _writes(call: ast.Call, mode_at: int) -> bool:
    """The call's mode (positional ``mode_at``: ``open(path, mode)``, ``path.open(mode)``,
    ``tarfile.open(name, mode)``, or ``mode=``) writes."""
    modes = [a for a in call.args[mode_at:mode_at + 2] if isinstance(a, ast.Constant)]
    modes += [k.value for k in call.keywords
              if k.arg == "mode" and isinstance(k.value, ast.Constant)]
    return any(isinstance(m.value, str) and set(m.value) & set("wax+") for m in modes)


def test_only_the_file_layer_writes_moves_or_deletes() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE.parent))
        if name == "tkedistro/core/files.py":
            continue
        if calls := _raw_calls(ast.parse(path.read_text(encoding="utf-8"))):
            offenders[name] = calls
    assert not offenders, (
        "write, move and delete through tkedistro.core.files (the one safe file layer): "
        f"{offenders}")


def test_write_refuses_a_symlinked_temp_or_folder(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    state = tmp_path / "root" / "state"
    state.parent.mkdir()
    state.symlink_to(tmp_path)
    with pytest.raises(UnsafePathError) as err:
        files.write_text(state / "victim", "evil")
    assert str(state) in str(err.value)
    assert err.value.exit_code == 3
    assert victim.read_text() == "keep"


def test_write_replaces_a_symlink_at_the_target_without_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    target = tmp_path / "out.json"
    target.symlink_to(victim)
    files.write_text(target, "new")
    assert victim.read_text() == "keep"
    assert not target.is_symlink() and target.read_text() == "new"


def test_write_sets_the_mode_at_creation_and_leaves_no_temp(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        files.write_text(tmp_path / "kubeconfig", "secret", mode=0o600)
    finally:
        os.umask(old)
    assert (tmp_path / "kubeconfig").stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["kubeconfig"]


def test_remove_refuses_a_symlinked_tree_and_keeps_what_it_points_at(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    link = tmp_path / "cluster"
    link.symlink_to(outside)
    with pytest.raises(UnsafePathError):
        files.remove(link)
    with pytest.raises(UnsafePathError):
        files.remove(link / "precious")
    assert (outside / "precious").read_text() == "keep"


def test_remove_deletes_a_tree_holding_symlinks_without_following_them(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "link").symlink_to(outside)
    files.remove(tree)
    assert not tree.exists() and (outside / "precious").exists()


def test_read_and_lock_refuse_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("{}")
    (tmp_path / "state.json").symlink_to(tmp_path / "real")
    (tmp_path / "x.lock").symlink_to(tmp_path / "dangling")
    with pytest.raises(UnsafePathError):
        files.read_text(tmp_path / "state.json")
    with pytest.raises(UnsafePathError):
        files.open_lock_file(tmp_path / "x.lock")
    assert not (tmp_path / "dangling").exists()


def test_watch_sees_every_operation(tmp_path: Path) -> None:
    seen: list[tuple[str, Path]] = []
    with files.watch(lambda op, path: seen.append((op, path))):
        files.write_text(tmp_path / "a" / "f", "x")
        files.rename(tmp_path / "a" / "f", tmp_path / "a" / "g")
        files.remove(tmp_path / "a")
    assert [op for op, _ in seen] == ["mkdir", "write", "rename", "remove"]


def test_link_or_copy_links_or_copies_with_the_mode_and_refuses_symlinks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "out" / "kube-proxy"
    source.parent.mkdir()
    source.write_bytes(b"\x7fELF")
    source.chmod(0o750)
    files.link_or_copy(source, tmp_path / "ctx" / "linked")
    assert (tmp_path / "ctx" / "linked").samefile(source)

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    files.link_or_copy(source, tmp_path / "ctx" / "copied")
    copied = tmp_path / "ctx" / "copied"
    assert not copied.samefile(source) and copied.read_bytes() == b"\x7fELF"
    assert copied.stat().st_mode & 0o777 == 0o750
    assert sorted(os.listdir(tmp_path / "ctx")) == ["copied", "linked"]  # no temp left

    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "ctx" / "planted").symlink_to(victim)
    (tmp_path / "out" / "secret").symlink_to(victim)
    for src, dst, named in ((source, tmp_path / "ctx" / "planted", "planted"),
                            (tmp_path / "out" / "secret", tmp_path / "ctx" / "s", "secret")):
        with pytest.raises(UnsafePathError) as err:
            files.link_or_copy(src, dst)
        assert str(err.value).startswith(f"{tmp_path}/{'ctx' if named == 'planted' else 'out'}"
                                         f"/{named} is a symlink")
    assert victim.read_text() == "keep" and not (tmp_path / "ctx" / "s").exists()


def test_exchange_swaps_two_folders_and_refuses_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "f").write_text("new")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "f").write_text("old")
    assert files.exchange(tmp_path / "new", tmp_path / "old")
    assert (tmp_path / "old" / "f").read_text() == "new"
    assert (tmp_path / "new" / "f").read_text() == "old"
    (tmp_path / "link").symlink_to(tmp_path / "new")
    with pytest.raises(UnsafePathError):
        files.exchange(tmp_path / "old", tmp_path / "link")
    assert (tmp_path / "link").is_symlink() and (tmp_path / "old" / "f").read_text() == "new"


def test_make_dir_makes_a_new_folder_only(tmp_path: Path) -> None:
    made = files.make_dir(tmp_path / "a" / "logs")
    assert made.is_dir() and list(made.iterdir()) == []
    with pytest.raises(FileExistsError):
        files.make_dir(made)
    (tmp_path / "link").symlink_to(made)
    with pytest.raises(UnsafePathError, match="is a symlink"):
        files.make_dir(tmp_path / "link")
    with pytest.raises(UnsafePathError, match="is a symlink"):
        files.make_dir(tmp_path / "link" / "inner")
    assert list(made.iterdir()) == []


def test_write_tarball_stores_links_as_links_and_leaves_no_temp_on_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tarfile

    folder = tmp_path / "logs"
    (folder / "node").mkdir(parents=True)
    (folder / "node" / "kubelet.log").write_text("started\n")
    (tmp_path / "outside").write_text("not in the tarball\n")
    (folder / "node" / "escape").symlink_to(tmp_path / "outside")
    files.write_tarball(folder, tmp_path / "logs.tar.gz")
    with tarfile.open(tmp_path / "logs.tar.gz") as tar:
        kinds = {m.name: (m.isfile(), m.issym()) for m in tar.getmembers()}
        assert tar.extractfile("logs/node/kubelet.log").read() == b"started\n"  # type: ignore[union-attr]
    assert kinds["logs/node/escape"] == (False, True)
    assert sorted(os.listdir(tmp_path)) == ["logs", "logs.tar.gz", "outside"]

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "add", full)
    with pytest.raises(OSError, match="No space left"):
        files.write_tarball(folder, tmp_path / "again.tar.gz")
    assert sorted(os.listdir(tmp_path)) == ["logs", "logs.tar.gz", "outside"]
    with pytest.raises(UnsafePathError):
        (tmp_path / "via").symlink_to(folder)
        files.write_tarball(tmp_path / "via", tmp_path / "via.tar.gz")
