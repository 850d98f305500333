#!/usr/bin/env bash
# Make sure a Docker engine answers: install Debian's docker.io when missing and start
# dockerd in the background when none is running (machines without systemd).
set -euo pipefail
if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: installing docker.io from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "ensure-docker: starting dockerd (log: /tmp/dockerd.log)" >&2
  nohup dockerd >/tmp/dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
echo "ensure-docker: the Docker engine did not answer within 60 s; see /tmp/dockerd.log" >&2
exit 1
