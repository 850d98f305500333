"""The local multi-node cluster: kind-style node containers bootstrapped by the distro's kubeadm.

The cluster owns the images it runs: ``nodeimage`` (the node image), ``supportimages`` (pause
and etcd from ``images/upstream/``, and the DNS responder), ``dns/`` (the responder's Go
sources, its image built from the tree, the add-on's manifests) and ``pushing`` (all of them
into the registry its nodes read). Around them: ``config`` (names, addresses, kubeadm
configuration), ``host`` (root, the built binaries), ``bootstrap`` (kubeadm init/join, pod
network), ``lifecycle`` (up, down, status, cleanup of what a killed run left), ``clustercmd``
(what the CLI prints), ``proofs`` and ``proofreport`` (each patch of the series checked on the
running cluster as its ``Proof:`` trailer declares: ``tkedistro cluster prove``),
``proofkinds/`` (the generic check kinds those trailers name).
"""
