"""`tkedistro source`: fetch, verify and patch a tiny synthetic upstream into `_src/1.20`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.distro import Distro, big, make_distro
from tests.helpers.gitrepo import git
from tkedistro.cli.app import app

runner = CliRunner()


def source(distro: Distro, *args: str) -> Result:
    return runner.invoke(app, ["--root", str(distro.root), "source", "1.20", *args])


def mirrors_dir() -> Path:
    return Path(os.environ["TKEDISTRO_CACHE"]) / "mirrors"


def log(src: Path, fmt: str = "%H") -> list[str]:
    return git(src, "log", f"--format={fmt}").splitlines()


@pytest.fixture()
def distro(tmp_path: Path) -> Distro:
    return make_distro(tmp_path)


@pytest.fixture()
def series(distro: Distro) -> list[str]:
    """A clean mbox patch, one that needs 3-way on v1.20.1, and a plain diff."""
    clean = distro.mbox("0001-kubectl-quiet.patch",
                        {"cmd/kubectl/main.go": "package main\n\nfunc main() {}\n"},
                        "kubectl: print nothing\n\nQuiet please.\n\n"
                        "Patch-Kind: carry\nUpstream-Ref: none\nUpstream-Status: not-submitted")
    threeway = distro.mbox("0002-lines-ten.patch", {"pkg/big/lines.go": big(l10="ours10")},
                           "lines: change ten", author="Kim Dev <kim@example.invalid>")
    plain = distro.plain("0003-TKE-readme.diff", {"go.mod": "module k8s.io/kubernetes\n"})
    distro.manifest([clean, threeway, plain], subjects={plain: "TKE: shorter go.mod"})
    return [clean, threeway, plain]


def test_series_is_applied_one_commit_per_patch_with_authors_kept(
    distro: Distro, series: list[str]
) -> None:
    result = source(distro)
    assert result.exit_code == 0, result.output
    head = git(distro.src, "rev-parse", "HEAD")
    base = distro.upstream.tags["v1.20.1"]
    assert result.stdout.splitlines() == [
        f"_src/1.20: v1.20.1 ({base[:12]}) + 3 patches, HEAD {head[:12]}",
        "  1/3  applied    patches/1.20/0001-kubectl-quiet.patch  kubectl: print nothing",
        "  2/3  3-way      patches/1.20/0002-lines-ten.patch  lines: change ten",
        "  3/3  applied    patches/1.20/0003-TKE-readme.diff  TKE: shorter go.mod",
    ]
    fmt = "%an <%ae> %aI | %cn <%ce> %cI | %s"
    assert log(distro.src, fmt)[:3] == [
        "tkedistro <tkedistro@invalid> 2021-01-13T12:00:00+00:00 | "
        "tkedistro <tkedistro@invalid> 2021-01-13T12:00:00+00:00 | TKE: shorter go.mod",
        "Kim Dev <kim@example.invalid> 2021-02-03T04:05:06+01:00 | "
        "tkedistro <tkedistro@invalid> 2021-02-03T04:05:06+01:00 | lines: change ten",
        "Jane Maintainer <jane@example.invalid> 2021-02-03T04:05:06+01:00 | "
        "tkedistro <tkedistro@invalid> 2021-02-03T04:05:06+01:00 | kubectl: print nothing",
    ]
    assert git(distro.src, "log", "-1", "--format=%B", "HEAD~2") == (
        "kubectl: print nothing\n\nQuiet please.\n\n"
        "Patch-Kind: carry\nUpstream-Ref: none\nUpstream-Status: not-submitted")
    assert git(distro.src, "rev-parse", "HEAD~3") == base
    assert (distro.src / "pkg/big/lines.go").read_text() == big(l07="L07", l10="ours10")
    assert (distro.src / "go.mod").read_text() == "module k8s.io/kubernetes\n"
    assert git(distro.src, "status", "--porcelain") == ""


def test_json_reports_every_outcome(distro: Distro, series: list[str]) -> None:
    result = source(distro, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["up_to_date"] is False and data["backup_ref"] is None
    assert data["tag"] == "v1.20.1" and data["upstream_url"] == distro.upstream.url
    assert [(o["position"], o["method"]) for o in data["outcomes"]] == [
        (1, "applied"), (2, "3-way"), (3, "applied")]
    assert data["outcomes"][-1]["commit"] == data["head_commit"]


def test_same_inputs_give_the_same_commit_shas(
    distro: Distro, series: list[str], tmp_path: Path
) -> None:
    assert source(distro).exit_code == 0
    first = log(distro.src)
    shutil.rmtree(distro.root / "_src")
    shutil.rmtree(mirrors_dir())  # also a cold mirror
    assert source(distro).exit_code == 0
    assert log(distro.src) == first


def test_unchanged_rerun_is_up_to_date_and_needs_no_upstream(
    distro: Distro, series: list[str]
) -> None:
    assert source(distro).exit_code == 0
    head = git(distro.src, "rev-parse", "HEAD")
    shutil.move(distro.upstream.bare, distro.upstream.bare.with_name("gone.git"))
    result = source(distro)
    assert result.exit_code == 0, result.output
    base = distro.upstream.tags["v1.20.1"]
    assert result.stdout == (
        f"_src/1.20: up to date: v1.20.1 ({base[:12]}) + 3 patches, HEAD {head[:12]}\n")
    assert "fetch_source" not in result.stderr


def test_editing_the_last_patch_reapplies_only_it(distro: Distro, series: list[str]) -> None:
    assert source(distro).exit_code == 0
    before = log(distro.src)
    distro.plain("0003-TKE-readme.diff", {"go.mod": "module k8s.io/kubernetes // tke\n"})
    result = source(distro)
    assert result.exit_code == 0, result.output
    assert [line.split()[1] for line in result.stdout.splitlines()[1:]] == [
        "unchanged", "unchanged", "applied"]
    after = log(distro.src)
    assert after[1:] == before[1:] and after[0] != before[0]
    assert (distro.src / "go.mod").read_text() == "module k8s.io/kubernetes // tke\n"


def test_removing_a_patch_resets_to_the_commit_before_it(
    distro: Distro, series: list[str]
) -> None:
    assert source(distro).exit_code == 0
    before = log(distro.src)
    distro.manifest(series[:2])
    result = source(distro)
    assert result.exit_code == 0, result.output
    assert log(distro.src) == before[1:]
    assert (distro.src / "go.mod").read_text().startswith("module k8s.io/kubernetes\n\ngo 1.15")


def test_adding_a_patch_in_the_middle_reapplies_from_there(
    distro: Distro, series: list[str]
) -> None:
    assert source(distro).exit_code == 0
    before = log(distro.src)
    extra = distro.mbox("0001a-kubelet.patch", {"cmd/kubelet/main.go": "package main\n"},
                        "kubelet: empty")
    distro.manifest([series[0], extra, *series[1:]], subjects={series[2]: "TKE: shorter go.mod"})
    result = source(distro)
    assert result.exit_code == 0, result.output
    assert [line.split()[1] for line in result.stdout.splitlines()[1:]] == [
        "unchanged", "applied", "3-way", "applied"]
    assert log(distro.src)[3] == before[2]


def test_conflicting_patch_stops_with_position_hunk_and_next_steps(distro: Distro) -> None:
    clean = distro.mbox("0001-kubectl-quiet.patch",
                        {"cmd/kubectl/main.go": "package main\n\nfunc main() {}\n"}, "kubectl")
    bad = distro.mbox("0002-lines-ten.patch", {"pkg/big/lines.go": big(l10="ours10")}, "ten")
    distro.manifest([clean, bad], tag="v1.20.2")
    result = source(distro)
    assert result.exit_code == 7
    head = git(distro.src, "rev-parse", "HEAD")
    assert result.stderr.split("\ngit said:\n")[0].endswith(
        "error: patch 2/2 does not apply: patches/1.20/0002-lines-ten.patch\n"
        "  pkg/big/lines.go: hunk #1 of 1 does not apply: @@ -7,7 +7,7 @@\n"
        f"_src/1.20 is left clean at HEAD {head[:12]}: patches 1-1 of 2 are applied"
    )
    assert "CONFLICT (content): Merge conflict in pkg/big/lines.go" in result.stderr
    assert result.stderr.rstrip().endswith(
        "hint: refresh the patch against v1.20.2: in _src/1.20 run "
        "`git am -3 ../../patches/1.20/0002-lines-ten.patch`, resolve, `git am --continue`, "
        "`git format-patch -1 -o ../../patches/1.20/`, then `git reset --hard HEAD~` if you "
        "committed; or drop it from releases/1.20.yaml; then run `tkedistro source 1.20` again"
    )
    assert git(distro.src, "status", "--porcelain") == ""
    assert not (distro.src / ".git" / "rebase-apply").exists()
    assert git(distro.src, "log", "-1", "--format=%s") == "kubectl"
    distro.manifest([clean], tag="v1.20.2")
    fixed = source(distro)
    assert fixed.exit_code == 0, fixed.output
    assert "1/1  unchanged" in fixed.stdout


def test_conflicting_plain_diff_hint_says_git_apply(distro: Distro) -> None:
    bad = distro.plain("0001-ten.diff", {"pkg/big/lines.go": big(l10="ours10")})
    distro.manifest([bad], tag="v1.20.2")
    result = source(distro)
    assert result.exit_code == 7
    assert "error: patch 1/1 does not apply: patches/1.20/0001-ten.diff\n" in result.stderr
    assert "no patch is applied" in result.stderr
    assert "run `git apply -3 ../../patches/1.20/0001-ten.diff`, resolve, " in result.stderr


def test_binary_diff_without_index_is_refused_before_anything_is_applied(
    distro: Distro,
) -> None:
    ok = distro.mbox("0001-kubectl.patch", {"cmd/kubectl/main.go": "package main\n"}, "kubectl")
    png = distro.mbox("0002-logo.patch", {"docs/logo.png": b"\x89PNG\r\n\x00\x01\x02"}, "logo",
                      extra=("--no-binary",))
    distro.manifest([ok, png])
    result = source(distro)
    assert result.exit_code == 7
    assert result.stderr == (
        "error: binary diffs without full index lines cannot be applied (git needs the blob "
        "ids):\n"
        "  patch 2/2 patches/1.20/0002-logo.patch: docs/logo.png\n"
        "nothing was changed in _src/1.20\n"
        "hint: regenerate these patches with `git format-patch --binary --full-index`\n"
    )
    assert not distro.src.exists()


def test_binary_diff_with_full_index_applies(distro: Distro) -> None:
    png = distro.mbox("0001-logo.patch", {"docs/logo.png": b"\x89PNG\r\n\x00\x01\x02"}, "logo",
                      extra=("--binary",))
    distro.manifest([png])
    result = source(distro)
    assert result.exit_code == 0, result.output
    assert (distro.src / "docs/logo.png").read_bytes() == b"\x89PNG\r\n\x00\x01\x02"


def test_plain_diff_without_subject_takes_it_from_the_file_name(distro: Distro) -> None:
    plain = distro.plain("0001-TKE-FIX-kmem_off.patch", {"go.mod": "module x\n"},
                         preamble="Turn kmem off.\n\nPatch-Kind: fix\nUpstream-Ref: none\n"
                                  "Upstream-Status: not-submitted\n\n")
    distro.manifest([plain])
    assert source(distro).exit_code == 0
    assert git(distro.src, "log", "-1", "--format=%B") == (
        "TKE FIX kmem off\n\nTurn kmem off.\n\nPatch-Kind: fix\nUpstream-Ref: none\n"
        "Upstream-Status: not-submitted")


def test_pin_mismatch_names_tag_pinned_and_found_commit(distro: Distro) -> None:
    wrong = distro.upstream.tags["v1.20.0"]
    found = distro.upstream.tags["v1.20.1"]
    distro.manifest([], tag="v1.20.1", commit=wrong)
    result = source(distro)
    assert result.exit_code == 6
    assert result.stderr.splitlines()[-2:] == [
        f"error: tag v1.20.1 of {distro.upstream.url} points to commit {found}, "
        f"but releases/1.20.yaml pins upstream.commit {wrong}",
        "hint: the tag moved or was tampered with; check the upstream and change the pin only "
        "if you trust the new commit",
    ]
    assert not distro.src.exists()


def test_unknown_tag_is_a_fetch_error(distro: Distro) -> None:
    distro.manifest([], tag="v1.20.1", commit=distro.upstream.tags["v1.20.1"])
    text = (distro.root / "releases/1.20.yaml").read_text().replace("tag: v1.20.1", "tag: v1.20.9")
    (distro.root / "releases/1.20.yaml").write_text(text)
    result = source(distro)
    assert result.exit_code == 5
    assert f"error: upstream {distro.upstream.url} has no tag v1.20.9\n" in result.stderr


def test_upstream_option_and_env_fetch_from_a_mirror(
    distro: Distro, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "dc-mirror.git"
    shutil.copytree(distro.upstream.bare, mirror)
    distro.manifest([], url="https://github.com/kubernetes/kubernetes.git")
    result = source(distro, "--upstream", mirror.as_uri(), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["upstream_url"] == mirror.as_uri()
    mirrors = sorted(p.name for p in mirrors_dir().glob("*.git"))
    assert len(mirrors) == 1 and mirrors[0].startswith("kubernetes-kubernetes-")
    shutil.rmtree(distro.root / "_src")
    git(mirrors_dir() / mirrors[0], "tag", "-d", "v1.20.1")  # forces a new fetch
    monkeypatch.setenv("TKEDISTRO_UPSTREAM", str(mirror))
    again = source(distro)
    assert again.exit_code == 0, again.output


def test_mirror_is_shared_and_holds_only_the_pinned_tags(distro: Distro, tmp_path: Path) -> None:
    distro.manifest([], tag="v1.20.1")
    assert source(distro).exit_code == 0
    text = (distro.root / "releases/1.20.yaml").read_text()
    (distro.root / "releases/1.21.yaml").write_text(
        text.replace('release: "1.20"', 'release: "1.21"').replace("v1.20.1", "v1.20.2")
        .replace(distro.upstream.tags["v1.20.1"], distro.upstream.tags["v1.20.2"]))
    result = runner.invoke(app, ["--root", str(distro.root), "source", "1.21"])
    assert result.exit_code == 0, result.output
    (mirror,) = mirrors_dir().glob("*.git")
    refs = git(mirror, "for-each-ref", "--format=%(refname)").splitlines()
    assert sorted(refs) == sorted([
        "refs/tags/v1.20.1", "refs/tags/v1.20.2",
        f"refs/tkedistro/pins/{distro.upstream.tags['v1.20.1']}",
        f"refs/tkedistro/pins/{distro.upstream.tags['v1.20.2']}",
    ])


def test_changing_the_pin_rebuilds_on_the_new_base(distro: Distro, series: list[str]) -> None:
    assert source(distro).exit_code == 0
    clean = series[0]
    distro.manifest([clean], tag="v1.20.2")
    result = source(distro)
    assert result.exit_code == 0, result.output
    assert git(distro.src, "rev-parse", "HEAD~1") == distro.upstream.tags["v1.20.2"]
    assert "1/1  applied" in result.stdout


def test_comment_only_manifest_edit_is_still_up_to_date(
    distro: Distro, series: list[str]
) -> None:
    assert source(distro).exit_code == 0
    head = git(distro.src, "rev-parse", "HEAD")
    manifest = distro.root / "releases" / "1.20.yaml"
    manifest.write_text("# a comment\n" + manifest.read_text())
    result = source(distro)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("_src/1.20: up to date: ")
    assert git(distro.src, "rev-parse", "HEAD") == head


def test_quick_up_to_date_path_does_not_load_the_manifest(
    distro: Distro, series: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert source(distro).exit_code == 0
    import tkedistro.model.manifest

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the quick path parsed the manifest")

    monkeypatch.setattr(tkedistro.model.manifest, "load_manifest", refuse)
    result = source(distro)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("_src/1.20: up to date: ")


def test_a_patch_declaring_its_proof_applies_with_the_trailer_kept(distro: Distro) -> None:
    proof = ("Proof: cgroup-value controller=memory file=memory.kmem.limit_in_bytes "
             "equals=unlimited\n cgroups=kubepods,pod")
    message = ("kubelet: kmem off\n\nPatch-Kind: carry\nUpstream-Ref: none\n"
               f"Upstream-Status: not-submitted\n{proof}")
    patch = distro.mbox("0001-kmem.patch", {"pkg/big/lines.go": big(l03="kmem off")}, message)
    distro.manifest([patch])
    result = source(distro)
    assert result.exit_code == 0, result.output
    assert git(distro.src, "log", "-1", "--format=%B") == message
    bad = (distro.root / patch).read_text().replace("equals=unlimited", "equals=none")
    (distro.root / patch).write_text(bad)
    refused = source(distro)
    assert refused.exit_code == 4
    assert ("patches/1.20/0001-kmem.patch: trailer Proof: cgroup-value: key equals: expected a "
            "number or unlimited, got 'none'") in refused.stderr
