"""Cluster replay: a demand trace through a simulated reactive HPA, predictive and oracle policies.

Pure computation (no outside clients).
"""
