"""Combining members: weights learned from the backtest, band combination, conformal calibration."""
