#!/usr/bin/env bash
# The host packages the local cluster needs (and the rest of the host setup): the same thin
# caller of `tkedistro host-setup` as scripts/install-host-tools.sh, kept for its name.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/install-host-tools.sh" "$@"
