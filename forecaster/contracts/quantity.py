"""Kubernetes resource quantities: parse ``"250m"``, ``"1.5"``, ``"512Mi"``, ``"1e3"`` and format what we write.

We write CPU in whole millicores rounded up (0.2501 cores -> ``"251m"``) and memory in whole MiB rounded up
(300,000,000 bytes -> ``"287Mi"``): a recommendation is never below what was computed, and the strings match the
VPA CRD's quantity pattern. ``parse_quantity`` reads any quantity the API server may hand back (decimal and binary
suffixes, exponents) as a float in base units (cores, bytes).

Pure: standard library only. Called by ``forecaster.runtime.controller.vpa`` and ``forecaster.cycle.hpa``.
"""

from __future__ import annotations

import math
import re

from forecaster.contracts.errors import InputError

_SUFFIX: dict[str, float] = {
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$")
MIB = 2.0**20


def parse_quantity(value: object) -> float:
    """A quantity in base units: ``"250m"`` -> 0.25, ``"512Mi"`` -> 536870912.0, ``2`` -> 2.0."""
    if isinstance(value, bool):
        raise InputError(f"quantity: {value!r} is not a Kubernetes quantity")
    if isinstance(value, int | float):
        return float(value)
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        raise InputError(f"quantity: {value!r} is not a Kubernetes quantity such as '250m' or '512Mi'")
    return float(match.group(1)) * _SUFFIX[match.group(2) or ""]


def format_cpu(cores: float) -> str:
    """Cores as whole millicores, rounded up, at least 1m: 0.25 -> ``"250m"``, 0.2501 -> ``"251m"``."""
    if not math.isfinite(cores) or cores < 0:
        raise InputError(f"cpu: {cores!r} cores is not a valid amount")
    return f"{max(1, math.ceil(cores * 1000.0 - 1e-9))}m"


def format_memory(num_bytes: float) -> str:
    """Bytes as whole MiB, rounded up, at least 1Mi: 268435456 -> ``"256Mi"``, 3e8 -> ``"287Mi"``."""
    if not math.isfinite(num_bytes) or num_bytes < 0:
        raise InputError(f"memory: {num_bytes!r} bytes is not a valid amount")
    return f"{max(1, math.ceil(num_bytes / MIB - 1e-9))}Mi"
