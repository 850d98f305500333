"""The local multi-node cluster: kind-style node containers bootstrapped by the distro's kubeadm.

Modules: ``config`` (names, addresses, kubeadm configuration), ``nodeimage`` (the node image),
``pushing`` (the images it runs, into the registry its nodes read), ``bootstrap`` (kubeadm
init/join, pod network), ``lifecycle`` (up, down, status, cleanup of what a killed run left),
``dns`` (the cluster DNS add-on's manifests; its image is built by
``tkedistro.conformance.dnsimage``), ``proofs`` and ``proofreport`` (each patch of the series
checked on the running cluster as its ``Proof:`` trailer declares: ``tkedistro cluster
prove``), ``proofkinds/`` (the generic check kinds those trailers name).
"""
