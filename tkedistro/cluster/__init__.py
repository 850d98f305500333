"""The local multi-node cluster: kind-style node containers bootstrapped by the distro's kubeadm.

Modules: ``config`` (names, addresses, kubeadm configuration), ``nodeimage`` (the node image),
``bootstrap`` (kubeadm init/join, pod network), ``lifecycle`` (up, down, status, cleanup of
what a killed run left).
"""
