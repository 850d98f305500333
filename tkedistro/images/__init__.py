"""Component images (kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy) made
from the distro's own binaries on a minimal Debian base, for clusters that run them as pods;
``upstream/``: the upstream images (pause, etcd, the e2e test images) rebuilt offline."""
