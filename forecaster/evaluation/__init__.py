"""Evaluation: rolling-origin cutoffs and accuracy metrics over Backtest frames.

Called by the engine (weights, calibration reports), the CLI and ``benchmarks/accuracy.py``. Pure.
"""

from forecaster.evaluation.cutoffs import rolling_cutoffs
from forecaster.evaluation.metrics import (
    band_quantiles,
    band_width,
    coverage,
    coverage_col,
    evaluate,
    evaluate_pooled,
    mae,
    mase,
    mase_scales,
    mean_pinball,
    pinball,
    rmse,
    seasonal_naive_scale,
    width_col,
)

__all__ = [
    "band_quantiles",
    "band_width",
    "coverage",
    "coverage_col",
    "evaluate",
    "evaluate_pooled",
    "mae",
    "mase",
    "mase_scales",
    "mean_pinball",
    "pinball",
    "rmse",
    "rolling_cutoffs",
    "seasonal_naive_scale",
    "width_col",
]
