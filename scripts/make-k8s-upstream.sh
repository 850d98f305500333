#!/usr/bin/env bash
# Make a local stand-in for github.com/kubernetes/kubernetes at tag v1.20.2, offline:
# Debian's source package `kubernetes` ships upstream's own v1.20.2 archive. The repository
# gets one commit (fixed identity and dates, so its SHA is the same on every machine) and an
# annotated tag v1.20.2. Its SHA is NOT upstream's faecb196...: tests re-pin it.
#
# usage: scripts/make-k8s-upstream.sh [DEST]
#   DEST defaults to ${TKEDISTRO_CACHE:-~/.cache/tkedistro}/fixtures/kubernetes-v1.20.2.git
# prints DEST on stdout. Also keeps the .orig.tar.gz beside it (the benchmarks use it).
set -euo pipefail
cache=${TKEDISTRO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tkedistro}
dest=${1:-$cache/fixtures/kubernetes-v1.20.2.git}
fixtures=$(dirname "$dest")
tarball=$fixtures/kubernetes_1.20.5+really1.20.2.orig.tar.gz
sha=b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc
mkdir -p "$fixtures"
if [ -f "$dest/tkedistro-fixture-done" ]; then
  echo "$dest"; exit 0
fi
if ! echo "$sha  $tarball" | sha256sum -c --status 2>/dev/null; then
  src_list=/etc/apt/sources.list.d/tkedistro-deb-src.sources
  if ! apt-get source --download-only --print-uris kubernetes >/dev/null 2>&1; then
    printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$src_list"
    apt-get update -qq
  fi
  dl=$(mktemp -d)
  (cd "$dl" && apt-get source --download-only kubernetes >/dev/null 2>&1)
  mv "$dl"/kubernetes_1.20.5+really1.20.2.orig.tar.gz "$tarball"
  rm -rf "$dl"
  echo "$sha  $tarball" | sha256sum -c --quiet
fi
work=$(mktemp -d /var/tmp/tkedistro-k8s.XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$tarball"
tree=$work/kubernetes-1.20.2
export GIT_AUTHOR_NAME="Kubernetes Release" GIT_AUTHOR_EMAIL="release@k8s.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_AUTHOR_DATE="2021-01-13T13:20:00+0000" GIT_COMMITTER_DATE="2021-01-13T13:20:00+0000"
git -C "$tree" init -q -b master
git -C "$tree" -c core.autocrlf=false add -A -f
git -C "$tree" -c commit.gpgsign=false commit -q -m "Kubernetes v1.20.2 (from Debian's copy of the upstream source archive)"
git -C "$tree" -c tag.gpgsign=false tag -a v1.20.2 -m "Kubernetes v1.20.2"
rm -rf "$dest"
git clone -q --bare "$tree" "$dest"
touch "$dest/tkedistro-fixture-done"
echo "$dest"
