#!/usr/bin/env bash
# Make the offline builder image: a thin caller of `tkedistro builder-image` (the recipe, the
# Go line's Debian source and the reuse rule live in tkedistro/build/builderimage.py).
#
# usage: scripts/make-builder-image.sh [IMAGE]   (default: each release's builder.image)
#        RELEASE=1.20 picks the release (default: every release; with IMAGE the newest);
#        FORCE=1 makes it again even when its inputs match;
#        DEBIAN_MIRROR=URL debootstraps from that mirror (the manifest's debian.mirror wins
#        over it; the Release signature is always verified against debian-archive-keyring).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
args=()
if [ "${FORCE:-0}" = 1 ]; then args+=(--force); fi
release=${RELEASE:-}
if [ $# -gt 0 ] && [ -n "$1" ]; then
  if [ -z "$release" ]; then
    release=$(ls "$repo"/releases/*.yaml | sed 's|.*/||; s|\.yaml$||' \
      | sort -t. -k1,1n -k2,2n | tail -n 1)
  fi
  args+=(--image "$1")
fi
cd "$repo"
# shellcheck disable=SC2086  # an empty RELEASE means every release
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" -m tkedistro \
  builder-image $release ${args[@]+"${args[@]}"}
