#!/usr/bin/env bash
# Run the unit tier against the LOWEST versions pyproject.toml allows, so its floors stay true.
#
# Every ">=X" of [project].dependencies and of the "test" extra is pinned to "==X" in a venv
# under /var/tmp, keyed by the floors and the Python version (made once, reused until a floor
# changes). Dependencies of dependencies resolve as pip picks them. Called by `make lint`.
set -euo pipefail

PYTHON=${PYTHON:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

pins=$("$PYTHON" - <<'PY'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wanted = project["dependencies"] + project["optional-dependencies"]["test"]
skip = {"ruff", "mypy"}  # lint tools: `make lint` runs the installed ones
for spec in wanted:
    m = re.fullmatch(r"([A-Za-z0-9_.\-]+)>=([0-9][0-9A-Za-z.]*)", spec.strip())
    if not m:
        raise SystemExit(f"check-floors: {spec!r} has no plain '>=' floor")
    if m.group(1).lower() not in skip:
        print(f"{m.group(1)}=={m.group(2)}")
PY
)
key=$( { "$PYTHON" -c 'import sys; print(sys.version_info[:2])'; echo "$pins"; } | sha256sum | cut -c1-12)
venv=/var/tmp/tkedistro-floors-$key

if [ ! -f "$venv/.complete" ]; then
    echo "check-floors: making $venv with" $pins
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    # shellcheck disable=SC2086
    if ! "$venv/bin/pip" install --quiet --disable-pip-version-check $pins; then
        rm -rf "$venv"
        echo "check-floors: these floors cannot be installed together; raise one" >&2
        exit 1
    fi
    touch "$venv/.complete"
fi
echo "check-floors: unit tier with" $pins
# the package itself comes from this checkout (cwd is on sys.path with `python -m pytest`)
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -n auto tests/unit "$@"
