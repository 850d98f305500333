"""The one image-reference parser (``model/refs.py``): every shape a reference takes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tkedistro
from tkedistro.artifacts.purl import split_ref
from tkedistro.engine.skopeo import is_loopback
from tkedistro.images.upstream.recipes import recipe_for, short_name, tag_of
from tkedistro.model.refs import ImageRef, parse_image_ref

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("ref", "expected"), [
    ("busybox", ImageRef("", "busybox")),
    ("golang:1.15.15", ImageRef("", "golang", "1.15.15")),
    (f"busybox@{DIGEST}", ImageRef("", "busybox", digest=DIGEST)),
    (f"tke/builder:1.20@{DIGEST}", ImageRef("", "tke/builder", "1.20", DIGEST)),
    ("registry.example.com:5000/tke/builder:1.20",
     ImageRef("registry.example.com:5000", "tke/builder", "1.20")),
    ("127.0.0.1:5000/k8s.gcr.io/pause", ImageRef("127.0.0.1:5000", "k8s.gcr.io/pause")),
    ("localhost/pause:3.2", ImageRef("localhost", "pause", "3.2")),
    ("localhost:5000/pause", ImageRef("localhost:5000", "pause")),
    ("[::1]:5000/e2e/agnhost:2.21", ImageRef("[::1]:5000", "e2e/agnhost", "2.21")),
    ("k8s.gcr.io/e2e-test-images/agnhost:2.21",
     ImageRef("k8s.gcr.io", "e2e-test-images/agnhost", "2.21")),
])
def test_a_reference_is_taken_apart_as_docker_reads_it(ref: str, expected: ImageRef) -> None:
    assert parse_image_ref(ref) == expected


def test_the_parts_a_caller_needs_are_read_from_the_one_parse() -> None:
    ref = parse_image_ref(f"[::1]:5000/e2e/agnhost:2.21@{DIGEST}")
    assert (ref.repository, ref.short_name, ref.host, ref.version) == (
        "[::1]:5000/e2e/agnhost", "agnhost", "::1", DIGEST)
    plain = parse_image_ref("tke/builder:1.20")
    assert (plain.repository, plain.host, plain.version) == ("tke/builder", "", "1.20")
    assert parse_image_ref("127.0.0.1:5000/x").host == "127.0.0.1"


def test_every_user_reads_a_digest_the_same_way() -> None:
    both = f"reg.example:5000/k8s/kube-proxy:v1.20.2-tke.1@{DIGEST}"
    assert split_ref(both) == ("reg.example:5000/k8s/kube-proxy", "v1.20.2-tke.1")
    assert split_ref(f"reg.example/k8s/pause@{DIGEST}") == ("reg.example/k8s/pause", "")
    assert (short_name(both), tag_of(both)) == ("kube-proxy", "v1.20.2-tke.1")
    assert tag_of(f"k8s.gcr.io/pause@{DIGEST}") == "latest"
    assert recipe_for(f"k8s.gcr.io/pause@{DIGEST}") is None


@pytest.mark.parametrize(("ref", "loopback"), [
    ("127.0.0.1:5000/x:1", True), ("localhost:5000/x", True), ("[::1]:5000/x", True),
    ("registry.example.com/x:1", False), ("busybox:1", False),
])
def test_plain_http_only_for_a_registry_on_loopback(ref: str, loopback: bool) -> None:
    assert is_loopback(ref) is loopback


def test_no_other_module_takes_a_digest_off_a_reference_itself() -> None:
    package = Path(tkedistro.__file__).parent
    splitting = re.compile(r"""(?:split|partition)\(\s*["']@["']""")
    found = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                   if splitting.search(p.read_text()))
    assert found == ["model/refs.py"]
