"""Shared plumbing of the benchmark scripts: run metadata, result files, tables, progress, imports.

Called by ``accuracy.py`` and ``throughput.py``. Results go to ``benchmarks/results/<name>.json`` and
``<name>.md``, written through a ``.tmp`` file and renamed, so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
if str(REPO) not in sys.path:  # run as ``python benchmarks/x.py`` from anywhere
    sys.path.insert(1, str(REPO))


def run_meta(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Who/what/where of a run: command, UTC time, git commit, Python, CPU count, platform."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    if not commit:  # a `git archive` of the repository: the commit git wrote into ARCHIVE_COMMIT (export-subst)
        stamp = (Path(__file__).parent / "ARCHIVE_COMMIT").read_text().strip()
        commit = "" if stamp.startswith("$Format") else f"{stamp} (archive)"
    return {
        "command": " ".join(["python", *(sys.argv if argv is None else argv)]),
        "started_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": commit,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def clean_json(value: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_results(name: str, payload: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``results/<name>.json`` and ``results/<name>.md`` atomically; return both paths."""
    RESULTS.mkdir(exist_ok=True)
    paths = (RESULTS / f"{name}.json", RESULTS / f"{name}.md")
    texts = (json.dumps(clean_json(payload), indent=2, default=str) + "\n", markdown)
    for path, text in zip(paths, texts, strict=True):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return paths


def fmt(value: Any, digits: int = 3) -> str:
    """Table cell: floats to ``digits`` significant digits, None/NaN as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"
    return str(value)


def md_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], headers: Sequence[str] | None = None
) -> str:
    """A GitHub markdown table of ``rows`` (dicts) restricted to ``columns``."""
    head = list(headers or columns)
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def progress() -> Progress:
    """The rich progress bar every benchmark uses."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )


def load_forecaster() -> tuple[Callable[..., Any] | None, str]:
    """``(Forecaster, "")`` if ``from forecaster import Forecaster`` works, else ``(None, reason)``."""
    try:
        from forecaster import Forecaster  # type: ignore[attr-defined]
    except Exception as exc:  # the engine may be mid-build; the benchmark still runs the baselines
        return None, f"{type(exc).__name__}: {exc}"
    return Forecaster, ""
