"""Kubernetes conformance on the built binaries: offline images, suite, results.

``pipeline.run_conformance`` is the entry point; the cluster it runs on is ``tkedistro.cluster``
(node containers). The other modules each own one concern: ``results`` (junit parsing, pure),
``report`` (PRODUCT.yaml / README.md), ``archive`` (where results live), ``catalog``/
``gosource`` (which images the specs pull), ``offline``/``repolist``/``imagecmd`` (those images
built by ``images/upstream/`` and served from a registry) and ``suite`` (running e2e.test).
"""
