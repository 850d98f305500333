#!/usr/bin/env bash
# Set up this host for the releases: a thin caller of `tkedistro host-setup` (the package
# list is tkedistro/setup/packages.py): Debian packages (debootstrap, docker-registry,
# buildah, skopeo, qemu-user-static, binfmt-support), qemu-aarch64 registered with
# binfmt_misc, each release's builder image and component bases. Idempotent; needs root only
# when something is missing. CHECK=1 changes nothing and lists what is missing.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
args=()
if [ "${CHECK:-0}" = 1 ]; then args+=(--check); fi
cd "$repo"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" -m tkedistro \
  host-setup "$@" ${args[@]+"${args[@]}"}
