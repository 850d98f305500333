#!/usr/bin/env bash
# Make the offline builder image: Debian bullseye + Go 1.15 (golang-1.15-go), gcc and
# libc headers (the kubelet needs cgo), arm64 cross compiler, git, make, rsync.
# No registry needed: debootstrap a root filesystem and `docker import` it.
#
# usage: scripts/make-builder-image.sh [IMAGE]     (default tkedistro/builder:go1.15-bullseye)
#        FORCE=1 rebuilds an existing image.
set -euo pipefail
image=${1:-tkedistro/builder:go1.15-bullseye}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ "${FORCE:-0}" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "make-builder-image: $image already exists (FORCE=1 rebuilds)" >&2
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
rootfs=$(mktemp -d /var/tmp/tkedistro-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "make-builder-image: debootstrap bullseye into $rootfs" >&2
debootstrap --variant=minbase \
  --include=golang-1.15-go,gcc,libc6-dev,make,git,rsync,ca-certificates,bash,gcc-aarch64-linux-gnu,libc6-dev-arm64-cross \
  bullseye "$rootfs" "$mirror" >/var/tmp/tkedistro-debootstrap.log 2>&1 || {
    tail -n 30 /var/tmp/tkedistro-debootstrap.log >&2; exit 1; }
ln -sf /usr/lib/go-1.15/bin/go "$rootfs/usr/local/bin/go"
ln -sf /usr/lib/go-1.15/bin/gofmt "$rootfs/usr/local/bin/gofmt"
rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
go_version=$(chroot "$rootfs" /usr/local/bin/go version | awk '{print $3}' | sed 's/^go//')
echo "make-builder-image: importing as $image (go $go_version)" >&2
tar -C "$rootfs" -c . | docker import \
  --change "ENV PATH=/usr/local/bin:/usr/lib/go-1.15/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV HOME=/tmp" \
  --change "LABEL org.tkedistro.go-version=$go_version" \
  --change "LABEL org.tkedistro.base=debian-bullseye" \
  - "$image" >/dev/null
echo "make-builder-image: done: $image" >&2
