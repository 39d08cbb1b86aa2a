"""The forecasting engine: the ``Forecaster`` API (``forecaster``), its members run in order (``members``), history
validation at the edge (``history``), saved artefacts (``artefact``) and the per-series map (``executor``).

Pure: no client of the outside world. Below ``scaling``/``rightsizing``, above ``models``/``ensemble``/``evaluation``.
"""
