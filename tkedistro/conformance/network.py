"""Host network pieces of the local cluster that the CNI plugins do not manage themselves.

Docker sets the FORWARD policy to DROP; with ``br_netfilter`` pod-to-pod traffic over the CNI
bridge passes FORWARD, so two ACCEPT rules (tagged with a comment) let it through. They are
removed with the bridge on teardown, as are the KUBE-* chains the kubelet and kube-proxy add.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from tkedistro.core.runner import run

COMMENT = "tkedistro-conformance"


def _rules(bridge: str) -> list[list[str]]:
    return [["FORWARD", direction, bridge, "-m", "comment", "--comment", COMMENT, "-j", "ACCEPT"]
            for direction in ("-i", "-o")]


def allow_forwarding(bridge: str) -> None:
    for rule in _rules(bridge):
        if run(["iptables", "-C", *rule], check=False).returncode != 0:
            run(["iptables", "-I", *rule[:1], "1", *rule[1:]])


def remove_forwarding(bridge: str) -> None:
    for rule in _rules(bridge):
        for _ in range(10):  # a crashed run may have left duplicates
            if run(["iptables", "-D", *rule], check=False).returncode != 0:
                break


def forwarding_left(bridge: str) -> bool:
    return any(run(["iptables", "-C", *r], check=False).returncode == 0 for r in _rules(bridge))


def delete_bridge(name: str) -> None:
    if bridge_exists(name):
        run(["ip", "link", "delete", name], check=False)


def bridge_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


TABLES = ("filter", "nat", "mangle")


def _kube_rules(table: str) -> tuple[list[list[str]], list[str]]:
    return parse_kube_rules(run(["iptables", "-t", table, "-S"], check=False).stdout)


def parse_kube_rules(listing: str) -> tuple[list[list[str]], list[str]]:
    """From ``iptables -S`` output: the ``-D`` rules that undo jumps into KUBE-* chains from
    other chains, and the KUBE-* chains themselves."""
    jumps, chains = [], []
    for line in listing.splitlines():
        parts = shlex.split(line)
        if parts[:1] == ["-N"] and parts[1].startswith("KUBE-"):
            chains.append(parts[1])
        elif parts[:1] == ["-A"] and not parts[1].startswith("KUBE-") and "KUBE-" in line:
            jumps.append(["-D", *parts[1:]])
    return jumps, chains


def remove_kube_chains() -> None:
    """The kubelet's and kube-proxy's iptables chains (KUBE-FIREWALL, KUBE-MARK-*, canaries).

    The local cluster is the only kubelet on this host, so every KUBE-* chain is ours.
    """
    for table in TABLES:
        jumps, chains = _kube_rules(table)
        for rule in jumps:
            run(["iptables", "-t", table, *rule], check=False)
        for chain in chains:
            run(["iptables", "-t", table, "-F", chain], check=False)
        for chain in chains:
            run(["iptables", "-t", table, "-X", chain], check=False)


def kube_chains_left() -> list[str]:
    return [f"{t}/{c}" for t in TABLES for c in _kube_rules(t)[1]]
