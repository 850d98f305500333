#!/usr/bin/env bash
# Install the host tools for OCI images and other platforms from Debian: buildah and skopeo
# (image building, copying and inspection), qemu-user-static and binfmt-support (linux/arm64
# binaries run under qemu-aarch64 for the build's smoke check), and register qemu-aarch64
# with binfmt_misc (mounting it first when it is not). `tkedistro doctor` checks the same.
# Idempotent: with everything in place it changes nothing and needs no network. Installing
# needs root; when binfmt_misc cannot be mounted or registered here (an unprivileged
# container) it says so and goes on: builds then report arm64 binaries as not run.
set -euo pipefail
binfmt=/proc/sys/fs/binfmt_misc
missing=()
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
[ -x /usr/bin/qemu-aarch64-static ] || missing+=(qemu-user-static)
command -v update-binfmts >/dev/null 2>&1 || missing+=(binfmt-support)
registered() { [ -f "$binfmt/qemu-aarch64" ] && grep -qx enabled "$binfmt/qemu-aarch64" \
  && grep -q '^flags:.*F' "$binfmt/qemu-aarch64"; }
if [ "${#missing[@]}" -eq 0 ] && registered; then
  echo "install-host-tools: buildah, skopeo and qemu-aarch64 (binfmt_misc, F flag) are in place" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-host-tools: missing ${missing[*]:-nothing}$(registered || echo '; qemu-aarch64 not registered'); run as root: sudo $0" >&2
  exit 1
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-host-tools: installing ${missing[*]} from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ! -f "$binfmt/status" ]; then
  mount -t binfmt_misc binfmt_misc "$binfmt" \
    || echo "install-host-tools: warning: cannot mount binfmt_misc at $binfmt" >&2
fi
if [ -f "$binfmt/status" ]; then
  update-binfmts --enable qemu-aarch64 2>/dev/null \
    || echo "install-host-tools: warning: update-binfmts --enable qemu-aarch64 failed" >&2
fi
if registered; then
  echo "install-host-tools: qemu-aarch64 is registered with binfmt_misc (F flag)" >&2
else
  echo "install-host-tools: warning: qemu-aarch64 is not usable through binfmt_misc here;" \
       "builds report linux/arm64 binaries as not run (tkedistro doctor shows why)" >&2
fi
