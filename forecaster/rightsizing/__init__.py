"""Borg-style resource prediction: predicted actual use against requests, and right-sized requests.

Pure computation (no outside clients). Usage history in, recommendations and reports out.
"""
