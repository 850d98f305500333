"""Building a release in containers: ``plan`` (pure), ``backend`` (protocol), ``docker``,
``pipeline`` (the ``build`` command), ``output``/``publish``/``smoke``/``reproduce``."""
