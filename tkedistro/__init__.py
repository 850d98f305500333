"""tkedistro: build a Kubernetes distribution from a pinned upstream and a patch series."""

__version__ = "0.1.0"
