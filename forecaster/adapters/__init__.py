"""Adapters: translate the outside world's wire formats into our frames and records (``contracts.ports``) and back.

``prometheus`` (HTTP API, httpx), ``kube`` (official ``kubernetes`` client), ``store`` (SQLAlchemy). They hold no
policy: deciding what to write is the controller's and the scheduler's job.
"""
