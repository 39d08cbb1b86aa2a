"""Predictive horizontal scaling: a demand forecast band turned into an HPA ``minReplicas`` floor.

Pure computation (no outside clients).
"""
