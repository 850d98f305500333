#!/usr/bin/env bash
# Set up this host for the releases: a thin caller of `tkedistro host-setup` (the package
# list is tkedistro/setup/packages.py): Debian packages (debootstrap, debian-archive-keyring,
# docker-registry, buildah, skopeo, qemu-user-static or on Ubuntu 26.04 its provider,
# binfmt-support), qemu-aarch64 registered with binfmt_misc (its binfmt.d line, else
# update-binfmts), each release's builder image and component bases. Idempotent; needs root
# only when something is missing. CHECK=1 changes nothing and lists what is missing;
# DEBIAN_MIRROR=URL (or --debian-mirror URL) picks the Debian mirror.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
args=()
if [ "${CHECK:-0}" = 1 ]; then args+=(--check); fi
cd "$repo"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" -m tkedistro \
  host-setup "$@" ${args[@]+"${args[@]}"}
