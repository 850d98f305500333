"""Docker tier, issue 14 end to end through the CLI on a small k8s-shaped upstream built for
linux/amd64 and linux/arm64 in the real builder image: `tkedistro build` ships pause as a
multi-arch OCI archive (buildah), upstream-style tarballs, both checksum files, an SPDX SBOM
that spdx-tools validates and a provenance statement; a second build is a no-op; `--no-images`
then `tkedistro images --push` remakes only the artifacts, gets the same image digest, and
pushes it to Debian's docker-registry, from where each platform runs by digest."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.registrylogin import log_in
from tests.integration.test_build_arm64_docker import BOTH, EMULATION, build, go_cache, root
from tkedistro.cli.app import app
from tkedistro.engine.registry import LocalRegistry

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900),
              pytest.mark.skipif(not EMULATION[0], reason=f"no arm64 emulation: {EMULATION[1]}")]
__all__ = ["go_cache", "root"]  # fixtures: a distro of the synthetic upstream, images: [pause]
VERSION = "v1.20.6-tke.1"


def _platforms(raw: str) -> list[str]:
    return sorted(f"{m['platform']['os']}/{m['platform']['architecture']}"
                  for m in json.loads(raw)["manifests"])


def _stats(out: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(out.rglob("*")) if p.is_file()}


def test_build_ships_everything_and_images_pushes_the_same_digests(
        root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = build(root, *BOTH)
    assert code == 0, out
    output = root / "_output" / "1.20"
    archive = output / "images" / "pause.oci.tar"
    # index.json lists the image's SBOM referrer too: skopeo needs the image named
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{archive}:{VERSION}"],
                         capture_output=True, text=True, check=True).stdout
    assert _platforms(raw) == ["linux/amd64", "linux/arm64"]
    images = json.loads((output / "images" / "images.json").read_text())["images"]
    digest = images[0]["index_digest"]
    for arch in ("amd64", "arm64"):
        listed = subprocess.run(["tar", "-tzf", str(output / "release" /
                                                    f"kubernetes-client-linux-{arch}.tar.gz")],
                                capture_output=True, text=True, check=True).stdout.split()
        assert "kubernetes/client/bin/kubectl" in listed
    for tool, sums in (("sha256sum", "SHA256SUMS"), ("sha512sum", "SHA512SUMS")):
        subprocess.run([tool, "--check", "--quiet", sums], cwd=output, check=True)
    assert "  images/pause.oci.tar\n" in (output / "SHA256SUMS").read_text()
    assert "  sbom.cdx.json\n" in (output / "SHA256SUMS").read_text()

    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    assert validate_full_spdx_document(parse_file(str(output / "sbom.spdx.json"))) == []
    statement = json.loads((output / "provenance.intoto.json").read_text())
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects["tkedistro.local/k8s/pause:" + VERSION] == digest.removeprefix("sha256:")

    before = _stats(output)
    code, out = build(root, *BOTH)
    assert code == 0 and "1.20 is up to date" in out
    assert _stats(output) == before

    code, out = build(root, *BOTH, "--no-images")
    assert code == 0 and "remade the artifacts of 1.20" in out, out
    assert not (output / "images").exists()
    kubectl = output / "bin" / "linux" / "arm64" / "kubectl"
    assert kubectl.stat().st_ino == before["bin/linux/arm64/kubectl"][0]  # not rebuilt

    with LocalRegistry(tmp_path / "registry") as registry:
        log_in(registry, tmp_path / "login", monkeypatch)  # the user's own registry
        result = CliRunner().invoke(app, ["--root", str(root), "images", "1.20", *BOTH,
                                          "--push", registry.address, "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["build"] == "finished"
        assert [i["index_digest"] for i in report["images"]] == [digest]  # reproducible
        pushed = report["pushed"][0]
        assert pushed["ref"] == f"{registry.address}/tkedistro/pause:{VERSION}"
        assert pushed["digest"] == digest
        remote = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                 f"docker://{pushed['ref']}"],
                                capture_output=True, text=True, check=True).stdout
        assert _platforms(remote) == ["linux/amd64", "linux/arm64"]
        by_digest = f"{registry.address}/tkedistro/pause@{digest}"
        for platform in ("linux/amd64", "linux/arm64"):
            subprocess.run(["docker", "pull", "-q", "--platform", platform, by_digest],
                           capture_output=True, check=True)
            try:
                ran = subprocess.run(["docker", "run", "--rm", "--platform", platform,
                                      "--network", "none", by_digest, "-v"],
                                     capture_output=True, text=True, check=True)
            finally:
                subprocess.run(["docker", "rmi", by_digest], capture_output=True, check=False)
            assert ran.stdout == f"pause.c v3.4-{VERSION}\n"
