"""The cgroup v2 guest: a Debian bookworm kernel and root booted under qemu (software
emulation), where Docker runs on cgroup v2 with the systemd driver.

This machine's kernel runs cgroup v1; the guest is how the project proves its nodes on v2.
``build.py`` makes the guest from Debian packages and caches it by its inputs
(``recipe.py``: packages, kernel, in-guest files; ``kernel.py``, ``rootfs.py``, ``disk.py``
make the parts); ``session.py`` runs one command in a fresh copy-on-write overlay of it with
folders shared over 9p (``share.py``) and images loaded (once per set of images into a kept
disk layer: ``imagelayer.py``); ``machine.py`` writes qemu's command line and ``result.py``
reads back the command's output, exit code and timings.
"""
