"""What the local cluster's teardown reads from the host, on canned text (no root needed):
``iptables -S`` listings, ``/proc/self/mountinfo`` and ``/proc/<pid>/stat``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tkedistro.conformance import network, teardown

FILTER = """\
-P INPUT ACCEPT
-P FORWARD DROP
-N DOCKER
-N KUBE-FIREWALL
-N KUBE-KUBELET-CANARY
-A INPUT -j KUBE-FIREWALL
-A FORWARD -i tkecni0 -m comment --comment tkedistro-conformance -j ACCEPT
-A OUTPUT -m comment --comment "kubernetes firewall for dropping marked packets" -j KUBE-FIREWALL
-A KUBE-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP
-A DOCKER -d 172.17.0.2/32 -j ACCEPT
"""


def test_kube_chains_and_the_jumps_into_them_are_found() -> None:
    jumps, chains = network.parse_kube_rules(FILTER)
    assert chains == ["KUBE-FIREWALL", "KUBE-KUBELET-CANARY"]
    assert jumps == [
        ["-D", "INPUT", "-j", "KUBE-FIREWALL"],
        ["-D", "OUTPUT", "-m", "comment", "--comment",
         "kubernetes firewall for dropping marked packets", "-j", "KUBE-FIREWALL"],
    ]


def test_a_host_without_kube_chains_yields_nothing() -> None:
    assert network.parse_kube_rules("-P INPUT ACCEPT\n-N DOCKER\n-A DOCKER -j RETURN\n") == (
        [], [])


def test_removal_unhooks_then_flushes_then_deletes_each_table(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[list[str]] = []

    def fake_run(argv: list[Any], check: bool = True, **_: Any) -> SimpleNamespace:
        ran.append([str(a) for a in argv])
        listing = FILTER if argv[1:] == ["-t", "filter", "-S"] else "-P PREROUTING ACCEPT\n"
        return SimpleNamespace(returncode=0, stdout=listing)

    monkeypatch.setattr(network, "run", fake_run)
    network.remove_kube_chains()
    changes = [argv for argv in ran if argv[3] != "-S"]
    assert changes == [
        ["iptables", "-t", "filter", "-D", "INPUT", "-j", "KUBE-FIREWALL"],
        ["iptables", "-t", "filter", "-D", "OUTPUT", "-m", "comment", "--comment",
         "kubernetes firewall for dropping marked packets", "-j", "KUBE-FIREWALL"],
        ["iptables", "-t", "filter", "-F", "KUBE-FIREWALL"],
        ["iptables", "-t", "filter", "-F", "KUBE-KUBELET-CANARY"],
        ["iptables", "-t", "filter", "-X", "KUBE-FIREWALL"],
        ["iptables", "-t", "filter", "-X", "KUBE-KUBELET-CANARY"],
    ]
    assert [argv[2] for argv in ran if argv[3] == "-S"] == ["filter", "nat", "mangle"]


MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
90 22 0:50 / /var/tmp/c/kubelet/pods/x/volumes/tmpfs rw - tmpfs tmpfs rw
91 90 0:51 / /var/tmp/c/kubelet/pods/x/volumes/tmpfs/sub rw - tmpfs tmpfs rw
92 22 0:52 / /var/tmp/c/with\\040space rw - tmpfs tmpfs rw
93 22 0:53 / /var/tmp/cluster-other rw - tmpfs tmpfs rw
94 22 0:54 / /var/tmp/c rw - tmpfs tmpfs rw
"""


def test_mounts_under_the_cluster_folder_come_deepest_first_and_unescaped() -> None:
    found = teardown.parse_mounts_under(MOUNTINFO, "/var/tmp/c")
    assert set(found) == {Path("/var/tmp/c/kubelet/pods/x/volumes/tmpfs/sub"),
                          Path("/var/tmp/c/kubelet/pods/x/volumes/tmpfs"),
                          Path("/var/tmp/c/with space"), Path("/var/tmp/c")}
    assert found[0] == Path("/var/tmp/c/kubelet/pods/x/volumes/tmpfs/sub")
    assert found[-1] == Path("/var/tmp/c")  # the folder itself goes last


def test_a_stat_line_is_read_after_the_command_name() -> None:
    line = "4242 (kube (odd) name) S 17 4242 4242 0 -1 4194560 300 0 0 0 1 2 0 0 20 0 1 0"
    assert teardown.stat_fields(line) == teardown.ProcStat(state="S", parent=17)
    assert teardown.stat_fields("7 (zombie) Z 1 7 7").state == "Z"
