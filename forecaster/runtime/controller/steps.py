"""The named steps of a controller cycle, in order. Each runs over every policy and isolates failures per policy.

    load_policies   list PredictiveScalingPolicies, parse each spec, read its HPA (and VPA)
    fetch_history   the demand query over the window the ForecastProvider asks for; container usage for VPAs;
                    with a store, the business events in each policy's scope (``stored``)
    forecast        ForecastProvider.forecast -> the policy's last good forecast (and, with a store, a stored
                    ForecastRun); a failure keeps the old one; a cold start without one reads the stored one;
                    the recent forecast error is scored against the fetched history (``accuracy``)
    decide          decide.plan_floor per HPA (with the errors, for the circuit breaker, and the joint policy's setting,
                    ``joint``, chosen again on each refit); the held RightSizer per VPA,
                    capped by the VPA's own resourcePolicy (``resource_policy``)
    write           Auto: the floor and the VPA recommendation; Off: restore; orphaned HPAs restored. A policy
                    with ``spec.actuation: KEDA`` writes no HPA: its floor is served to KEDA from the status the
                    record step writes (``forecaster.runtime.controller.keda``); a change is announced by an Event
    record          policy status, DecisionRecords in the store, metrics

A failure is recorded on the policy (``PolicyWork.fail``: step, CamelCase reason, message) and stops only the part
that depends on it: an unreachable Prometheus still lets ``decide`` run on the last good forecast (or fall back);
a missing HPA skips the floor but not the VPA; an invalid spec skips everything but its status.

Error -> reason: ``InputError`` InvalidSpec / MetricsInvalid; ``TemporaryError`` *Unavailable;
``PermanentError`` (not found, forbidden, owned by another policy) *NotFound / *Invalid / HPAOwnedElsewhere.

Not pure (cluster and metrics calls). Called by ``forecaster.runtime.controller.run.Controller.run_once``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from forecaster.contracts.errors import ForecasterError, InputError, NotFoundError, PermanentError, TemporaryError
from forecaster.contracts.modes import Mode
from forecaster.contracts.ports import ClusterApi
from forecaster.cycle import hpa as hpa_
from forecaster.cycle.accuracy import ErrorSummary, window_for
from forecaster.cycle.decide import plan_floor
from forecaster.cycle.forecast import IssuedForecast, demand_history
from forecaster.cycle.resource_policy import apply_resource_policy
from forecaster.cycle.spec import PolicySpec
from forecaster.runtime.controller import joint, record, stored, vpa, write
from forecaster.runtime.controller.cycle import Cycle, PolicyWork, WriteGuard
from forecaster.runtime.controller.report import PolicyReport
from forecaster.runtime.controller.stored import fingerprint

if TYPE_CHECKING:
    from forecaster.runtime.controller.run import Controller

log = logging.getLogger(__name__)


def _reason(exc: BaseException, subject: str) -> str:
    """CamelCase reason for an error about ``subject`` (``HPA``, ``VPA``, ``Metrics``, ``Usage``, ...)."""
    if isinstance(exc, NotFoundError):
        return f"{subject}NotFound"
    if isinstance(exc, TemporaryError):
        return f"{subject}Unavailable"
    if isinstance(exc, InputError | PermanentError):
        return f"{subject}Invalid"
    return f"{subject}Failed"


def each(cycle: Cycle, works: list[PolicyWork], step: str, subject: str, part: str,
         fn: Callable[[PolicyWork], None]) -> None:
    """Run ``fn`` on each work; an exception fails ``part`` of that policy only (never the loop)."""
    for work in works:
        try:
            fn(work)
        except ForecasterError as exc:
            work.fail(step, _reason(exc, subject), str(exc), part)
        except Exception as exc:  # a bug or an unexpected library error must not stop the other policies
            log.exception("policy %s: unexpected error at %s", work.key, step)
            work.fail(step, f"{subject}Failed", f"{type(exc).__name__}: {exc}", part)


# -- 1. load_policies --------------------------------------------------------------------------------------------
def load_policies(ctl: Controller, cycle: Cycle) -> None:
    objects = ctl.cluster.list_policies()
    cycle.listed = True
    for obj in objects:
        meta = obj.get("metadata") or {}
        key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        work = PolicyWork(obj=obj, report=PolicyReport(key), status=dict(obj.get("status") or {}))
        cycle.works.append(work)
        try:
            work.spec = PolicySpec.from_object(obj)
        except InputError as exc:
            work.report.mode = str((obj.get("spec") or {}).get("mode") or "")
            work.fail("load_policies", "InvalidSpec", str(exc), "policy")
            continue
        work.report.mode = Mode.RECOMMEND if ctl.config.dry_run and work.spec.mode == Mode.AUTO else work.spec.mode
    cycle.report.policies = [w.report for w in cycle.works]
    active = cycle.active()

    def read_hpa(work: PolicyWork) -> None:
        assert work.spec is not None
        found = ctl.cluster.get_hpa(work.spec.namespace, work.spec.hpa_name)
        owner = hpa_.managed_by(found)
        if owner is not None and owner != work.key:
            work.fail("load_policies", "HPAOwnedElsewhere", f"hpa {work.spec.namespace}/{work.spec.hpa_name} "
                      f"carries the floor of policy {owner}; one HPA takes one policy")
            return
        work.hpa = found

    def read_vpa(work: PolicyWork) -> None:
        assert work.spec is not None and work.spec.vpa is not None
        found = ctl.cluster.get_vpa(work.spec.namespace, work.spec.vpa.name)
        if not vpa.names_forecaster(found):
            raise PermanentError(f"vpa {work.spec.namespace}/{work.spec.vpa.name} does not name the "
                                 f"'{vpa.RECOMMENDER}' recommender in spec.recommenders; nothing is written to it")
        work.vpa = found

    each(cycle, active, "load_policies", "HPA", "hpa", read_hpa)
    each(cycle, [w for w in active if w.spec and w.spec.vpa], "load_policies", "VPA", "vpa", read_vpa)


# -- 2. fetch_history --------------------------------------------------------------------------------------------
def fetch_history(ctl: Controller, cycle: Cycle) -> None:
    now = cycle.now

    def demand(work: PolicyWork) -> None:
        assert work.spec is not None
        spec = work.spec
        start, end = ctl.forecasts.history_window(work.key, spec.forecast, now)
        step = pd.Timedelta(seconds=spec.forecast.frequency_s)
        frame = ctl.metrics.query_range(spec.query, start, end, step, id_labels=None)
        work.history = demand_history(frame, work.key)

    held = ctl.rightsizers  # one RightSizer per policy across cycles: only new usage between refits

    def usage(work: PolicyWork) -> None:
        assert work.spec is not None and work.spec.vpa is not None
        window = vpa.usage_window(work.spec, ctl.config.usage_window)
        work.usage = vpa.fetch_usage(ctl.usage, held, work.key, work.spec, window, now)

    each(cycle, [w for w in cycle.active() if not w.failed("hpa")], "fetch_history", "Metrics", "forecast", demand)
    with_vpa = [w for w in cycle.active() if w.vpa is not None and not w.failed("vpa")]
    held.drop_except(vpa.sizer_key(w.key, w.spec) for w in with_vpa if w.spec is not None and w.spec.vpa)
    each(cycle, with_vpa, "fetch_history", "Usage", "vpa", usage)
    fetch_events(ctl, cycle)


def fetch_events(ctl: Controller, cycle: Cycle) -> None:
    """With a store: the events in each policy's scope (read once per cycle). A store outage forecasts without
    them and says so on each policy (``StoreUnavailable``)."""
    works = [w for w in cycle.active() if w.history is not None]
    if ctl.store is None or not works:
        return
    try:
        events = stored.load_events(ctl.store)
    except Exception as exc:  # the store is an input here: its outage never stops the forecast
        for work in works:
            work.fail("fetch_history", "StoreUnavailable", f"business events not read: {exc}", "store")
        return

    def scope(work: PolicyWork) -> None:
        assert work.spec is not None
        work.events = stored.events_frame(events, work.spec, cycle.now)

    each(cycle, works, "fetch_history", "Events", "store", scope)


# -- 3. forecast -------------------------------------------------------------------------------------------------
def forecast(ctl: Controller, cycle: Cycle) -> None:
    store = ctl.store

    def run(work: PolicyWork) -> None:
        assert work.spec is not None and work.history is not None
        frame = ctl.forecasts.forecast(work.key, work.spec.forecast, work.history, cycle.now, events=work.events)
        low = getattr(ctl.forecasts, "low_confidence", None)  # optional in the ForecastProvider protocol
        issued = IssuedForecast(frame, cycle.now, fingerprint(work.spec), ctl.forecasts.backtest_mae(work.key),
                                low(work.key) if low is not None else "")
        ctl.last_good.put(work.key, issued)
        if store is not None:
            try:
                stored.save_forecast(store, work.key, issued, work.spec.forecast.levels)
            except Exception as exc:  # the store is a record: its outage never stops the decision
                work.fail("forecast", "StoreUnavailable", f"forecast not stored: {exc}", "store")

    def use(work: PolicyWork) -> None:
        assert work.spec is not None
        fp = fingerprint(work.spec)
        work.forecast = ctl.last_good.get(work.key, fp)
        if work.forecast is None and store is not None and not ctl.last_good.looked_up(work.key, fp):
            try:  # a restart: the last good forecast is the stored one
                work.forecast = stored.load_forecast(store, work.key, fp)
                ctl.last_good.mark_looked_up(work.key, fp)
            except Exception as exc:  # tried again next cycle
                work.fail("forecast", "StoreUnavailable", f"stored forecast not read: {exc}", "store")
            if work.forecast is not None:
                ctl.last_good.put(work.key, work.forecast)
        work.report.forecast_issued_at = None if work.forecast is None else work.forecast.issued_at
        work.errors = score(ctl, cycle, work)

    each(cycle, [w for w in cycle.active() if w.history is not None], "forecast", "Forecast", "forecast", run)
    each(cycle, cycle.active(), "forecast", "Forecast", "store", use)  # its own store errors are handled above


def score(ctl: Controller, cycle: Cycle, work: PolicyWork) -> ErrorSummary:
    """Score the issued forecasts against the fetched history and log this cycle's forecast (``accuracy``)."""
    assert work.spec is not None
    spec, fp, log = work.spec, fingerprint(work.spec), ctl.accuracy
    window = window_for(spec.forecast.frequency_s, spec.breaker_min_points)
    if not log.knows(work.key, fp):
        log.start(work.key, fp)
        if ctl.store is not None:  # a restart: the forecasts issued before it still provision recent buckets
            span = window + pd.Timedelta(seconds=spec.lead_time_s + spec.forecast.horizon_s)
            try:
                for old in stored.recent_forecasts(ctl.store, work.key, fp, cycle.now - span, cycle.now):
                    log.add(work.key, fp, old.issued_at, old.frame)
            except Exception as exc:  # the recent error restarts from nothing; the breaker keeps its state
                work.fail("forecast", "StoreUnavailable", f"stored forecasts not read: {exc}", "store")
    if work.history is not None:
        log.score(work.key, fp, work.history, spec.lead_time_s, window)
    if work.forecast is not None and work.forecast.issued_at == cycle.now:
        log.add(work.key, fp, work.forecast.issued_at, work.forecast.frame)
    recent, n = log.summary(work.key, fp)
    return ErrorSummary(recent, n, None if work.forecast is None else work.forecast.backtest_mae)


# -- 4. decide ---------------------------------------------------------------------------------------------------
def decide(ctl: Controller, cycle: Cycle) -> None:
    def floor(work: PolicyWork) -> None:
        assert work.spec is not None and work.hpa is not None
        joint.choose(ctl, cycle, work)  # spec.scaling.policy Joint: the setting to plan with
        work.plan = work.report.plan = plan_floor(work.spec, work.status, work.hpa, work.forecast, cycle.now,
                                                  work.errors, work.joint_setting)

    def resources(work: PolicyWork) -> None:
        assert work.spec is not None and work.spec.vpa is not None and work.usage is not None
        window = vpa.usage_window(work.spec, ctl.config.usage_window)
        recs = vpa.recommend_held(ctl.rightsizers, work.key, work.spec, work.usage[0], work.usage[1], window,
                                  cycle.now)
        recs = apply_resource_policy(recs, work.vpa or {})  # the VPA's own resourcePolicy, as VPA applies it
        work.recommendations = work.report.recommendations = recs
        work.vpa_status = vpa.vpa_status(recs, cycle.now, work.spec.vpa.policy)

    each(cycle, [w for w in cycle.active() if w.hpa is not None and not w.failed("hpa")], "decide", "Decision",
         "hpa", floor)
    each(cycle, [w for w in cycle.active() if w.usage is not None and not w.failed("vpa")], "decide",
         "Rightsizing", "vpa", resources)


# -- 5. write ----------------------------------------------------------------------------------------------------
def write_changes(ctl: Controller, cycle: Cycle) -> None:
    cluster, guard = ctl.cluster, cycle.guard
    auto = [w for w in cycle.active() if w.mode == Mode.AUTO]
    served = [w for w in auto if w.spec is not None and w.spec.served_to_keda]
    auto_hpa = [w for w in auto if w not in served]

    def floor(work: PolicyWork) -> None:
        assert work.spec is not None
        spec, status, forecast_, errors = work.spec, work.status, work.forecast, work.errors
        setting = work.joint_setting
        write.apply_floor(cluster, guard, work,
                          lambda hpa: plan_floor(spec, status, hpa, forecast_, cycle.now, errors, setting))

    def off(work: PolicyWork) -> None:
        assert work.spec is not None
        try:
            cluster.get_hpa(work.spec.namespace, work.spec.hpa_name)
        except NotFoundError:
            return  # no HPA, no floor of ours on it
        write.restore(cluster, guard, work.spec.namespace, work.spec.hpa_name, work.involved(), "policy is Off",
                      work.report.writes, work.report.skipped)

    if guard.dry_run:
        for work in cycle.works:
            if work.plan is not None and work.plan.needs_write and work.spec and work.spec.mode == "Auto":
                work.report.skipped.append("hpa floor: --dry-run (Recommend)")
    each(cycle, [w for w in auto_hpa if w.plan is not None and not w.failed("hpa")], "write", "Write", "hpa", floor)
    each(cycle, [w for w in served if w.plan is not None and not w.failed("hpa")], "write", "Write", "hpa",
         lambda w: serve_floor(cluster, guard, w))
    each(cycle, [w for w in auto if w.vpa_status is not None and not w.failed("vpa")], "write", "Write", "vpa",
         lambda w: write.apply_vpa(cluster, guard, w))
    offs = [w for w in cycle.works if w.spec is not None and w.mode == Mode.OFF and not guard.dry_run]
    each(cycle, offs, "write", "Restore", "hpa", off)
    if cycle.listed and not guard.dry_run:
        restore_orphans(ctl, cycle)


def serve_floor(cluster: ClusterApi, guard: WriteGuard, work: PolicyWork) -> None:
    """KEDA actuation: the plan's floor is in force as soon as the record step writes it to the policy's status
    (``status.floorInForce``, what the scaler serves); nothing is written to the HPA, which KEDA owns. A change is
    announced by a ``FloorChanged``/``FloorRestored`` Event, as an HPA patch would be."""
    assert work.spec is not None and work.plan is not None
    plan, key = work.plan, work.key
    if not guard.allowed():
        work.report.skipped.append(f"keda floor {key} {plan.in_force} -> {plan.value}: this replica no longer "
                                   "holds the lease")
        return
    work.floor_applied = True
    if plan.needs_write:
        change = f"keda floor {key} {plan.in_force} -> {plan.value} (served to ScaledObject triggers)"
        work.report.writes.append(change)
        write.emit(cluster, work.spec.namespace, work.involved(), "FloorRestored" if plan.restored else
                   "FloorChanged", f"{change}: {plan.summary} ({plan.reason}); {plan.decision.reason}",
                   work.report.writes)


def managed_targets(cycle: Cycle) -> set[tuple[str, str, str]]:
    """``(policy key, namespace, hpa name)`` of every valid policy that may keep a floor on its HPA (Auto and
    Recommend; Recommend never writes, so a floor left by an earlier Auto stays until the policy is Off)."""
    return {(w.key, w.spec.namespace, w.spec.hpa_name) for w in cycle.works
            if w.spec is not None and w.spec.mode in (Mode.AUTO, Mode.RECOMMEND)}


def restore_orphans(ctl: Controller, cycle: Cycle) -> None:
    """Restore every HPA that carries our floor but no valid policy manages any more (deleted policy, invalid
    spec, policy retargeted to another HPA)."""
    keep = managed_targets(cycle)
    off = {(w.key, w.spec.namespace, w.spec.hpa_name) for w in cycle.works if w.spec is not None and w.mode == Mode.OFF}
    policies = {w.key: w for w in cycle.works}
    for hpa in ctl.cluster.list_hpas():
        owner = hpa_.managed_by(hpa)
        meta = hpa.get("metadata") or {}
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        if owner is None or (owner, ns, name) in keep or (owner, ns, name) in off:
            continue
        work = policies.get(owner)
        why = "its policy is deleted" if work is None else "its policy no longer manages it"
        writes: list[str] = []
        skipped: list[str] = []
        try:
            write.restore(ctl.cluster, cycle.guard, ns, name, None if work is None else work.involved(), why,
                          writes, skipped)
        except ForecasterError as exc:
            cycle.report.errors.append(f"restore hpa {ns}/{name}: {exc}")
            continue
        cycle.report.restored.extend(w for w in writes if w.startswith("hpa "))
        cycle.report.errors.extend(skipped)


# -- 6. record ---------------------------------------------------------------------------------------------------
def record_all(ctl: Controller, cycle: Cycle) -> None:
    def one(work: PolicyWork) -> None:
        try:
            record.save(ctl.store, record.decision_records(work, cycle.now))
        except Exception as exc:  # the store is a record: its outage never stops the status or the others
            work.fail("record", "StoreUnavailable", f"decision not stored: {exc}", "store")
        record.metrics(ctl.telemetry, work)
        if not work.key.strip("/") or "/" not in work.key:
            return
        if not cycle.guard.allowed():
            work.report.skipped.append("policy status: this replica no longer holds the lease")
            return
        ctl.cluster.patch_policy_status(work.namespace, work.name, record.policy_status(work, cycle.now))
        work.report.writes.append(f"status {work.key}")

    each(cycle, cycle.works, "record", "Status", "status", one)
