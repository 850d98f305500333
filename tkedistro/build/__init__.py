"""The build only: binaries compiled in the builder container and checked by running them.

``targets`` and ``plan`` are pure (manifest and options in, a frozen ``BuildPlan`` out);
``container`` runs one builder container, ``smoke`` runs every binary it made, ``output`` and
``publish`` lay out and swap in ``_output/<release>``, ``reproduce`` builds a second time for
``--verify-reproducible``, ``builderimage`` makes the builder image. The containers come from
``engine/``; the operation that strings source, build and artifacts together is ``release/``.
"""
