"""Bodies of ``POST /v1/what-if``: a scenario (demand source, growth, extra events, policy knobs) and its outcomes.

Every size is bounded so one request cannot eat the server: the replay window (``ApiSettings.whatif_max_minutes``,
checked by ``forecaster.api.whatif``), at most 50 events, replicas <= 10,000, start-up <= 1 h.

Pure: pydantic only. Called by ``forecaster.api.routes_whatif`` and ``forecaster.api.whatif``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from forecaster.api.schemas import (
    NO_CONTROL,
    JsonBool,
    JsonFloat,
    JsonInt,
    UtcTime,
    end_after_start,
    json_number_or_none,
)

MAX_EVENTS = 50
MAX_REPLICAS = 10_000


class UpliftWindow(BaseModel):
    """Demand multiplied by ``1 + uplift`` over ``[start, end)`` (a campaign, a sale...)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200, pattern=NO_CONTROL)
    start: UtcTime
    end: UtcTime
    uplift: JsonFloat = Field(ge=0, le=100, allow_inf_nan=False, description="0.5 = +50 % demand in the window.")

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: datetime, info: ValidationInfo) -> datetime:
        return end_after_start(end, info)


class PolicyKnobs(BaseModel):
    """Knobs of the simulated cluster and the predictive floor (``forecaster.simulate.replay``). A knob the request
    leaves out is the workload's own when its replicas decisions recorded it (``capacity_per_pod``, the bounds, the
    band; see ``forecaster.api.whatif``), else the default below; the answer's ``policy`` holds the knobs used."""

    model_config = ConfigDict(extra="forbid")

    capacity_per_pod: float | None = Field(
        default=None, ge=1e-6, le=1e12, allow_inf_nan=False,
        description="Demand one pod serves at 100 % (demand units). Default: the workload's own (as recorded in "
                    "its replicas decisions), else the peak needs `peak_replicas` pods.")
    peak_replicas: JsonInt = Field(default=10, ge=1, le=1000,
                               description="Used only without `capacity_per_pod`: pods the peak needs at 100 %.")
    target_utilisation: JsonFloat = Field(default=0.7, ge=0.01, le=1, allow_inf_nan=False,
                                          description="The HPA's target: a whole percent, at least 1 % (0.01).")
    quantile: str = Field(default="hi-80", pattern=r"^(ensemble|median|(lo|hi)-[1-9][0-9]?)$",
                          description="Band that sets the predictive floor: `ensemble`, `hi-80`, `hi-95`...")
    margin: JsonFloat = Field(default=0.0, ge=0, le=10, allow_inf_nan=False, description="0.1 = plan for +10 %.")
    startup_s: JsonFloat = Field(default=120.0, ge=0, le=3600, allow_inf_nan=False,
                             description="Seconds from asking for a pod to it being ready.")
    min_replicas: JsonInt = Field(default=1, ge=1, le=MAX_REPLICAS)
    max_replicas: JsonInt = Field(default=MAX_REPLICAS, ge=1, le=MAX_REPLICAS)
    decision_interval_s: JsonInt = Field(default=60, ge=60, le=3600, multiple_of=60)

    _number = field_validator("capacity_per_pod", mode="before")(json_number_or_none)

    @field_validator("max_replicas")
    @classmethod
    def _above_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_replicas")
        if low is not None and value < low:
            raise ValueError("must be >= min_replicas")
        return value


class WhatIfIn(BaseModel):
    """A what-if scenario for one workload."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"workload": "shop/web", "growth": 1.2, "policy": {"quantile": "hi-80", "startup_s": 120}}]})

    workload: str = Field(min_length=1, max_length=300, pattern=NO_CONTROL)
    demand: Literal["actuals", "forecast"] = Field(
        default="actuals",
        description="`actuals`: stored observations over [start, end] (default: the day before the latest forecast), "
                    "replayed against the forecasts stored then. `forecast`: the latest forecast's ensemble is the "
                    "demand (the plan), and the predictive policy reads that forecast.")
    start: UtcTime | None = None
    end: UtcTime | None = None
    growth: JsonFloat = Field(default=1.0, ge=0.01, le=100, allow_inf_nan=False,
                          description="Multiplies demand and the forecasts (a level the model would learn).")
    events: list[UpliftWindow] = Field(default_factory=list, max_length=MAX_EVENTS)
    events_known: JsonBool = Field(default=True, description="The extra events are registered in advance, so the "
                                                         "forecasts carry their uplift too (else only demand does).")
    policy: PolicyKnobs = Field(default_factory=PolicyKnobs)

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if start is not None and end is not None and end <= start:
            raise ValueError("must be after start")
        return end


class OutcomesOut(BaseModel):
    """How one policy did (``forecaster.simulate.Outcomes``)."""

    policy: str
    minutes: int
    under_provisioned_minutes: int = Field(description="Minutes with demand above ready capacity.")
    unserved: float = Field(description="Demand above ready capacity, summed over minutes.")
    replica_minutes: float = Field(description="Billed pods integrated over time (the cost).")
    scaling_actions: int
    peak_replicas: int
    floor_changes: int
    fallback_decisions: int


class ComparisonOut(BaseModel):
    """Predictive against reactive (positive savings are better)."""

    under_provisioned_minutes_saved: int
    unserved_saved: float
    replica_minutes_extra: float
    replica_minutes_ratio: float | None


class WhatIfOut(BaseModel):
    """Outcomes of the scenario under the reactive HPA alone and with the predictive floor."""

    workload: str
    demand: str
    start: datetime
    end: datetime
    minutes: int = Field(description="Minutes replayed: those of the window the demand covers (a note says when "
                                     "that is fewer than the window's).")
    growth: float
    capacity_per_pod: float
    forecast_runs: int = Field(description="Stored forecasts the predictive policy read (0: it did not run).")
    policy: PolicyKnobs = Field(description="The knobs replayed: the request's, else the workload's own, else the "
                                            "defaults (a note names the decisions the workload's came from).")
    outcomes: list[OutcomesOut]
    comparison: ComparisonOut | None
    notes: list[str]
