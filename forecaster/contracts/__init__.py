"""What crosses every boundary, with no behaviour of its own: frame columns and band-column helpers (``frames``),
the error tree (``errors``), ports to the outside world (``ports``), exported metric names (``metric_names``).

The lowest layer: imports nothing else from ``forecaster`` and no client of the outside world.
"""
