"""The local multi-node cluster: kind-style node containers bootstrapped by the distro's kubeadm.

Modules: ``config`` (names, addresses, kubeadm configuration), ``nodeimage`` (the node image),
``pushing`` (the images it runs, into the registry its nodes read), ``bootstrap`` (kubeadm
init/join, pod network), ``lifecycle`` (up, down, status, cleanup of what a killed run left),
``dns`` and ``dnsresponder/`` (the cluster DNS add-on, built from the tree's vendored Go).
"""
