"""The container engines behind small protocols (``protocols.py``) and their adapters.

Docker SDK (``docker*.py``), buildah, skopeo and Debian's docker-registry. The CLI makes the
engines once and passes them down; features never pick an adapter themselves.
"""
