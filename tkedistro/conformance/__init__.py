"""Kubernetes conformance on the built binaries: offline images, suite, results.

``pipeline.run_conformance`` is the entry point; the cluster it runs on is ``tkedistro.cluster``
(node containers). The other modules each own one concern: ``results`` (junit parsing, pure),
``report`` (PRODUCT.yaml / README.md), ``archive`` (where results live), ``hostcheck`` (host
packages), ``catalog``/``images``/``offline`` (the test images, made offline), ``suite``
(running e2e.test) and ``proofs`` (the patch series checked on the running cluster).
"""
