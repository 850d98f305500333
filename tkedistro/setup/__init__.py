"""What a host needs before it builds and tests releases, set up from the installed package:
Debian packages, qemu-user through binfmt_misc, each release's builder image and component
bases (``tkedistro host-setup``)."""
