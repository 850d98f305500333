"""Options, names and patch headers are checked before any work (issue 24, items 4 and 8).

Each bad value gets exit 2 (the command line) or 3 (a manifest or a name) and a message that
names the option or key, the value and what is allowed; a patch whose mail headers the
parser cannot take is exit 4 naming the file. Nothing is fetched, built or started, and no
value ends in a traceback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.series import Distro, make_distro
from tkedistro.cli.app import app
from tkedistro.model.refs import registry_problem

LONG_NAME = "1." + "1" * 300
LONG_TAG = "v1.20.1-" + "a" * 300
ARABIC = "1.\u0662\u0660"  # 1.٢٠: digits, but not ASCII ones


@pytest.fixture
def distro(tmp_path: Path) -> Distro:
    return make_distro(tmp_path, prepare=False)


def cli(d: Distro, *args: str) -> Result:
    return CliRunner().invoke(app, ["--root", str(d.root), *args], env={"COLUMNS": "1000"})


def flat(result: Result) -> str:
    """What the user read, without rich's box and line breaks."""
    return " ".join(re.sub(r"[╭╮╰╯│─]", " ", result.output).split())


def refused(result: Result, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    assert message in flat(result), flat(result)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)  # a clean message, never a traceback


def nothing_done(d: Distro) -> None:
    assert not d.src.exists()
    assert not (d.root / "_output").exists()


# --- numbers out of range ----------------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["conformance", "1.20", "--timeout", "1e300"],
     "Invalid value for '--timeout': expected a number of minutes above 0 and at most 10080 "
     "(a week), like 90, got 1e+300"),
    (["conformance", "1.20", "--timeout", "10081"],
     "Invalid value for '--timeout': expected a number of minutes above 0 and at most 10080 "
     "(a week), like 90, got 10081.0"),
    (["build", "1.20", "--cpus", "1e300"],
     "Invalid value for '--cpus': expected a number of CPUs above 0 and at most 1024, like 4 "
     "or 1.5, got 1e+300"),
    (["build", "1.20", "--memory", "99999999999999999999g"],
     "Invalid value for '--memory': expected a memory size from 6m to 65536g, got "
     "'99999999999999999999g'"),
    (["build", "1.20", "--memory", "1k"],
     "Invalid value for '--memory': expected a memory size from 6m to 65536g, got '1k'"),
    (["build", "1.20", "--memory", "\u0668g"],  # ٨g: an Arabic-Indic eight
     "Invalid value for '--memory': expected a memory size like 512m or 8g (a number, then "
     "b, k, m or g), got '\u0668g'"),
], ids=["timeout-huge", "timeout-over-a-week", "cpus", "memory-huge", "memory-tiny",
        "memory-arabic-digit"])
def test_numbers_out_of_range_are_usage_errors(distro: Distro, args: list[str],
                                               message: str) -> None:
    refused(cli(distro, *args), 2, message)
    nothing_done(distro)


@pytest.mark.parametrize(("args", "message"), [
    (["images", "1.20", "--push", "127.0.0.1:99999"],
     "Invalid value for '--push': port 99999 of '127.0.0.1' is not a TCP port (1 to 65535)"),
    (["conformance", "images", "1.20", "--push", "registry.example.com:0/k8s"],
     "Invalid value for '--push': port 0 of 'registry.example.com' is not a TCP port "
     "(1 to 65535)"),
    (["source", "1.20", "--upstream", "https://mirror.example.com:70000/k8s.git"],
     "'https://mirror.example.com:70000/k8s.git': port 70000 of 'mirror.example.com' is not a "
     "TCP port (1 to 65535)"),
    (["build", "1.20", "--builder-image", "registry.example.com:65536/builder:1"],
     "Invalid value for '--builder-image': port 65536 of 'registry.example.com' is not a TCP "
     "port (1 to 65535)"),
], ids=["push", "conformance-push", "upstream", "builder-image"])
def test_ports_over_65535_are_usage_errors(distro: Distro, args: list[str], message: str) -> None:
    refused(cli(distro, *args), 2, message)
    nothing_done(distro)


@pytest.mark.parametrize(("args", "option", "low", "high"), [
    (["conformance", "1.20", "--nodes", "100000"], "--nodes", 1, 64),
    (["conformance", "1.20", "--cluster-nodes", "100000"], "--cluster-nodes", 2, 5),
    (["cluster", "up", "1.20", "--nodes", "100000"], "--nodes", 2, 5),
], ids=["ginkgo-nodes", "cluster-nodes", "cluster-up-nodes"])
def test_node_counts_have_an_upper_bound(distro: Distro, args: list[str], option: str,
                                         low: int, high: int) -> None:
    result = cli(distro, *args)
    # click's wording, or the one of newer typer versions (pyproject allows both)
    assert result.exit_code == 2
    assert re.search(rf"Invalid value for '{option}': (100000 is not in the range "
                     rf"{low}<=x<={high}|Input should be less than or equal to {high})",
                     flat(result)), flat(result)
    nothing_done(distro)


# --- regular expressions -----------------------------------------------------------------

@pytest.mark.parametrize(("option", "value", "message"), [
    ("--focus", "(", "'(' is not a regular expression: missing ), unterminated subpattern at "
                     "position 0"),
    ("--skip", "[", "'[' is not a regular expression: unterminated character set at "
                    "position 0"),
    ("--focus", "Pods(?=x)", "'Pods(?=x)' uses lookaround or a backreference, which ginkgo's "
                             "regular expressions (Go's RE2) do not have"),
    ("--skip", r"(a)\1", r"'(a)\\1' uses lookaround or a backreference"),
    ("--focus", "x" * 5000, "expected a regular expression of at most 4096 characters, got 5000"),
])
def test_spec_regexes_must_compile(distro: Distro, option: str, value: str, message: str) -> None:
    refused(cli(distro, "conformance", "1.20", option, value), 2,
            f"Invalid value for '{option}': {message}")
    nothing_done(distro)


# --- files -------------------------------------------------------------------------------

def test_kubeconfig_must_be_an_existing_regular_file(distro: Distro, tmp_path: Path) -> None:
    missing = tmp_path / "nope.kubeconfig"
    refused(cli(distro, "conformance", "1.20", "--kubeconfig", str(missing)), 2,
            f"Invalid value for '--kubeconfig': no such file: {missing}")
    refused(cli(distro, "conformance", "1.20", "--kubeconfig", str(tmp_path)), 2,
            f"Invalid value for '--kubeconfig': {tmp_path} is a folder; expected a regular file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refused(cli(distro, "conformance", "1.20", "--kubeconfig", str(fifo)), 2,
            f"Invalid value for '--kubeconfig': {fifo} is not a regular file (a FIFO or "
            "device?); expected a regular file")
    long = tmp_path / ("k" * 300)
    refused(cli(distro, "conformance", "1.20", "--kubeconfig", str(long)), 2,
            f"({len(str(long))} characters): File name too long")
    nothing_done(distro)


def test_repo_list_must_be_a_regular_file(distro: Distro, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")
    refused(cli(distro, "conformance", "1.20", "--kubeconfig", str(kubeconfig),
                "--repo-list", str(tmp_path)), 2,
            f"Invalid value for '--repo-list': {tmp_path} is a folder; expected a regular file")


def test_an_over_long_import_folder_is_a_usage_error(distro: Distro, tmp_path: Path) -> None:
    folder = tmp_path / ("s" * 300)
    result = cli(distro, "patches", "import", "1.20", "--from", str(folder))
    refused(result, 2, "Invalid value for '--from': cannot use '")
    assert f"({len(str(folder))} characters): File name too long" in flat(result)


def test_an_over_long_root_or_a_cache_that_is_a_file_is_refused(distro: Distro,
                                                                tmp_path: Path) -> None:
    root = tmp_path / ("r" * 300)
    result = CliRunner().invoke(app, ["--root", str(root), "list"])
    refused(result, 3, f"error: --root '{str(root)[:51]}...' ({len(str(root))} characters): "
                       "cannot use it: File name too long")
    cache = tmp_path / "cache-file"
    cache.write_text("")
    refused(CliRunner().invoke(app, ["--root", str(distro.root), "--cache-dir", str(cache),
                                     "list"]), 3, f"error: --cache-dir {cache}: not a folder")


# --- names -------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["show", ARABIC], ["source", ARABIC],
                                  ["new", ARABIC, "--from", "1.20", "--onto", "v1.20.1"]],
                         ids=["show", "source", "new"])
def test_release_names_take_ascii_digits_only(distro: Distro, args: list[str]) -> None:
    refused(cli(distro, *args), 3,
            f"error: '{ARABIC}' is not a release name; release names look like 1.20 or 1.20-tke")
    assert not (distro.root / "releases" / f"{ARABIC}.yaml").exists()


@pytest.mark.parametrize("args", [["show", LONG_NAME], ["source", LONG_NAME],
                                  ["new", LONG_NAME, "--from", "1.20", "--onto", "v1.20.1"]],
                         ids=["show", "source", "new"])
def test_over_long_release_names_are_refused(distro: Distro, args: list[str]) -> None:
    refused(cli(distro, *args), 3,
            f"error: '{LONG_NAME[:51]}...' (302 characters) is not a release name: it has 302 "
            "characters, more than the 64 a release name may have")


@pytest.mark.parametrize("args", [["rebase", "1.20", "--onto", LONG_TAG],
                                  ["forecast", "1.20", "--onto", LONG_TAG],
                                  ["rebase", "1.20", "--onto", "v1.\u0662\u0660.1"]],
                         ids=["rebase", "forecast", "arabic-digits"])
def test_tags_are_short_and_ascii(distro: Distro, args: list[str]) -> None:
    expected = ("expected an upstream tag of at most 128 characters, got 308"
                if args[-1] == LONG_TAG else
                "expected an upstream tag like v1.20.2, got 'v1.\u0662\u0660.1'")
    refused(cli(distro, *args), 2, f"Invalid value for '--onto': {expected}")
    nothing_done(distro)


def set_key(d: Distro, pattern: str, line: str) -> None:
    d.manifest.write_text(re.sub(pattern, line, d.manifest.read_text(), flags=re.M))


@pytest.mark.parametrize(("pattern", "line", "message"), [
    (r"^  tag: .*$", "  tag: v1.\u0662\u0660.0",
     "upstream.tag: expected a tag like v1.20.2, got 'v1.\u0662\u0660.0'"),
    (r"^distro_version: .*$", "distro_version: v1.20.0-tke.\u0661",  # a non-ASCII 1 at the end
     "distro_version: expected a version like v1.20.2-tke.1, got 'v1.20.0-tke.\u0661'"),
    (r"^distro_version: .*$", "distro_version: v1.20.0-" + "t" * 200,
     "distro_version: expected at most 128 characters, got 208"),
    (r"^  version: .*$", '  version: "1.\u0661\u0665"',
     "go.version: expected a Go version like \"1.15.15\", got '1.\u0661\u0665'"),
], ids=["tag", "distro-version", "distro-version-long", "go-version"])
def test_manifest_versions_take_ascii_digits_and_are_bounded(
        distro: Distro, pattern: str, line: str, message: str) -> None:
    set_key(distro, pattern, line)
    result = cli(distro, "validate")
    refused(result, 3, "releases/1.20.yaml:")
    assert message in result.stderr


def test_a_component_listed_twice_is_refused(distro: Distro) -> None:
    set_key(distro, r"^components: .*$", "components: [kubectl, kubelet, kubectl]")
    refused(cli(distro, "validate"), 3,
            "error: releases/1.20.yaml:12: components[2]: kubectl is listed twice (first as "
            "components[0]); list each once")


def test_a_manifest_subject_must_be_one_line(distro: Distro) -> None:
    text = distro.manifest.read_text()
    entry = re.search(r"(?m)^  - file: (\S+)$", text)
    assert entry is not None
    distro.manifest.write_text(text.replace(
        entry.group(0), f'{entry.group(0)}\n    subject: "fix\\nFrom: someone else"', 1))
    refused(cli(distro, "source", "1.20"), 3,
            "patches[0].subject: holds the control character '\\n'; a subject is one line of text")
    nothing_done(distro)


def test_releases_that_differ_only_in_case_are_refused(distro: Distro) -> None:
    twin = distro.root / "releases" / "1.20-TKE.yaml"
    twin.write_text(distro.manifest.read_text().replace('release: "1.20"', 'release: "1.20-TKE"'))
    (distro.root / "releases" / "1.20-tke.yaml").write_text(
        distro.manifest.read_text().replace('release: "1.20"', 'release: "1.20-tke"'))
    refused(cli(distro, "show", "1.20-tke"), 3,
            "error: releases/1.20-tke.yaml and releases/1.20-TKE.yaml differ only in case: they "
            "collide on a case-insensitive file system")


# --- push targets (item 4) ---------------------------------------------------------------

@pytest.mark.parametrize("command", [["images", "1.20"], ["conformance", "images", "1.20"]],
                         ids=["images", "conformance-images"])
@pytest.mark.parametrize("registry", ["myreg", "myreg/team"])
def test_a_push_target_must_name_a_host(distro: Distro, command: list[str],
                                        registry: str) -> None:
    refused(cli(distro, *command, "--push", registry), 2,
            f"Invalid value for '--push': '{registry}' names no registry host: Docker would read "
            f"'myreg' as a Docker Hub namespace and push to docker.io/{registry}; name the host "
            "with a dot (registry.example.com), a port (myreg:5000) or localhost, or write "
            f"docker.io/{registry} to push to Docker Hub")
    nothing_done(distro)


@pytest.mark.parametrize("registry", ["docker.io/myorg", "localhost", "localhost:5000/a",
                                      "myreg:5000", "registry.example.com", "127.0.0.1:5000/k8s"])
def test_a_push_target_that_names_a_host_is_taken(registry: str) -> None:
    assert registry_problem(registry) is None


# --- patch headers the mail parser cannot take (exit 4, naming the file) -------------------

MBOX_LINE = b"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"


@pytest.mark.parametrize(("headers", "problem"), [
    (b"From: A <a@example.com>\nSubject:  \t \n", "the Subject: header is empty (nothing but "
     "spaces or [PATCH] prefixes); write the commit subject there"),
    (b"From: A <a@example.com>\nSubject: [PATCH 1/2]\n", "the Subject: header is empty"),
    (b"From: A <a@example.com>\nSubject: fix \x00 x\n",
     "the Subject: header holds the control character '\\x00'"),
    (b"From: A <a@example.com>\nSubject: =?utf-8?q?a=00b?=\n",
     "the Subject: header holds the control character '\\x00'"),
    (b"From: A <a@example.com>\nSubject: " + b"x" * 100_000 + b"\n",
     "the Subject: header has 100000 characters, more than the 1000 allowed"),
    (b"From: A <a@example.com>\nSubject: =?x-unknown?q?abc?=\n",
     "the mail names the character set 'x-unknown', which is unknown; git format-patch "
     "writes UTF-8"),
    (b"From: A <a@example.com>\nSubject: fix\nContent-Type: text/plain; charset=\"u\x00\"\n",
     "the mail names the character set 'u\\x00', which is unknown"),
    (b"From: A <a@example.com>\nSubject: fix\nDate: Mon, 1 Jan 99999999999 00:00:00 +0000\n",
     "the Date: header cannot be read (signed integer is greater than maximum); fix it, or "
     "make the patch again with git format-patch"),
    (b"From: A <a@example.com>\nSubject: fix\nDate: \xff\xfe\n",
     "the Date: header '\ufffd\ufffd' is not a mail date like 'Thu, 1 Jan 1970 00:00:00 "
     "+0000'; fix it or remove the header"),
    (b"From: A\x00 <a@exa\x00mple.com>\nSubject: fix\n",
     "the From: header holds the control character '\\x00'"),
    (b"From: A <a@example.com>\nSubject: fix\nContent-Type: multipart/mixed; boundary=X\n",
     "a multipart mail; a patch is one text part (as git format-patch writes it, without "
     "--attach)"),
    (b"From: A <a@example.com>\nSubject: fix\n\x00\n",
     "the commit message holds a NUL byte, which git cannot keep; remove it"),
], ids=["subject-whitespace", "subject-prefix-only", "subject-nul", "encoded-word-nul",
        "subject-huge", "encoded-word-charset", "charset-nul", "date-overflow",
        "date-not-utf8", "from-nul", "multipart", "body-nul"])
def test_patch_headers_the_parser_cannot_take_are_a_patch_format_error(
        distro: Distro, headers: bytes, problem: str) -> None:
    first = sorted(distro.patch_dir.iterdir())[0]
    text = first.read_bytes()
    first.write_bytes(MBOX_LINE + headers + text[text.index(b"\n\n"):])
    shown = f"patches/1.20/{first.name}"

    for command in (["validate"], ["source", "1.20"]):
        result = cli(distro, *command)
        refused(result, 4, f"{shown}: {problem}")
    nothing_done(distro)
