"""The application layer: the ``mmstar`` command, the demo and peer-log import. It may import every
other package; nothing imports it (``mmstar/__main__`` and the console script only start it)."""
