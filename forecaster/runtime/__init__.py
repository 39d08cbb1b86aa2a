"""What runs the decision cycle over time, in two configurations of the same parts:

    controller/  the in-cluster controller: ``PredictiveScalingPolicy`` objects in, HPA floors and VPA
                 recommendations out (Auto), or recorded only (Recommend); one cycle = named, timed steps
    service/     the standalone service: a workloads file in (Recommend only), forecasts, decisions and accuracy into
                 the store for the HTTP API; its refresh is the same cycle (``forecaster.cycle``) on a model per
                 frequency group
    scheduler    the APScheduler jobs of the service (refresh, accuracy, refit, controller); ``loop`` the controller's
    leader       Lease election (two replicas never both act)
    health       ``/healthz``, ``/readyz``, ``/metrics`` of the controller and the KEDA scaler
    jobs         the scheduled jobs as importable references; ``worker`` the process that runs them
    settings     ``ServiceSettings``; ``telemetry`` the Prometheus collectors every process records through

Both configurations take their decisions from ``forecaster.cycle`` (schedule, forecast, accuracy and breaker, floor),
so the simulator (``forecaster.simulate``), which drives the same cycle, replays what they would do
(``tests/cycle/test_cycle_replay_identity.py``). Impure (APScheduler, prometheus_client, the adapters they are given).
"""
