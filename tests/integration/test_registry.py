"""Docker tier: the local registry (Debian's docker-registry) with the real engine.

An image made here from the host's static busybox is pushed, listed, pulled back by digest and
run; the registry is gone after the run, and a run killed with SIGKILL leaves a folder the next
run starts from cleanly, with the images pushed before still there.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO
from tkedistro.core.errors import BuildError
from tkedistro.engine.engines import docker_engines
from tkedistro.engine.protocols import ContainerSpec, RegistryLogin
from tkedistro.engine.registry import LocalRegistry, RegistryState

BUSYBOX = Path("/usr/bin/busybox")
REGISTRY = Path("/usr/bin/docker-registry")
pytestmark = [
    pytest.mark.docker,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not REGISTRY.exists(),
                       reason="needs Debian's docker-registry (apt-get install docker-registry)"),
    pytest.mark.skipif(not BUSYBOX.exists(), reason="needs the host's busybox (busybox-static)"),
]


def _rootfs(path: Path) -> Path:
    """A root filesystem tar: /bin/busybox and the applets a session needs."""
    with tarfile.open(path, "w") as tar:
        tar.add(BUSYBOX, "bin/busybox")
        for applet in ("sh", "sleep", "true", "cat"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(tmp)
        data = b"made offline\n"
        info = tarfile.TarInfo("etc/motd")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def _status(url: str, method: str = "GET") -> int:
    """The HTTP status of an anonymous request (0: nothing answers)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, method=method), timeout=2) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def _answers(url: str) -> bool:
    return _status(url + "/v2/") != 0


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_push_list_pull_by_digest_and_run_then_the_registry_is_gone(tmp_path: Path) -> None:
    engine = docker_engines().images
    repo = f"tkedistro-test/busybox-{uuid.uuid4().hex[:8]}"
    refs: list[str] = []
    try:
        with LocalRegistry(tmp_path / "registry") as registry:
            built = engine.import_rootfs(_rootfs(tmp_path / "rootfs.tar"),
                                         registry.ref(f"{repo}:1.0"),
                                         changes=["LABEL org.tkedistro.test=offline"])
            refs.append(built.ref)
            assert engine.labels(built.ref) == {"org.tkedistro.test": "offline"}
            digest = engine.push(built.ref, registry.login)
            assert digest.startswith("sha256:")
            assert repo in registry.catalog()
            assert registry.manifest_digest(repo, "1.0") == digest
            assert registry.has(built.ref)
            assert not registry.has(registry.ref(f"{repo}:2.0"))

            engine.remove(built.ref)
            assert engine.labels(built.ref) is None
            by_digest = f"{registry.address}/{repo}@{digest}"
            pulled = engine.pull(by_digest, registry.login)
            refs.append(by_digest)
            assert pulled.labels == {"org.tkedistro.test": "offline"}
            with docker_engines().containers.session(ContainerSpec(image=by_digest)) as session:
                result = session.run(["cat", "/etc/motd"])
            assert result.ok and result.output == "made offline\n"
            url, pid = registry.url, registry.pid
        assert pid is not None and _wait_gone(pid, 1)
        assert not _answers(url)
        assert not (tmp_path / "registry" / "registry.json").exists()
    finally:
        for ref in refs:
            engine.remove(ref)


def test_another_local_user_can_neither_push_nor_delete(tmp_path: Path) -> None:
    """Anyone on the host reaches 127.0.0.1: without this run's password the registry
    refuses a push, a read and a delete; with it, a delete is still refused."""
    engine = docker_engines().images
    repo = f"tkedistro-test/guarded-{uuid.uuid4().hex[:8]}"
    local = ""
    try:
        with LocalRegistry(tmp_path / "registry") as registry:
            htpasswd = registry.htpasswd
            assert os.stat(htpasswd).st_mode & 0o777 == 0o600
            assert registry.login.password not in htpasswd.read_text()
            local = engine.import_rootfs(_rootfs(tmp_path / "rootfs.tar"),
                                         registry.ref(f"{repo}:1")).ref
            with pytest.raises(BuildError, match="no basic auth credentials"):
                engine.push(local)
            guessed = RegistryLogin("tkedistro", "guessed")
            with pytest.raises(BuildError, match="unauthorized"):
                engine.push(local, guessed)
            digest = engine.push(local, registry.login)
            manifest = f"{registry.url}/v2/{repo}/manifests/{digest}"
            assert _status(manifest) == 401 and _status(manifest, "DELETE") == 401
            status, _, _ = registry._request("DELETE", f"/v2/{repo}/manifests/{digest}")
            assert status == 405  # deletes are off even for the run's own login
            assert registry.manifest_digest(repo, "1") == digest
        assert not htpasswd.exists()
    finally:
        if local:
            engine.remove(local)


def test_a_failing_build_names_the_failing_step(tmp_path: Path) -> None:
    engine = docker_engines().images
    base = f"tkedistro-test/base-{uuid.uuid4().hex[:8]}:1"
    engine.import_rootfs(_rootfs(tmp_path / "rootfs.tar"), base)
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base}\nRUN echo built > /tmp/ok\nRUN echo about to fail && false\n")
    good = tmp_path / "good"
    good.mkdir()
    (good / "Containerfile").write_text(f"FROM {base}\nRUN echo built > /tmp/ok\n")
    tag = f"tkedistro-test/built-{uuid.uuid4().hex[:8]}:1"
    try:
        with pytest.raises(BuildError) as caught:
            engine.build(context, tag, {"a": "b"})
        assert "returned a non-zero code: 1" in caught.value.message
        assert "about to fail" in (caught.value.details or "")
        built = engine.build(good, tag, {"org.tkedistro.step": "good"}, dockerfile="Containerfile")
        assert built.labels == {"org.tkedistro.step": "good"}
    finally:
        engine.remove(tag)
        engine.remove(base)


HOLDER = """
import sys, time
from pathlib import Path
from tkedistro.engine.registry import LocalRegistry
with LocalRegistry(Path(sys.argv[1])) as registry:
    print(registry.address, registry.pid, registry.login.password, flush=True)
    time.sleep(300)
"""


def test_a_run_killed_with_sigkill_leaves_a_folder_the_next_run_starts_from(
        tmp_path: Path) -> None:
    engine = docker_engines().images
    folder = tmp_path / "registry"
    repo = f"tkedistro-test/kept-{uuid.uuid4().hex[:8]}"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    local = ""
    try:
        address, pid, password = holder.stdout.readline().split() if holder.stdout else "   "
        local = engine.import_rootfs(_rootfs(tmp_path / "rootfs.tar"), f"{address}/{repo}:1").ref
        digest = engine.push(local, RegistryLogin("tkedistro", password))
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        assert _wait_gone(int(pid)), "the registry outlived the run that owned it"
        assert RegistryState.load(folder / "registry.json") is not None  # a crash leftover
        with LocalRegistry(folder) as registry:
            assert repo in registry.catalog()
            assert registry.manifest_digest(repo, "1") == digest
    finally:
        holder.kill()
        if local:
            engine.remove(local)


def test_a_registry_that_survived_its_run_is_stopped_at_the_next_start(tmp_path: Path) -> None:
    folder = tmp_path / "registry"
    with LocalRegistry(folder) as first:
        port = first.port
    survivor = subprocess.Popen([str(REGISTRY), "serve", str(folder / "config.yml")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not _answers(f"http://127.0.0.1:{port}") and time.monotonic() < deadline:
            time.sleep(0.05)
        (folder / "registry.json").write_bytes(
            RegistryState(survivor.pid, port, folder / "config.yml").to_json())
        with LocalRegistry(folder) as second:
            survivor.wait(timeout=10)  # reaped here: it was stopped by the start
            assert second.catalog() == []
    finally:
        survivor.kill()
