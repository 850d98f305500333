"""The patch-series model: real `git format-patch` and `git diff` output parsed into PatchFile."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers.gitrepo import FIXED_DATE, K8S_LIKE_FILES, git
from tkedistro.core.errors import PatchFormatError
from tkedistro.model.patches import check_trailers, parse_patch, subject_from_filename

TRAILERS = "Patch-Kind: carry\nUpstream-Ref: none\nUpstream-Status: not-submitted"
DATES = {"GIT_AUTHOR_DATE": FIXED_DATE, "GIT_COMMITTER_DATE": FIXED_DATE}


def make_work_repo(root: Path) -> Path:
    """A k8s-shaped git repo to commit patches in (one commit with K8S_LIKE_FILES)."""
    work = root / "patch-work"
    work.mkdir(parents=True)
    git(work, "init", "-q", "-b", "master")
    write_files(work, dict(K8S_LIKE_FILES))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "base", env=DATES)
    return work


def write_files(work: Path, files: Mapping[str, str | bytes | None]) -> None:
    for rel, content in files.items():
        path = work / rel
        if content is None:
            path.unlink()
        elif isinstance(content, bytes):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)


def format_patch(work: Path, out_dir: Path, files: Mapping[str, str | bytes | None],
                 message: str, *, number: int = 1, extra: tuple[str, ...] = ()) -> Path:
    """Commit ``files`` in ``work`` and write the commit with real `git format-patch`."""
    write_files(work, files)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message, env=DATES)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = git(work, "format-patch", "-1", "--binary", f"--start-number={number}",
               "-o", str(out_dir), *extra)
    return Path(name)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return make_work_repo(tmp_path)


KMEM_OFF = {"pkg/kubelet/cm/limits.go": K8S_LIKE_FILES["pkg/kubelet/cm/limits.go"].replace(
    "kmem = true", "kmem = false")}


def test_format_patch_mail_gives_subject_author_body_trailers(work: Path, tmp_path: Path) -> None:
    body = f"CentOS 7 kernels leak kmem.\n\n{TRAILERS}"
    message = f"kubelet: disable kernel memory accounting\n\n{body}"
    path = format_patch(work, tmp_path / "out", KMEM_OFF, message)

    patch = parse_patch(path, "patches/1.20/0001-kmem.patch")

    assert patch.format == "mbox"
    assert patch.subject == "kubelet: disable kernel memory accounting"
    assert (patch.author_name, patch.author_email) == ("Test Author", "author@example.invalid")
    assert patch.date == "Wed, 13 Jan 2021 12:00:00 +0000"
    assert patch.body == body
    assert patch.trailers == {
        "Patch-Kind": "carry", "Upstream-Ref": "none", "Upstream-Status": "not-submitted"
    }
    assert patch.files == ("pkg/kubelet/cm/limits.go",)
    assert patch.binary_without_index == ()
    assert patch.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert check_trailers(patch, "x.patch") == []


def test_long_numbered_subject_is_unfolded_and_stripped(work: Path, tmp_path: Path) -> None:
    subject = "kubelet: a very long subject about cgroups, kernel memory and ümlauts in names"
    path = format_patch(work, tmp_path / "out", KMEM_OFF, f"{subject}\n\n{TRAILERS}",
                        number=2, extra=("--numbered",))

    patch = parse_patch(path)

    assert "[PATCH" in path.read_text()
    assert patch.subject == subject


def test_non_ascii_author_is_decoded(work: Path, tmp_path: Path) -> None:
    path = format_patch(work, tmp_path / "out", KMEM_OFF, f"x\n\n{TRAILERS}")
    text = path.read_text().replace("From: Test Author", "From: =?UTF-8?q?J=C3=B6rg?=")
    path.write_text(text)

    assert parse_patch(path).author_name == "Jörg"


def test_several_diffs_new_deleted_renamed_and_binary_files(work: Path, tmp_path: Path) -> None:
    git(work, "mv", "cmd/kubectl/main.go", "cmd/kubectl/kubectl.go")
    files = {
        "README.md": None,
        "docs/new.md": "new\n",
        "logo.png": bytes(range(256)) * 4,
        **KMEM_OFF,
    }
    path = format_patch(work, tmp_path / "out", files, f"many files\n\n{TRAILERS}",
                        extra=("-M",))

    patch = parse_patch(path)

    assert patch.files == (
        "README.md", "cmd/kubectl/kubectl.go", "docs/new.md", "logo.png",
        "pkg/kubelet/cm/limits.go",
    )
    assert patch.binary_without_index == ()  # --binary writes full 40-hex index lines


def test_quoted_non_ascii_paths_and_mode_only_changes(work: Path, tmp_path: Path) -> None:
    write_files(work, {"docs/ümlaut notes.md": "a\n", "docs/tool.sh": "echo\n"})
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "docs", env=DATES)
    (work / "docs/tool.sh").chmod(0o755)
    path = format_patch(work, tmp_path / "out", {"docs/ümlaut notes.md": None},
                        f"drop notes\n\n{TRAILERS}")

    assert '"a/docs/\\303\\274mlaut notes.md"' in path.read_text()
    assert parse_patch(path).files == ("docs/tool.sh", "docs/ümlaut notes.md")


def test_hunk_lines_that_look_like_headers_are_not_misread(work: Path, tmp_path: Path) -> None:
    write_files(work, {"notes.txt": "-- keep\n++ keep\ndiff --git a/fake b/fake\n"})
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "notes", env=DATES)
    path = format_patch(work, tmp_path / "out", {"notes.txt": "changed\n"}, f"n\n\n{TRAILERS}")

    assert parse_patch(path).files == ("notes.txt",)


def test_plain_git_diff_with_trailer_preamble(work: Path, tmp_path: Path) -> None:
    write_files(work, KMEM_OFF)
    diff = git(work, "diff")
    path = tmp_path / "0003-TKE-FIX-kmem-off.patch"
    path.write_text(f"Disable kmem.\n\n{TRAILERS}\n\n{diff}\n")

    patch = parse_patch(path)

    assert (patch.format, patch.subject, patch.author_email) == ("plain", None, None)
    assert patch.trailers["Patch-Kind"] == "carry"
    assert patch.files == ("pkg/kubelet/cm/limits.go",)
    assert subject_from_filename(path) == "TKE FIX kmem off"


def test_binary_diff_without_data_is_flagged(work: Path, tmp_path: Path) -> None:
    write_files(work, {"logo.png": bytes(range(256)), "a.bin": bytes(range(255, -1, -1))})
    git(work, "add", "-A")
    path = tmp_path / "no-data.diff"
    path.write_text(git(work, "diff", "--cached", "--full-index") + "\n")

    assert "Binary files /dev/null and b/logo.png differ" in path.read_text()
    assert parse_patch(path).binary_without_index == ("a.bin", "logo.png")


def test_binary_patch_with_abbreviated_index_is_flagged(tmp_path: Path) -> None:
    path = tmp_path / "x.patch"
    path.write_text(
        "diff --git a/logo.png b/logo.png\n"
        "new file mode 100644\n"
        "index 0000000..1d2e3f4\n"
        "GIT binary patch\n"
        "literal 4\n"
        "LcmZQzWMT#Y01f~L\n"
        "\n"
        "literal 0\n"
        "HcmV?d00001\n"
    )

    assert parse_patch(path).binary_without_index == ("logo.png",)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "p.patch: empty file; expected git format-patch mail or a diff"),
        ("just some notes\nabout a change\n",
         "p.patch: not a patch: expected git format-patch mail (From:, Subject: headers) "
         "or a diff (`diff --git` or ---/+++ lines)"),
        ("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n",
         "p.patch: diff line 4: hunk ends early (the file is truncated or was edited by hand; "
         "regenerate it with git format-patch)"),
        ("From: A <a@example.invalid>\nSubject: [PATCH] empty\n\nbody\n---\n",
         "p.patch: no diff found (an empty commit cannot be applied)"),
        ("From: A <a@example.invalid>\nDate: x\n\nbody\n",
         "p.patch: mail has no Subject: header (the commit subject)"),
        ("Subject: [PATCH] x\n\nbody\n",
         "p.patch: mail has no From: header with an address (the author)"),

        ("From 0123456789012345678901234567890123456789 Mon Sep 17 00:00:00 2001\n"
         "From: A <a@example.invalid>\n\nbody\n",
         "p.patch: mail has no Subject: header (the commit subject)"),
    ],
    ids=["empty", "prose", "truncated-hunk", "mail-without-diff", "from-without-subject",
         "mbox-without-subject", "subject-without-from"],
)
def test_unparseable_files_raise(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.patch"
    path.write_text(content)

    with pytest.raises(PatchFormatError) as info:
        parse_patch(path, "p.patch")

    assert info.value.problems == [message]
    assert info.value.exit_code == 4


def test_prose_starting_with_from_is_a_plain_diff_preamble(tmp_path: Path) -> None:
    path = tmp_path / "p.patch"
    path.write_text("From the upstream commit abc:\n\n"
                    "diff --git a/x b/x\nold mode 100644\nnew mode 100755\n")

    patch = parse_patch(path)

    assert (patch.format, patch.files) == ("plain", ("x",))


def test_two_mails_in_one_file_is_an_error(work: Path, tmp_path: Path) -> None:
    first = format_patch(work, tmp_path / "a", KMEM_OFF, f"one\n\n{TRAILERS}")
    second = format_patch(work, tmp_path / "b", {"README.md": "x\n"}, f"two\n\n{TRAILERS}")
    both = tmp_path / "both.patch"
    both.write_text(first.read_text() + second.read_text())

    with pytest.raises(PatchFormatError) as info:
        parse_patch(both, "both.patch")

    assert str(info.value) == (
        "both.patch: holds several mails; keep one commit per file "
        "(git format-patch writes one file per commit)"
    )


@pytest.mark.parametrize(
    ("trailers", "problems"),
    [
        ("Patch-Kind: carry\nUpstream-Ref: none", [
            "x.patch: trailer Upstream-Status: missing (expected one of merged, submitted, "
            "not-submitted, rejected, superseded)"]),
        ("Signed-off-by: A <a@example.invalid>", [
            "x.patch: trailer Patch-Kind: missing (expected one of backport, carry, fix)",
            "x.patch: trailer Upstream-Ref: missing (expected an upstream PR or commit URL "
            "(https://...), or none)",
            "x.patch: trailer Upstream-Status: missing (expected one of merged, submitted, "
            "not-submitted, rejected, superseded)"]),
        ("Patch-Kind: Backprot\nUpstream-Ref: #123\nUpstream-Status: merged", [
            "x.patch: trailer Patch-Kind: 'Backprot' is not allowed; did you mean 'backport'? "
            "(expected one of backport, carry, fix)",
            "x.patch: trailer Upstream-Ref: '#123' is not allowed (expected an upstream PR or "
            "commit URL (https://...), or none)"]),
        ("Patch-Kind: backport\nUpstream-Ref: none\nUpstream-Status: merged", [
            "x.patch: trailer Upstream-Ref: a backport must name the upstream PR or commit it "
            "comes from (got none)"]),
        ("patch-kind: fix\nupstream-ref: https://github.com/kubernetes/kubernetes/pull/1\n"
         "upstream-status: submitted", []),
    ],
    ids=["one-missing", "all-missing", "bad-values", "backport-without-ref", "lowercase-keys"],
)
def test_check_trailers(work: Path, tmp_path: Path, trailers: str, problems: list[str]) -> None:
    path = format_patch(work, tmp_path / "out", KMEM_OFF, f"subject\n\nbody\n\n{trailers}")

    assert check_trailers(parse_patch(path), "x.patch") == problems


def test_trailers_come_only_from_the_last_paragraph(work: Path, tmp_path: Path) -> None:
    message = f"subject\n\n{TRAILERS}\n\nThanks to the reviewers."
    path = format_patch(work, tmp_path / "out", KMEM_OFF, message)

    assert parse_patch(path).trailers == {}


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("0003-TKE-FIX-kmem-off.patch", "TKE FIX kmem off"),
        ("0001-kubelet_cgroup-driver.diff", "kubelet cgroup driver"),
        ("no-number.patch", "no number"),
        ("0001.patch", "0001"),
    ],
)
def test_subject_from_filename(name: str, subject: str) -> None:
    assert subject_from_filename(Path("patches/1.20") / name) == subject


def test_the_documented_example_is_a_valid_patch(tmp_path: Path) -> None:
    doc = (REPO / "docs" / "patches.md").read_text()
    example = next(block for block in doc.split("```\n")[1::2] if block.startswith("From "))
    path = tmp_path / "0001-kmem.patch"
    path.write_text(example)

    patch = parse_patch(path)

    assert patch.subject == "kubelet: disable kernel memory accounting"
    assert patch.files == ("pkg/kubelet/cm/limits.go",)
    assert patch.trailers["Signed-off-by"] == "Jane Doe <jane@example.com>"
    assert check_trailers(patch, "0001-kmem.patch") == []
