"""Kubernetes conformance on the built binaries: local cluster, offline images, suite, results.

``pipeline.run_conformance`` is the entry point; the other modules each own one concern:
``results`` (junit parsing, pure), ``report`` (PRODUCT.yaml / README.md), ``pki``,
``hostcheck``, ``processes``, ``cluster`` and ``teardown`` (the local node), ``images``
(offline test images) and ``suite`` (running e2e.test).
"""
