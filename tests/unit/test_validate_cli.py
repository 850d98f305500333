"""`tkedistro validate`, `list`, `show`, `--version` in-process: exact messages, exit codes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.conftest import REPO
from tests.helpers.gitrepo import git, write_manifest
from tests.unit.test_patches import TRAILERS, format_patch, make_work_repo
from tkedistro import __version__
from tkedistro.cli.app import app

M = "releases/1.20.yaml"
P1 = "patches/1.20/0001-kubelet-disable-kmem-accounting.patch"
P2 = "patches/1.20/0002-kubectl-backport-fix.patch"
HINT = "hint: manifest format: docs/manifest.md; patch format: docs/patches.md"
BACKPORT = ("Patch-Kind: backport\n"
            "Upstream-Ref: https://github.com/kubernetes/kubernetes/pull/97654\n"
            "Upstream-Status: merged")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A distro repo whose release 1.20 lists two good `git format-patch` patches."""
    work = make_work_repo(tmp_path)
    distro = tmp_path / "distro"
    commit = git(work, "rev-parse", "HEAD")
    write_manifest(distro, "1.20", url="https://example.invalid/k8s.git", tag="v1.20.1",
                   commit=commit, patches=[P1, P2])
    out = distro / "patches" / "1.20"
    kmem = work / "pkg/kubelet/cm/limits.go"
    format_patch(work, out, {"pkg/kubelet/cm/limits.go": kmem.read_text().replace(
        "true", "false")}, f"kubelet: disable kmem accounting\n\n{TRAILERS}", number=1)
    format_patch(work, out, {"cmd/kubectl/main.go": "package main\n\nfunc main() {}\n"},
                 f"kubectl: backport fix\n\n{BACKPORT}", number=2)
    assert sorted(p.name for p in out.iterdir()) == [Path(P1).name, Path(P2).name]
    return distro


def run(repo: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--root", str(repo), *args])


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def edit_manifest(old: str, new: str) -> Callable[[Path], None]:
    return lambda repo: edit(repo / M, old, new)


def add_patch_entry(file: str) -> Callable[[Path], None]:
    return lambda repo: edit(repo / M, f"  - file: {P2}\n", f"  - file: {P2}\n  - file: {file}\n")


def escape_with_symlink(repo: Path) -> None:
    outside = repo.parent / "outside.patch"
    shutil.copy(repo / P1, outside)
    (repo / P1).unlink()
    (repo / P1).symlink_to(outside)


def escape_with_dotdot(repo: Path) -> None:
    shutil.copy(repo / P2, repo.parent / "outside.patch")
    edit(repo / M, f"file: {P2}", "file: patches/1.20/../../../outside.patch")
    (repo / P2).unlink()


def leave_unlisted(repo: Path) -> None:
    shutil.copy(repo / P2, repo / "patches/1.20/0003-forgotten.patch")


def edit_patch(path: str, old: str, new: str) -> Callable[[Path], None]:
    return lambda repo: edit(repo / path, old, new)


def replace_patch(path: str, text: str) -> Callable[[Path], None]:
    def write(repo: Path) -> None:
        (repo / path).write_text(text)

    return write


def add_archive(sha256: str) -> Callable[[Path], None]:
    archive = f"  archive:\n    url: https://example.invalid/k8s.tar.gz\n    sha256: {sha256}\n"
    return lambda repo: edit(repo / M, "distro_version:", f"{archive}distro_version:")


def two_problems_in_two_kinds(repo: Path) -> None:
    edit(repo / M, "tag: v1.20.1", "tag: 1.20.1")
    edit(repo / P1, "Upstream-Status: not-submitted", "Upstream-Status: pending")


def binary_without_data(repo: Path) -> None:
    (repo / P1).write_text(
        f"Add a logo.\n\n{TRAILERS}\n\n"
        "diff --git a/logo.png b/logo.png\nnew file mode 100644\n"
        "index 0000000..1d2e3f4\nBinary files /dev/null and b/logo.png differ\n"
    )


BAD_INPUTS: list[tuple[str, Callable[[Path], None], int, list[str]]] = [
    ("yaml-syntax", edit_manifest("components: [kubectl, kubelet]", "components: [kubectl"), 3,
     [f"{M}:13: YAML syntax error: expected ',' or ']', but got ':' "
      "(while parsing a flow sequence started on line 12)"]),
    ("unknown-key", edit_manifest("platforms:", "platfroms:"), 3,
     [f"{M}:13: platfroms: unknown key; did you mean 'platforms'? (allowed: schema, release, "
      "upstream, distro_version, go, builder, components, platforms, patches, images, debian)"]),
    ("bad-commit", edit_manifest("commit: ", "commit: faecb19 #"), 3,
     [f"{M}:6: upstream.commit: expected a full 40-character lowercase hex commit SHA, "
      "got 'faecb19'"]),
    ("bad-tag", edit_manifest("tag: v1.20.1", "tag: release-1.20"), 3,
     [f"{M}:5: upstream.tag: expected a tag like v1.20.2, got 'release-1.20'"]),
    ("archive-no-longer-supported", add_archive("d41d8cd98f00b204e9800998ecf8427e"), 3,
     [f"{M}:7: upstream.archive: no longer supported: tkedistro always fetches upstream with "
      "git; delete upstream.archive"]),
    ("schema-version", edit_manifest("schema: 1", "schema: 2"), 3,
     [f"{M}:1: schema: unsupported schema version 2; this tkedistro reads 1"]),
    ("unknown-component", edit_manifest("[kubectl, kubelet]", "[kubectl, kubelett]"), 3,
     [f"{M}:12: components[1]: unknown value 'kubelett'; did you mean 'kubelet'? (allowed: "
      "kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, kubelet, "
      "kubectl, kubeadm)"]),
    ("release-mismatch", edit_manifest('release: "1.20"', 'release: "1.21"'), 3,
     [f"{M}:2: release: '1.21' does not match the file name (expected '1.20')"]),
    ("missing-patch", add_patch_entry("patches/1.20/0003-x.patch"), 3,
     [f"{M}: patches[2].file: no such file patches/1.20/0003-x.patch"]),
    ("listed-twice", add_patch_entry(P1), 3,
     [f"{M}: patches[2].file: {P1} is listed twice (first as patches[0].file); "
      "list each patch once"]),
    ("dotdot-escape", escape_with_dotdot, 3,
     [f"{M}: patches[1].file: patches/1.20/../../../outside.patch is outside the repo; "
      "patch files live under patches/<release>/"]),
    ("absolute-path", add_patch_entry("/etc/passwd"), 3,
     [f"{M}: patches[2].file: /etc/passwd is an absolute path; give it relative to the repo "
      "root, like patches/1.20/0001-fix.patch"]),
    ("unlisted-patch", leave_unlisted, 3,
     [f"patches/1.20/0003-forgotten.patch: not listed in {M} patches; "
      "add it to the series or delete it"]),
    ("missing-trailer", edit_patch(P1, "Upstream-Ref: none\n", ""), 4,
     [f"{P1}: trailer Upstream-Ref: missing (expected an upstream PR or commit URL "
      "(https://...), or none)"]),
    ("bad-trailer-value", edit_patch(P2, "Patch-Kind: backport", "Patch-Kind: backprot"), 4,
     [f"{P2}: trailer Patch-Kind: 'backprot' is not allowed; did you mean 'backport'? "
      "(expected one of backport, carry, fix)"]),
    ("not-a-patch", replace_patch(P2, "TODO: write this patch\n"), 4,
     [f"{P2}: not a patch: expected git format-patch mail (From:, Subject: headers) "
      "or a diff (`diff --git` or ---/+++ lines)"]),
    ("binary-without-data", binary_without_data, 4,
     [f"{P1}: binary diff of logo.png has no full index line, so git apply cannot use it; "
      "regenerate the patch with git format-patch --binary"]),
    ("proof-unknown-kind", edit_patch(P1, "Upstream-Status: not-submitted",
                                      "Upstream-Status: not-submitted\nProof: kmem-off"), 4,
     [f"{P1}: trailer Proof: unknown kind 'kmem-off' (known: cgroup-value, component-http, "
      "metric-labels)"]),
    ("proof-wrong-parameters", edit_patch(P2, "Upstream-Status: merged", (
        "Upstream-Status: merged\nProof: component-http component=kubectl method=PUT\n"
        " paht=/debug/flags/v status=ok")), 4,
     [f"{P2}: trailer Proof: component-http: key component: 'kubectl' is not allowed "
      "(expected kube-apiserver, kube-controller-manager or kube-scheduler)",
      f"{P2}: trailer Proof: component-http: key path: required",
      f"{P2}: trailer Proof: component-http: key status: expected an HTTP status like 200, "
      "got 'ok'",
      f"{P2}: trailer Proof: component-http: unknown key 'paht'; did you mean 'path'? "
      "(allowed: component, port, method, path, anonymous, body, status, says, bad-body, "
      "bad-status, restore-flag)"]),
    ("manifest-and-patch", two_problems_in_two_kinds, 3,
     [f"{M}:5: upstream.tag: expected a tag like v1.20.2, got '1.20.1'",
      f"{P1}: trailer Upstream-Status: 'pending' is not allowed (expected one of merged, "
      "submitted, not-submitted, rejected, superseded)"]),
]


@pytest.mark.parametrize(
    ("break_it", "code", "problems"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_validate_reports_bad_input(repo: Path, break_it: Callable[[Path], None], code: int,
                                    problems: list[str]) -> None:
    break_it(repo)

    result = run(repo, "validate")

    assert result.exit_code == code
    assert result.stderr == "error: " + "\n".join([*problems, HINT]) + "\n"
    assert result.stdout.startswith(f"{M}: {len(problems)} problem")


def test_symlink_escaping_the_repo_is_refused(repo: Path) -> None:
    escape_with_symlink(repo)

    result = run(repo, "validate")

    outside = (repo.parent / "outside.patch").resolve()
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: {M}: patches[0].file: {P1} resolves outside the repo through a symlink "
        f"(to {outside}); copy the patch into patches/<release>/\n{HINT}\n"
    )


def test_every_problem_of_every_file_is_reported_in_one_run(repo: Path) -> None:
    bad_tag = (repo / M).read_text().replace('"1.20"', '"1.21"').replace("v1.20.1", "1.21.0")
    (repo / "releases/1.21.yaml").write_text(bad_tag.replace("patches/1.20/", "patches/1.21/"))
    edit(repo / P2, "Upstream-Status: merged", "Upstream-Status: merge")
    leave_unlisted(repo)
    add_patch_entry(P2)(repo)
    (repo / P1).unlink()

    result = run(repo, "validate", "--json")

    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert [(r["release"], r["patches"]) for r in data["releases"]] == [("1.20", 3), ("1.21", 0)]
    messages = [(p["kind"], p["message"]) for r in data["releases"] for p in r["problems"]]
    assert messages == [
        ("manifest", f"{M}: patches[0].file: no such file {P1}"),
        ("patch", f"{P2}: trailer Upstream-Status: 'merge' is not allowed; did you mean "
         "'merged'? (expected one of merged, submitted, not-submitted, rejected, superseded)"),
        ("manifest", f"{M}: patches[2].file: {P2} is listed twice (first as patches[1].file); "
         "list each patch once"),
        ("manifest", f"patches/1.20/0003-forgotten.patch: not listed in {M} patches; "
         "add it to the series or delete it"),
        ("manifest", "releases/1.21.yaml:5: upstream.tag: expected a tag like v1.20.2, "
         "got '1.21.0'"),
        ("manifest", "releases/1.21.yaml:7: distro_version: expected a version like "
         "v1.20.2-tke.1, got '1.21.0-tke.1'"),
    ]
    assert result.stderr == "error: " + "\n".join([m for _, m in messages] + [HINT]) + "\n"


def test_validate_unknown_release_lists_the_known_ones(repo: Path) -> None:
    result = run(repo, "validate", "1.99")

    assert result.exit_code == 3
    assert result.stderr == (
        f"error: releases/1.99.yaml: no such manifest (releases: 1.20)\n{HINT}\n"
    )


def test_validate_flags_a_manifest_named_yml(repo: Path) -> None:
    shutil.copy(repo / M, repo / "releases/1.21.yml")

    result = run(repo, "validate")

    assert result.exit_code == 3
    assert result.stdout == f"{M}: ok (2 patches)\nreleases/1.21.yml: 1 problem (0 patches)\n"
    assert result.stderr == (
        "error: releases/1.21.yml: manifests end in .yaml; rename it to releases/1.21.yaml\n"
        f"{HINT}\n"
    )


def test_validate_passes_on_a_good_repo(repo: Path) -> None:
    result = run(repo, "validate")

    assert (result.exit_code, result.stdout, result.stderr) == (
        0, f"{M}: ok (2 patches)\n", ""
    )


def test_validate_accepts_a_plain_diff_with_trailers(repo: Path) -> None:
    mail = (repo / P1).read_text()
    diff = mail[mail.index("diff --git"):mail.index("\n-- \n")]
    (repo / P1).write_text(f"{TRAILERS}\n\n{diff}\n")

    result = run(repo, "validate", "1.20", "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True, "releases": [{
        "release": "1.20", "manifest": M, "ok": True, "patches": 2, "problems": []}]}
    shown = json.loads(run(repo, "show", "1.20", "--json").stdout)["patches"][0]
    assert (shown["subject"], shown["kind"]) == ("kubelet disable kmem accounting", "carry")


def test_validate_passes_on_the_real_repo() -> None:
    result = CliRunner().invoke(app, ["--root", str(REPO), "validate"])

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{M}: ok (")


def test_list_json(repo: Path) -> None:
    commit = json.loads(run(repo, "show", "1.20", "--json").stdout)["upstream"]["commit"]

    result = run(repo, "list", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"releases": [{
        "release": "1.20", "tag": "v1.20.1", "commit": commit,
        "distro_version": "v1.20.1-tke.1", "patches": 2}]}


def test_list_text_of_the_real_repo() -> None:
    result = CliRunner().invoke(app, ["--root", str(REPO), "list"])

    assert result.exit_code == 0
    assert result.stdout == (
        "RELEASE  TAG      COMMIT        DISTRO VERSION  PATCHES\n"
        f"1.20     v1.20.2  faecb196815e  v1.20.2-tke.1   {count_real_patches()}\n"
    )


def count_real_patches() -> int:
    return (REPO / M).read_text().count("- file:")


def test_show_json_of_the_real_repo() -> None:
    result = CliRunner().invoke(app, ["--root", str(REPO), "show", "1.20", "--json"])

    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["release"] == "1.20"
    assert data["manifest"] == M
    assert data["schema"] == 1
    assert data["upstream"] == {
        "url": "https://github.com/kubernetes/kubernetes.git",
        "tag": "v1.20.2",
        "commit": "faecb196815e248d3ecfb03c680a4507229c2a56",
    }
    assert data["distro_version"] == "v1.20.2-tke.1"
    assert data["components"] == [
        "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
        "kubelet", "kubectl", "kubeadm",
    ]
    assert data["platforms"] == ["linux/amd64", "linux/arm64"]
    assert data["images"] == ["kube-apiserver", "kube-controller-manager", "kube-scheduler",
                              "kube-proxy", "pause"]
    assert len(data["patches"]) == count_real_patches()


def test_show_patch_series(repo: Path) -> None:
    result = run(repo, "show", "1.20", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout)["patches"] == [
        {"file": P1, "subject": "kubelet: disable kmem accounting", "kind": "carry",
         "upstream_ref": "none", "upstream_status": "not-submitted", "unconfirmed": {},
         "problem": None},
        {"file": P2, "subject": "kubectl: backport fix", "kind": "backport",
         "upstream_ref": "https://github.com/kubernetes/kubernetes/pull/97654",
         "upstream_status": "merged", "unconfirmed": {}, "problem": None},
    ]
    text = run(repo, "show", "1.20").stdout
    assert f"     1. {P1}  [carry, not-submitted]  kubelet: disable kmem accounting\n" in text
    assert f"     2. {P2}  [backport, merged]  kubectl: backport fix\n" in text


def test_show_unknown_release(repo: Path) -> None:
    result = run(repo, "show", "1.2")

    assert result.exit_code == 3
    assert result.stderr == "error: releases/1.2.yaml: no such manifest (releases: 1.20)\n"


def test_list_refuses_a_broken_manifest(repo: Path) -> None:
    edit(repo / M, "schema: 1", "schema: 2")

    result = run(repo, "list")

    assert result.exit_code == 3
    assert result.stderr == (
        f"error: {M}:1: schema: unsupported schema version 2; this tkedistro reads 1\n"
        "hint: run `tkedistro validate` to see every problem\n"
    )


def test_root_without_releases_folder(tmp_path: Path) -> None:
    result = run(tmp_path, "validate")

    assert result.exit_code == 3
    assert result.stderr == (
        f"error: {tmp_path.resolve()}: no releases/ folder here\n"
        "hint: --root must name a distro repo (a folder that holds releases/)\n"
    )


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])

    assert (result.exit_code, result.stdout) == (0, f"tkedistro {__version__}\n")
