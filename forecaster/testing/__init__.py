"""Fakes at our own ports (``contracts.ports``) for unit tests and notebooks: in-memory metrics source, cluster,
lease and store. They behave like the adapters (same errors, same records) without any server.
"""
