"""Test support shared by several test folders: real-server fixtures (Prometheus, PostgreSQL, the Kubernetes API
test server) and helpers. Importable as ``support`` because ``tests/conftest.py`` puts ``tests/`` on ``sys.path``."""
