#!/bin/bash
# tkedistro node entrypoint: what systemd and kind's entrypoint do for a node, in one script.
# Runs as the node container's main process (under docker's init). It never leaves the node's
# own namespaces; the only host-visible thing it makes is cgroups under the node's own cgroup.
set -eu
log() { echo "[tkedistro-node] $*"; }

# kubelet and containerd need shared mount propagation inside the node
mount --make-rshared /
# the kubelet's OOM watcher reads the kernel log
[ -c /dev/kmsg ] || { rm -f /dev/kmsg; mknod -m 640 /dev/kmsg c 1 11; }
[ -s /etc/machine-id ] || tr -d - < /proc/sys/kernel/random/uuid > /etc/machine-id

# cgroup v1, host cgroup namespace: pods nest under this node's own cgroup, never the host's
cgroup_v1() {
  own=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup)
  root="$own/kubelet"
  for dir in "$CGROUP_FS"/*/; do
    [ -d "$dir$own" ] || continue
    mkdir -p "$dir$root"
    if [ -f "$dir$root/cpuset.cpus" ]; then
      cat "$dir$own/cpuset.cpus" > "$dir$root/cpuset.cpus"
      cat "$dir$own/cpuset.mems" > "$dir$root/cpuset.mems"
    fi
  done
}

# every controller this cgroup has, delegated to its children (one at a time: a controller
# the kernel refuses is named, the others still go)
delegate() {
  local controllers controller
  read -ra controllers < "$1/cgroup.controllers" || true  # one line, or empty
  for controller in "${controllers[@]}"; do
    echo "+$controller" >> "$1/cgroup.subtree_control" ||
      log "cgroup controller $controller: not delegated in $1"
  done
}

# cgroup v2, the node's own cgroup namespace: /sys/fs/cgroup is the node's own cgroup. A
# cgroup with processes cannot delegate controllers ("no internal processes"), so the node's
# processes move to /init and the pods get /kubelet with every controller the node has
cgroup_v2() {
  if grep -q " $CGROUP_FS ro[, ]" /proc/self/mountinfo; then  # docker mounts it read-only
    mount -o remount,rw "$CGROUP_FS"
  fi
  mkdir -p "$CGROUP_FS/init"
  for _ in 1 2 3; do  # a process forked meanwhile is moved on the next pass
    while read -r pid; do
      echo "$pid" >> "$CGROUP_FS/init/cgroup.procs" 2>/dev/null || true  # gone meanwhile
    done < "$CGROUP_FS/cgroup.procs"
    grep -q . "$CGROUP_FS/cgroup.procs" || break  # kernfs files always show size 0
  done
  delegate "$CGROUP_FS"
  root=/kubelet
  mkdir -p "$CGROUP_FS$root"
  delegate "$CGROUP_FS$root"
}

CGROUP_FS=/sys/fs/cgroup
if [ "$(stat -fc %T "$CGROUP_FS")" = cgroup2fs ] || [ -f "$CGROUP_FS/cgroup.controllers" ]; then
  cgroup_v2
else
  cgroup_v1
fi
echo "$root" > /run/tkedistro-cgroup-root
log "cgroup root for pods: $root"

# Kernel-wide settings the kubelet would write (setupKernelTunables in v1.20): the node's
# /proc/sys is writable for its own namespaced settings, so these six are shown to the
# kubelet already set, as files of the node's own; the host's kernel keeps its values.
mkdir -p /run/tkedistro/sysctl
for pair in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
            kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
  key=${pair%%=*}
  shadow=/run/tkedistro/sysctl/$(echo "$key" | tr / .)
  echo "${pair#*=}" > "$shadow"
  mount --bind "$shadow" "/proc/sys/$key"
done

# the pods' upstream resolvers (dnsPolicy Default, and the cluster DNS's forwarding): the node's
# own, less docker's embedded one on 127.0.0.11, which no pod's network namespace can reach
mkdir -p /etc/tkedistro
grep -v '^nameserver 127\.' /etc/resolv.conf > /etc/tkedistro/resolv.conf || true

sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.bridge.bridge-nf-call-iptables=1 || log "net.bridge.bridge-nf-call-iptables: not settable (load br_netfilter on the host)"
sysctl -qw net.bridge.bridge-nf-call-ip6tables=1 || true

containerd --config /etc/containerd/config.toml > /var/log/containerd.log 2>&1 &
if [ -f /etc/tkedistro/registry.yml ]; then
  docker-registry serve /etc/tkedistro/registry.yml > /var/log/registry.log 2>&1 &
fi

# kubeadm writes the kubelet's config and flags, then expects an init system to (re)start it
while true; do
  if [ -f /var/lib/kubelet/config.yaml ]; then
    KUBELET_KUBEADM_ARGS=""
    [ -f /var/lib/kubelet/kubeadm-flags.env ] && . /var/lib/kubelet/kubeadm-flags.env
    # shellcheck disable=SC2086
    kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
      --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml \
      $KUBELET_KUBEADM_ARGS --cgroup-root="$root" >> /var/log/kubelet.log 2>&1 || true
    log "kubelet exited; restarting it"
  fi
  sleep 1
done
