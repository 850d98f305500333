"""`tkedistro patches import`: plain `git diff` files into this project's format."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.gitrepo import K8S_LIKE_FILES, git
from tests.helpers.series import make_distro
from tests.unit.test_rebase import P, cli
from tkedistro.model.manifest import load_manifest
from tkedistro.model.patches import check_trailers, parse_patch

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def plain_diff(src: Path, files: dict[str, str | bytes], *args: str) -> str:
    """`git diff` of ``files`` written into a throw-away clone of ``src``'s HEAD."""
    work = src.parent / "import-work"
    if not work.exists():
        git(src.parent, "clone", "-q", str(src), str(work))
    git(work, "reset", "-q", "--hard", "HEAD")
    for rel, content in files.items():
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    git(work, "add", "-A")
    diff = git(work, "diff", "--cached", *args)
    git(work, "reset", "-q", "--hard", "HEAD")
    git(work, "clean", "-fdq")
    return diff + "\n"


def test_import_converts_applies_and_reports_what_it_cannot(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    series = tmp_path / "tke-k8s-distro"
    series.mkdir()
    (series / "0001-TKE-FIX-kubectl-banner.patch").write_text(plain_diff(
        d.src, {"cmd/kubectl/banner.go": "package main\n\nconst banner = \"tke\"\n"}))
    (series / "0002-TKE-FIX-logo.patch").write_text(plain_diff(d.src, {"docs/logo.png": PNG}))
    (series / "0003-TKE-FIX-limits-line3.patch").write_text(
        "Backport of https://github.com/kubernetes/kubernetes/pull/12345\n\n" + plain_diff(
            d.src, {"pkg/kubelet/cm/limits.go": K8S_LIKE_FILES["pkg/kubelet/cm/limits.go"]
                    .replace("kmem = true", "kmem = false").replace("line3 = 3", "line3 = 33")}))
    stale = plain_diff(d.src, {"README.md": "# tiny kubernetes (tke)\nmore\n"})
    stale = "\n".join(line for line in stale.split("\n") if not line.startswith("index "))
    (series / "0004-TKE-FIX-stale.patch").write_text(  # made on an older tree: no 3-way base
        stale.replace(" # tiny kubernetes (tke)", " # an older README"))
    (series / "notes.txt").write_text("not a patch\n")

    res = cli(d, "patches", "import", "1.20", "--from", str(series))
    assert res.exit_code == 7, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == ("imported  0001-TKE-FIX-kubectl-banner.patch -> "
                        "patches/1.20/0001-TKE-FIX-kubectl-banner.patch")
    assert lines[1] == ("  Patch-Kind: carry (defaulted); Upstream-Ref: none (defaulted); "
                        "Upstream-Status: not-submitted (defaulted)")
    assert lines[2] == ("NOT IMPORTED  0002-TKE-FIX-logo.patch: binary diff without full index "
                        "lines (git cannot apply it): docs/logo.png; --text-only imports the rest")
    assert lines[3].startswith("imported  0003-TKE-FIX-limits-line3.patch -> ")
    assert lines[5] == ("NOT IMPORTED  0004-TKE-FIX-stale.patch: does not apply: "
                        "README.md: hunk #1 of 1 does not apply: @@ -1 +1,2 @@")
    assert lines[6] == f"1.20: 2 of 4 patches imported from {series}"
    assert [line for line in res.stderr.splitlines() if line.startswith("error:")] == [
        "error: 2 patch(es) could not be imported as they are: 0002-TKE-FIX-logo.patch, "
        "0004-TKE-FIX-stale.patch"]

    new = ["patches/1.20/0001-TKE-FIX-kubectl-banner.patch",
           "patches/1.20/0003-TKE-FIX-limits-line3.patch"]
    assert [e.file for e in load_manifest(d.manifest).patches] == [*P, *new]
    first, third = (parse_patch(d.root / f) for f in new)
    assert (first.format, first.subject, first.trailers) == ("mbox", "TKE FIX kubectl banner", {
        "Patch-Kind": "carry", "Upstream-Ref": "none", "Upstream-Status": "not-submitted",
        "Trailer-Defaulted": "Patch-Kind, Upstream-Ref, Upstream-Status"})
    assert third.trailers == {"Patch-Kind": "backport",
                              "Upstream-Ref": "https://github.com/kubernetes/kubernetes/pull/12345",
                              "Upstream-Status": "submitted",
                              "Trailer-Inferred": "Patch-Kind, Upstream-Ref",
                              "Trailer-Defaulted": "Upstream-Status"}
    assert check_trailers(first, "x") == [] and check_trailers(third, "x") == []
    assert third.body.startswith("Backport of https://github.com/kubernetes/kubernetes/pull/12345")
    assert git(d.src, "log", "-2", "--format=%s") == (
        "TKE FIX limits line3\nTKE FIX kubectl banner")
    export = cli(d, "patches", "export", "1.20")
    assert export.stdout.splitlines()[-1] == "1.20: 7 unchanged; 0 bytes written"


def test_import_refuses_to_overwrite_existing_files(tmp_path: Path) -> None:
    d = make_distro(tmp_path)
    series = tmp_path / "in"
    series.mkdir()
    (series / Path(P[0]).name).write_text((d.root / P[0]).read_text())
    (series / "0009-stray.patch").write_text((d.root / P[1]).read_text())
    (d.patch_dir / "0009-stray.patch").write_text("not listed\n")
    res = cli(d, "patches", "import", "1.20", "--from", str(series))
    assert res.exit_code == 21  # the file of P[0] is in the series: not a clash (issue 28)
    assert res.stderr.splitlines()[:2] == [
        "error: patches/1.20/0009-stray.patch: already exists; not importing over it",
        "hint: the series does not list it: move it out of the patch folder (or delete it), "
        "then import again"]
