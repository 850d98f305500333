"""Debian root filesystems made into images: debootstrap recipes, reuse by inputs label.

``rootfs.py`` (recipes, import, reuse), ``debootstrap.py`` (the one debootstrap command line:
Release signature always verified, failed logs kept, the archive mirror for an end-of-life
suite) and ``source.py`` (which mirror: ``--debian-mirror``, ``debian.mirror``,
``DEBIAN_MIRROR``, the default). Shared by the builder image (``build/``), the component bases
(``images/``), the cluster's and conformance's support images and the cgroup v2 guest.
"""
