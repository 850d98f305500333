"""The cluster's DNS: ``responder/`` (the ``tkedistro-dns`` Go sources), ``image`` (the
responder built from the release's tree into an image) and ``manifests`` (the add-on the
cluster deploys: RBAC, Deployment, the ``kube-dns`` Service)."""
