"""The actions the workflows use, each pinned to the full commit of a release tag.

Each row was checked against a snapshot of the action's repository (``scripts/
check_action_pins.py`` does it again where one is fetched): ``git rev-parse <tag>^{commit}``
is the commit, and the action's metadata (``action.yml`` at that commit) says
``runs.using: node24``; GitHub no longer runs Node 20 actions as Node 20. A workflow line is
``uses: <action>@<commit>  # <tag>``.
"""

from __future__ import annotations

from dataclasses import dataclass

VERIFIED_ON = "2026-12-07"  # snapshots of github.com/actions/* read on this day


@dataclass(frozen=True)
class ActionPin:
    action: str  # owner/repo, or owner/repo/path of an action inside it
    tag: str  # the release tag the commit is
    commit: str  # 40 hex: what `git rev-parse <tag>^{commit}` gave
    runtime: str  # `runs.using` of the action's metadata at that commit

    @property
    def repo(self) -> str:
        return "/".join(self.action.split("/")[:2])

    @property
    def metadata(self) -> str:
        """The action's metadata file inside its repository."""
        sub = self.action.split("/")[2:]
        return "/".join([*sub, "action.yml"])

    @property
    def uses(self) -> str:
        return f"{self.action}@{self.commit}  # {self.tag}"


PINS: dict[str, ActionPin] = {
    "checkout": ActionPin("actions/checkout", "v7.0.1",
                          "3d3c42e5aac5ba805825da76410c181273ba90b1", "node24"),
    "setup_python": ActionPin("actions/setup-python", "v7.0.0",
                              "5fda3b95a4ea91299a34e894583c3862153e4b97", "node24"),
    "cache_restore": ActionPin("actions/cache/restore", "v5.0.5",
                               "27d5ce7f107fe9357f9df03efb73ab90386fccae", "node24"),
    "cache_save": ActionPin("actions/cache/save", "v5.0.5",
                            "27d5ce7f107fe9357f9df03efb73ab90386fccae", "node24"),
    "upload_artifact": ActionPin("actions/upload-artifact", "v7.0.0",
                                 "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "node24"),
    "download_artifact": ActionPin("actions/download-artifact", "v8.0.1",
                                   "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "node24"),
    "github_script": ActionPin("actions/github-script", "v8.0.0",
                               "ed597411d8f924073f98dfc5c65a23a2325f34cd", "node24"),
}


def uses_lines() -> dict[str, str]:
    """What the templates write after ``uses:``, by key."""
    return {key: pin.uses for key, pin in PINS.items()}
