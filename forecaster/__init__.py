"""forecaster: predictive autoscaling and resource prediction for Kubernetes.

The public surface is ``__all__`` (locked by a test). ``Forecaster`` is the forecasting engine;
``rightsize`` recommends container requests from predicted actual use (``forecaster.rightsizing``) and
``RightSizer`` does it day after day for a fleet (fit once, update with new use, decide for every container);
``simulate.replay`` replays a demand trace through a simulated HPA with reactive, predictive and oracle
policies; the rest are the contracts (column helpers, errors) a caller needs.
"""

from forecaster import simulate
from forecaster.contracts.errors import (
    ArtefactError,
    ForecasterError,
    FrequencyError,
    InputError,
    LeakageError,
    NotFittedError,
    PermanentError,
    SeriesError,
    TemporaryError,
)
from forecaster.contracts.frames import band_columns, hi, lo
from forecaster.forecasting.forecaster import Explanation, Forecaster
from forecaster.forecasting.history import prepare_history
from forecaster.rightsizing import RightSizer, rightsize

__version__ = "0.1.0"

__all__ = [
    "ArtefactError",
    "Explanation",
    "Forecaster",
    "ForecasterError",
    "FrequencyError",
    "InputError",
    "LeakageError",
    "NotFittedError",
    "PermanentError",
    "RightSizer",
    "SeriesError",
    "TemporaryError",
    "__version__",
    "band_columns",
    "hi",
    "lo",
    "prepare_history",
    "rightsize",
    "simulate",
]
