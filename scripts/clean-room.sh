#!/usr/bin/env bash
# Clean-room rehearsal: the README's two commands, `make install && make test`, on this commit
# as on a brand-new machine, without disturbing this one. Run it (as root) before you stop:
#
#     make clean-room            # or: scripts/clean-room.sh [--keep]
#
# What is fresh: a `git clone` of HEAD (uncommitted changes are not in it), a venv (pip installs
# every Python package), HOME (pip, npm and kubectl caches, git and Docker config), TMPDIR, the
# tkedistro cache and every folder the tests keep between runs (TKEDISTRO_CACHE,
# TKEDISTRO_FIXTURES, TKEDISTRO_REALK8S_DIR, TKEDISTRO_REAL_IMAGE_CACHE, TKEDISTRO_GUEST_CACHE,
# TKEDISTRO_TEST_IMAGES_DIR), the containers storage (CONTAINERS_STORAGE_CONF), and a second
# Docker engine with an empty image store, its own data, exec root and containerd, in its own
# network namespace (iptables on, as on a new machine, in that namespace only; it reaches the
# network through a veth pair and one NAT rule on this host). Every command runs in a mount
# namespace where /var/run/docker.sock is that engine's socket, so docker, the Docker SDK,
# buildah's and skopeo's `docker-daemon:` (which ignore DOCKER_HOST) and sudo see only it.
# What is shared with this machine: the kernel (cgroups, binfmt_misc and its qemu-aarch64
# entry, modules), the Debian packages already installed (make install adds only what is
# missing, so a package installed by hand here hides a gap in its lists), /etc (users, sudo,
# apt and pip configuration) and pip's local package indexes.
#
# `CI=true` is set, so a test that lacks a tool, image or privilege fails instead of skipping.
# The output goes to a log (its path is printed first); at the end the script prints each
# step's duration and exit code and the skip count, then removes everything it made (the
# engine and its containers, the namespaces, the veth pair, its iptables rules, the folder):
# --keep (or CLEAN_ROOM_KEEP=1) leaves the room and its engine running for inspection:
# `scripts/clean-room.sh --enter DIR [COMMAND...]` runs a shell (or COMMAND) in it, with its
# environment, in the clone; `scripts/clean-room.sh --remove DIR` removes a kept or
# interrupted room.
# Exit code: 0 when both commands passed, else the first failing command's.
set -euo pipefail

NS=tkedistro-clean-room          # the network namespace
HOST_IF=tkecr-host NS_IF=tkecr-room
NET=10.231.254                   # a /30 for the veth pair: .1 this host, .2 the room
MARK=tkedistro-clean-room        # the comment on this script's iptables rules
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
REPO="$(cd "$(dirname "$SELF")/.." && pwd)"

say() { echo "clean-room: $*"; }
die() { echo "clean-room: error: $*" >&2; exit 2; }

# --- inside the room: the network namespace and a private mount namespace -------------------
inside() {
  # this engine's socket where every client looks by default (private to this namespace)
  mount --bind "$ROOM/docker.sock" /run/docker.sock
  cd "$ROOM/src"
  if [ $# -gt 0 ]; then exec "$@"; fi
  for step in "make install" "make test"; do
    local begin rc=0
    begin=$(date +%s)
    echo "== $step ($(date -u +%H:%M:%S) UTC)"
    $step || rc=$?
    echo "$step|$(( $(date +%s) - begin ))|$rc" >> "$ROOM/steps"
    if [ "$rc" != 0 ]; then return "$rc"; fi
  done
}

# --- outside: make the room, run, report, remove -----------------------------------------------
preflight() {
  [ "$(id -u)" = 0 ] || die "run as root: the room has its own Docker engine and namespaces"
  local tool
  for tool in git ip iptables nsenter unshare mount dockerd containerd docker awk; do
    command -v "$tool" >/dev/null 2>&1 || die "needs $tool on PATH"
  done
  [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] \
    || die "net.ipv4.ip_forward is 0: the room reaches the network through this host"
  if [ -e "/run/netns/$NS" ] || ip link show "$HOST_IF" >/dev/null 2>&1; then
    die "another clean room is running or was left behind (network namespace $NS): wait for" \
        "it, or remove it with: scripts/clean-room.sh --remove /var/tmp/tkecr.*"
  fi
  if ip route show | grep -q "^$NET\."; then
    die "this host already routes $NET.0/30, which the room's veth pair needs"
  fi
}

make_network() {
  ip netns add "$NS"
  ip link add "$HOST_IF" type veth peer name "$NS_IF" netns "$NS"
  ip addr add "$NET.1/30" dev "$HOST_IF"
  ip link set "$HOST_IF" up
  ip -n "$NS" link set lo up
  ip -n "$NS" addr add "$NET.2/30" dev "$NS_IF"
  ip -n "$NS" link set "$NS_IF" up
  ip -n "$NS" route add default via "$NET.1"
  iptables -w -t nat -I POSTROUTING -s "$NET.2/32" -m comment --comment "$MARK" -j MASQUERADE
  iptables -w -I FORWARD -i "$HOST_IF" -m comment --comment "$MARK" -j ACCEPT
  iptables -w -I FORWARD -o "$HOST_IF" -m comment --comment "$MARK" -j ACCEPT
}

start_engine() {
  echo '{}' > "$ROOM/daemon.json"
  setsid nsenter --net="/run/netns/$NS" dockerd --config-file "$ROOM/daemon.json" \
    --data-root "$ROOM/docker" --exec-root "$ROOM/x" --pidfile "$ROOM/docker.pid" \
    -H "unix://$ROOM/docker.sock" > "$ROOM/dockerd.log" 2>&1 < /dev/null &
  local _
  for _ in $(seq 1 60); do
    if docker -H "unix://$ROOM/docker.sock" info >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  tail -n 20 "$ROOM/dockerd.log" >&2 || true
  die "the room's Docker engine did not answer within 60 s (log: $ROOM/dockerd.log)"
}

room_environment() {
  # what a brand-new shell has, plus the machine's own package-index, proxy and CA settings
  ENVS=("PATH=$ROOM/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        "HOME=$ROOM/home" "USER=root" "LOGNAME=root" "LANG=${LANG:-C.UTF-8}"
        "TMPDIR=$ROOM/tmp" "CI=true" "TKEDISTRO_REQUIRE_DOCKER=1"
        "TKEDISTRO_CACHE=$ROOM/cache" "TKEDISTRO_FIXTURES=$ROOM/fixtures"
        "TKEDISTRO_REALK8S_DIR=$ROOM/realk8s" "TKEDISTRO_GUEST_CACHE=$ROOM/guest"
        "TKEDISTRO_TEST_IMAGES_DIR=$ROOM/test-images" "TKEDISTRO_REAL_IMAGE_CACHE=$ROOM/real-cache"
        "CONTAINERS_STORAGE_CONF=$ROOM/storage.conf"
        "TKEDISTRO_SKIP_REPORT=$ROOM/skips" "ROOM=$ROOM")
  local name
  for name in $(compgen -e); do
    case "$name" in
      TERM|DEBIAN_MIRROR|PIP_*|http_proxy|https_proxy|no_proxy|HTTP_PROXY|HTTPS_PROXY|NO_PROXY \
        |SSL_CERT_FILE|SSL_CERT_DIR|NODE_EXTRA_CA_CERTS|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE)
        ENVS+=("$name=${!name}") ;;
    esac
  done
}

make_room() {
  ROOM=$(mktemp -d /var/tmp/tkecr.XXXXXX)
  chmod 755 "$ROOM"  # the nightly emulation's runner user reads the checkout
  mkdir -p "$ROOM/home" "$ROOM/tmp" "$ROOM/cache" "$ROOM/containers"
  chmod 1777 "$ROOM/tmp"
  printf '[storage]\ndriver = "vfs"\ngraphroot = "%s"\nrunroot = "%s"\n' \
    "$ROOM/containers/storage" "$ROOM/containers/run" > "$ROOM/storage.conf"
  git clone --quiet --no-hardlinks "$REPO" "$ROOM/src"
  git -C "$ROOM/src" checkout --quiet --detach "$COMMIT" 2>/dev/null \
    || { git -C "$ROOM/src" fetch --quiet origin "$COMMIT" \
         && git -C "$ROOM/src" checkout --quiet --detach "$COMMIT"; }
  local python
  python=$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')
  "$python" -m venv "$ROOM/venv"
}

report() {
  local line name seconds rc
  say "commit $COMMIT, log $LOG"
  while IFS='|' read -r name seconds rc; do
    say "$(printf '%-13s %5d s (%dm%02ds)  exit %s' "$name" "$seconds" $((seconds / 60)) \
      $((seconds % 60)) "$rc")"
  done < "$ROOM/steps"
  if [ -s "$ROOM/skips" ]; then
    while IFS= read -r line; do say "$line"; done < "$ROOM/skips"
    awk '/^tkedistro: [0-9]+ skipped/ { n += $2; d += substr($4, 2) }
         END { printf "clean-room: %d skipped in all (%d deliberate, %d other)\n", n, d, n - d }' \
      "$ROOM/skips"
  fi
}

stop_engine() {
  local pid _
  pid=$(cat "$ROOM/docker.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  fi
  # what is still in the room's network namespace was started in the room
  if [ -e "/run/netns/$NS" ]; then
    for pid in $(ip netns pids "$NS"); do kill -KILL "$pid" 2>/dev/null || true; done
  fi
}

remove_room() {
  ROOM=${1%/}
  case "$ROOM" in /var/tmp/tkecr.??????) ;; *) die "not a clean room folder: $ROOM" ;; esac
  stop_engine
  local point
  awk -v room="$ROOM/" 'index($2, room) == 1 { print $2 }' /proc/self/mounts | sort -r \
    | while IFS= read -r point; do umount -l "$point" || true; done
  if [ -e "/run/netns/$NS" ]; then ip netns del "$NS"; fi
  if ip link show "$HOST_IF" >/dev/null 2>&1; then ip link del "$HOST_IF"; fi
  while iptables -w -t nat -D POSTROUTING -s "$NET.2/32" -m comment --comment "$MARK" \
        -j MASQUERADE 2>/dev/null; do :; done
  while iptables -w -D FORWARD -i "$HOST_IF" -m comment --comment "$MARK" -j ACCEPT \
        2>/dev/null; do :; done
  while iptables -w -D FORWARD -o "$HOST_IF" -m comment --comment "$MARK" -j ACCEPT \
        2>/dev/null; do :; done
  if [ -f "$ROOM/socket-placeholder" ] && [ -f /run/docker.sock ] && [ ! -s /run/docker.sock ]; then
    rm -f /run/docker.sock
  fi
  rm -rf --one-file-system "$ROOM"
  say "removed $ROOM, its engine, namespaces, veth pair and iptables rules"
}

finish() {
  local rc=$?
  trap - EXIT INT TERM
  set +e  # remove all that can be removed
  if [ -n "${ROOM:-}" ] && [ -d "$ROOM" ]; then
    if [ -f "$ROOM/steps" ]; then report | tee -a "$LOG"; fi
    if [ "$KEEP" = 1 ]; then
      say "kept $ROOM and its engine: enter it with scripts/clean-room.sh --enter $ROOM," \
          "remove it with scripts/clean-room.sh --remove $ROOM"
    else
      remove_room "$ROOM" | tee -a "$LOG"
    fi
  fi
  say "log: $LOG"
  exit "$rc"
}

main() {
  KEEP=${CLEAN_ROOM_KEEP:-0}
  case "${1:-}" in
    --inside) shift; inside "$@"; return ;;
    --enter) [ $# -ge 2 ] || die "usage: scripts/clean-room.sh --enter DIR [COMMAND...]"
             preflight_root; shift; enter_room "$@"; return ;;
    --remove) [ $# = 2 ] || die "usage: scripts/clean-room.sh --remove DIR"
              preflight_root; remove_room "$2"; return ;;
    --keep) KEEP=1 ;;
    "") ;;
    *) die "usage: scripts/clean-room.sh [--keep] | --enter DIR [COMMAND...] | --remove DIR" ;;
  esac
  preflight
  COMMIT=$(git -C "$REPO" rev-parse HEAD)
  if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]; then
    say "note: uncommitted changes are not in the room (it tests commit $COMMIT)"
  fi
  LOG=${CLEAN_ROOM_LOG:-/var/tmp/tkedistro-clean-room-$(date -u +%Y%m%dT%H%M%SZ).log}
  : > "$LOG"
  trap finish EXIT
  trap 'exit 130' INT TERM
  say "log: $LOG (tail -f it); commit $COMMIT"
  make_room
  say "room: $ROOM"
  make_network
  start_engine
  if [ ! -e /run/docker.sock ]; then  # no engine on this host: a file to mount the room's over
    : > /run/docker.sock
    : > "$ROOM/socket-placeholder"
  fi
  say "engine: $(docker -H "unix://$ROOM/docker.sock" version --format '{{.Server.Version}}')," \
      "$(docker -H "unix://$ROOM/docker.sock" images -q | wc -l) images"
  room_environment
  say "running make install && make test in the room ($(date -u +%H:%M:%S) UTC)"
  local rc=0
  nsenter --net="/run/netns/$NS" unshare --mount --propagation slave -- \
    env -i "${ENVS[@]}" bash "$SELF" --inside >> "$LOG" 2>&1 || rc=$?
  return "$rc"
}

enter_room() {
  ROOM=${1%/}
  shift
  case "$ROOM" in /var/tmp/tkecr.??????) ;; *) die "not a clean room folder: $ROOM" ;; esac
  docker -H "unix://$ROOM/docker.sock" info >/dev/null 2>&1 \
    || die "the room's engine does not answer (only a room kept with --keep can be entered)"
  room_environment
  exec nsenter --net="/run/netns/$NS" unshare --mount --propagation slave -- \
    env -i "${ENVS[@]}" bash "$SELF" --inside "${@:-bash}"
}

preflight_root() { [ "$(id -u)" = 0 ] || die "run as root"; }

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
