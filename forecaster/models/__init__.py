"""Ensemble members: one module per member, all following ``forecaster.models.base.Member``."""
