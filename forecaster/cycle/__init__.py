"""The decision cycle, pure: the one story of "how we decide" that the controller, the service and the simulator
all drive (they differ only in where policies, history and the cluster come from, and where decisions go).

    spec             a policy's spec (the PredictiveScalingPolicy object, or a workload of the workloads file)
    schedule         when to refit and refresh, the history window to fetch, issue times
    forecast         the engine refitted/refreshed on that schedule, and the last good forecast (``LastGood``)
    accuracy         one error log of issued forecasts (``ForecastLog``) and the backtest error: the breaker's inputs
    hpa              reading an HPA: its own floor, bounds, what its reactive rule wants (``reactive_floor``)
    state            what a policy's status remembers between cycles (floor in force, breaker, cool-down)
    decide           the replica floor (``decide_floor``, ``plan_floor``) into a decision with its reason
    resource_policy  a VPA's ``resourcePolicy`` applied to container recommendations

Functions take values (policy spec, history, forecast, state) and return values; the fallback rule is the circuit
breaker of ``forecaster.scaling`` (one rule, fed by ``accuracy``). No client of the outside world is imported here.
"""
