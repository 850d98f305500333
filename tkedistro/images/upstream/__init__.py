"""Upstream images rebuilt offline under their upstream refs: pause and etcd for the cluster,
the e2e test images and docker-library stand-ins for the conformance suite.

``recipes`` says how each one is made (from the tree's ``test/images`` or from Debian
packages), ``debianbase`` names the Debian base they start from, ``imagebuild`` holds the
pieces of one build (tree binaries, inputs digest, labels, context) and ``imageset`` builds the
refs a caller asks for. The cluster (``cluster/supportimages.py``) and conformance
(``conformance/offline.py``) both call it, so it sits below both.
"""
