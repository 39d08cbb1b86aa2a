"""What runs the product over time: the scheduler of the timed jobs (``scheduler``), the service's settings
(``settings``) and the Prometheus collectors every process records through (``telemetry``).

Impure (APScheduler, prometheus_client); wired by the entry points (``forecaster.cli``, ``forecaster.api``).
"""
