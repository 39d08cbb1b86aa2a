"""Overload benchmark (issue 22): ``api_load.py --only-overload`` with its results in ``results/load.{json,md}``.

The measurement is ``api_load.py``'s (its module docstring): for the cached forecast and the forecast with the cache
off, the sustainable rate (every request 200, none refused, p99 <= 100 ms: doubling from ``--probe-rate``, then
bisection), then twice that rate with admission control on (p99 of the accepted requests against 100 ms, p99 of the
503 refusals against 50 ms, anything else against 0) and off (the baseline: queueing without bound). This script only
keeps the steady-rate figures of issue 6 (``results/api_load.*``) from being overwritten by an overload-only run.

    nice -n 10 python benchmarks/load.py [api_load.py options, e.g. --probe-duration 4 --overload-duration 20]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import api_load
import common  # noqa: F401  (puts the repository on sys.path)
from common import write_results


def write_as_load(name: str, payload: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """``write_results`` under ``load`` (``load_quick`` for ``--quick``) instead of ``api_load``."""
    return write_results(name.replace("api_load", "load"), payload, markdown)


def main(argv: list[str] | None = None) -> int:
    setattr(api_load, "write_results", write_as_load)  # noqa: B010  (replaces the name api_load.main calls)
    return api_load.main(["--only-overload", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
