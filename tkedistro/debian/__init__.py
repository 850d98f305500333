"""Debian root filesystems made into images: debootstrap recipes, reuse by inputs label.

Shared by the builder image (``build/``), the component bases (``images/``) and the
cluster's and conformance's support images.
"""
