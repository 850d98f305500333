"""``tkedistro conformance``: ``run`` is the default command, ``images`` makes the image set;
their options are checked before anything is built or started."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.helpers.series import Distro, make_distro
from tkedistro.cli.app import app
from tkedistro.model.refs import registry_problem


@pytest.fixture
def distro(tmp_path: Path) -> Distro:
    return make_distro(tmp_path)


def cli(d: Distro, *args: str) -> Result:
    return CliRunner().invoke(app, ["--root", str(d.root), *args], env={"COLUMNS": "1000"})


def flat(result: Result) -> str:
    return " ".join(re.sub(r"[╭╮╰╯│─]", " ", result.output).split())


def test_help_lists_run_and_images(distro: Distro) -> None:
    result = cli(distro, "conformance", "--help")
    assert result.exit_code == 0
    assert re.search(r"\brun\b", result.output) and re.search(r"\bimages\b", result.output)


@pytest.mark.parametrize("command", ["run", "images"])
def test_each_subcommand_has_help(distro: Distro, command: str) -> None:
    result = cli(distro, "conformance", command, "--help")
    assert result.exit_code == 0, result.output
    assert "--json" in result.output


def test_release_without_a_subcommand_means_run(distro: Distro) -> None:
    """Old command lines keep working: ``conformance 1.20 --repo-list F`` reaches ``run``'s
    own option check (exit 2), not 'no such command'."""
    listing = distro.root / "repo-list.yaml"
    listing.write_text("e2eRegistry: 127.0.0.1:5000/x\n")
    result = cli(distro, "conformance", "1.20", "--repo-list", str(listing))
    assert result.exit_code == 2
    assert "--repo-list is for --kubeconfig runs; the local cluster makes its own" in flat(result)
    assert cli(distro, "conformance", "run", "1.20", "--repo-list",
               str(listing)).exit_code == 2


def test_repo_list_must_exist(distro: Distro) -> None:
    (distro.root / "k").write_text("apiVersion: v1\n")
    result = cli(distro, "conformance", "1.20", "--kubeconfig", str(distro.root / "k"),
                 "--repo-list", "nope.yaml")
    assert result.exit_code == 2
    assert "nope.yaml" in flat(result)


@pytest.mark.parametrize("registry", ["http://127.0.0.1:5000", "-x", "reg:5000/Upper",
                                      "reg:5000/a:tag", "a b"])
def test_images_push_refuses_what_is_not_a_registry(distro: Distro, registry: str) -> None:
    result = cli(distro, "conformance", "images", "1.20", "--push", registry)
    assert result.exit_code == 2
    assert "expected a registry like 127.0.0.1:5000 or registry.example.com/k8s-conformance" \
        in flat(result)


@pytest.mark.parametrize("registry", ["127.0.0.1:5000", "registry.example.com/k8s-conformance",
                                      "localhost:5000/a/b"])
def test_registry_names_accepted(registry: str) -> None:
    assert registry_problem(registry) is None


def test_images_serve_excludes_push(distro: Distro) -> None:
    result = cli(distro, "conformance", "images", "1.20", "--push", "127.0.0.1:5000", "--serve")
    assert result.exit_code == 2
    assert "--serve keeps the local registry up; it excludes --push" in flat(result)


def test_one_way_to_choose_the_specs(distro: Distro) -> None:
    for args in (["--quick", "--smoke"], ["--focus", "x", "--quick"], ["--focus", "x", "--smoke"]):
        result = cli(distro, "conformance", "1.20", *args)
        assert result.exit_code == 2, args
        assert "--focus, --quick and --smoke each choose the specs; give one" in flat(result)


def test_help_names_the_smoke_subset_and_where_results_go(distro: Distro) -> None:
    text = flat(cli(distro, "conformance", "run", "--help"))
    # typer >= 0.17 prints a "<bool>" metavar after the flag, 0.16 does not
    assert re.search(r"--smoke (<bool> )?--quick's specs plus one cluster DNS spec and one "
                     r"\[Serial\] spec", text), text
    assert "Results go to _results/RELEASE/conformance/" in text
