#!/usr/bin/env bash
# Install the Debian packages the local cluster needs on the host: debootstrap (its node image
# and the conformance images' Debian base) and docker-registry (the local registry its nodes
# pull from; containerd, CNI plugins and iptables are in the node image). The list is
# tkedistro's own host check
# (tkedistro/conformance/hostcheck.py), so this script and `tkedistro conformance --local`
# never disagree. Installs only what is missing: nothing to do means no network needed.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
missing="$(PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" "$python" -c \
  'from tkedistro.conformance.hostcheck import missing_packages; print(" ".join(missing_packages()))')"
if [ -z "$missing" ]; then
  echo "install-conformance-host: host packages for the local cluster are installed" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-conformance-host: missing $missing; run as root: sudo $0" >&2
  exit 1
fi
echo "install-conformance-host: installing $missing from Debian" >&2
apt-get update -qq
# shellcheck disable=SC2086  # a list of package names
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
still="$(PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" "$python" -c \
  'from tkedistro.conformance.hostcheck import missing_packages; print(" ".join(missing_packages()))')"
if [ -n "$still" ]; then
  echo "install-conformance-host: still missing after apt-get install: $still" >&2
  exit 1
fi
