"""Check every action pin of tkedistro/ci/pins.py against a snapshot of the action's repo.

usage: PYTHONPATH=$PWD python3 scripts/check_action_pins.py --mirrors DIR

For each pin whose repository has a git copy in DIR, as DIR/<owner>+<name>/repo or
DIR/<owner>/<name>.git (`git clone --mirror https://github.com/<owner>/<name>`): the tag its
comment names must be the pinned commit (`git rev-parse <tag>^{commit}`), and the action's
metadata at that commit must say `runs.using: node24`. Prints one line per pin and any newer
release tag of the same major; exits 1 on a mismatch, 0 when every present copy agrees
(a pin without a copy is reported as not checked).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from tkedistro.ci.pins import PINS, ActionPin

USING = re.compile(r"^\s*using:\s*['\"]?([\w.-]+)['\"]?\s*$", re.M)
RELEASE = re.compile(r"v(\d+)\.(\d+)\.(\d+)")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def newer_tags(repo: Path, pin: ActionPin) -> list[str]:
    mine = RELEASE.fullmatch(pin.tag)
    if mine is None:
        return []
    found = []
    for tag in git(repo, "for-each-ref", "--format=%(refname:short)", "refs/tags").split():
        other = RELEASE.fullmatch(tag)
        if other and other.group(1) == mine.group(1) and \
                tuple(map(int, other.groups())) > tuple(map(int, mine.groups())):
            found.append(tag)
    return found


def check(pin: ActionPin, mirrors: Path) -> str | None:
    """A problem with ``pin`` (None when it agrees with the copy); prints what it checked."""
    owner, name = pin.repo.split("/")
    copies = [mirrors / f"{owner}+{name}" / "repo", mirrors / owner / f"{name}.git"]
    repo = next((c for c in copies if c.is_dir()), None)
    if repo is None:
        print(f"not checked {pin.action} {pin.tag}: no copy in {mirrors}")
        return None
    commit = git(repo, "rev-parse", "--verify", "--quiet", f"{pin.tag}^{{commit}}")
    if commit != pin.commit:
        return f"{pin.action}: tag {pin.tag} is {commit or 'missing'}, pinned {pin.commit}"
    using = USING.findall(git(repo, "show", f"{pin.commit}:{pin.metadata}"))
    if using != [pin.runtime]:
        return f"{pin.action}@{pin.tag}: {pin.metadata} says using {using}, recorded {pin.runtime}"
    later = newer_tags(repo, pin)
    note = f" (newer in this major: {', '.join(later)})" if later else ""
    print(f"ok {pin.action} {pin.tag} = {pin.commit}, {pin.metadata}: using {using[0]}{note}")
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirrors", type=Path, required=True,
                        help="folder of git copies of the actions' repositories")
    args = parser.parse_args()
    problems = [p for p in (check(pin, args.mirrors) for pin in PINS.values()) if p]
    for problem in problems:
        print(f"MISMATCH {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
