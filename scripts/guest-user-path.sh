#!/bin/bash
# The whole user path of the local cluster on a real cgroup v2 kernel: run INSIDE the qemu
# guest (`tkedistro guest run`), as root, on a built distro shared in read-only.
#
#   cluster up --nodes 2, cluster status, cluster prove, conformance --smoke, cluster down
#
# with each step's exit code and seconds, and the guest's iptables rules, mounts, cgroup
# folders, processes, links and Docker objects compared before and after. The distro and the
# cache are shared read-only and seen through an overlay (writes stay in the guest); the
# images the cluster runs are `docker save`d from the host into the guest's kept image layer.
# Host side (the checkout and this host's Python packages shared at the same paths):
#
#   python3 -m tkedistro guest run --smp 2 --timeout 7200 \
#     --share /path/to/checkout:/path/to/checkout:ro \
#     --share "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')":/tkedistro/site:ro \
#     --share DISTRO:/tkedistro/distro:ro --share CACHE:/tkedistro/cache:ro \
#     --image tkedistro/node-base:bookworm --image ... \
#     -- env TKEDISTRO_CHECKOUT=/path/to/checkout bash /path/to/checkout/scripts/guest-user-path.sh
#
# Environment: TKEDISTRO_CHECKOUT (the tool's tree), TKEDISTRO_CLUSTER_TIMEOUT_FACTOR (the
# cluster's waits, scaled for the emulated guest only; default 6 here), RELEASE (1.20).
set -u
work=${TKEDISTRO_GUEST_WORK:-/tkedistro/work}
release=${RELEASE:-1.20}
export PYTHONPATH="${TKEDISTRO_CHECKOUT:?the tool checkout}:/tkedistro/site"
export TKEDISTRO_CLUSTER_TIMEOUT_FACTOR=${TKEDISTRO_CLUSTER_TIMEOUT_FACTOR:-6}
export HOME=/root
log=$work/user-path.log
exec > >(tee -a "$log") 2>&1

for d in distro cache; do
  mkdir -p "/root/overlay/$d/up" "/root/overlay/$d/work" "/root/$d"
  mount -t overlay overlay \
    -o "lowerdir=/tkedistro/$d,upperdir=/root/overlay/$d/up,workdir=/root/overlay/$d/work" \
    "/root/$d" || { echo "cannot overlay /tkedistro/$d"; exit 90; }
done

snapshot() {
  local out=$work/host-$1
  mkdir -p "$out"
  iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//' > "$out/iptables"
  ip6tables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//' > "$out/ip6tables"
  findmnt -rn -o TARGET,FSTYPE | sort > "$out/mounts"
  find /sys/fs/cgroup -maxdepth 3 -type d | sort > "$out/cgroups"
  # user-space processes only (kernel threads, children of kthreadd, rename themselves)
  ps -eo pid=,ppid=,comm= | awk '$1 != 2 && $2 != 2 {print $3}' | sort -u > "$out/processes"
  ip -o link show | awk -F': ' '{print $2}' | sort > "$out/links"
  { docker ps -a --format '{{.Names}}'; docker network ls --format '{{.Name}}';
    docker volume ls --format '{{.Name}}'; } | sort > "$out/docker"
}

step() {
  local name=$1 start rc
  shift
  start=$(date +%s)
  echo "=== $name: $*"
  "$@"
  rc=$?
  echo "STEP $name exit=$rc seconds=$(( $(date +%s) - start ))"
  return $rc
}

# shellcheck disable=SC2317  # called through step
tool() { python3 -m tkedistro --root /root/distro --cache-dir /root/cache "$@"; }

echo "guest: $(uname -r), $(nproc) vCPU, $(stat -fc %T /sys/fs/cgroup)," \
  "docker $(docker info --format '{{.CgroupDriver}} driver, cgroup v{{.CgroupVersion}}')"
snapshot before
step up tool cluster up "$release" --nodes 2
up=$?
if [ "$up" = 0 ]; then
  step status tool cluster status "$release"
  step kubectl "/root/distro/_output/$release/bin/linux/amd64/kubectl" --context "tkedistro-$release" get nodes -o wide
  step prove tool cluster prove "$release"
  step smoke tool conformance "$release" --local --smoke --no-build
fi
step down tool cluster down "$release"
snapshot after
for f in iptables ip6tables mounts cgroups processes links docker; do
  if diff -u "$work/host-before/$f" "$work/host-after/$f" > "$work/host-diff-$f"; then
    echo "SAME $f"
  else
    echo "DIFFERENT $f:"; cat "$work/host-diff-$f"
  fi
done
exit "$up"
