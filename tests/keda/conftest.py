"""Fixtures of the KEDA external scaler tests (defined in ``keda_support``)."""

from __future__ import annotations

from keda_support import client_modules, scaler

__all__ = ["client_modules", "scaler"]
