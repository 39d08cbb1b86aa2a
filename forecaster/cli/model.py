"""``forecaster model``: the model history of a workload and the rollback to an earlier model (issue 24).

    forecaster model history  [--workload W] [--limit 20] [--json] [--store-url URL]
    forecaster model rollback [--workload W] [--to VERSION] [--reason TEXT] [--store-url URL]

``--workload`` is a model key (the service's frequency group ``freq/5min``, a controller policy ``shop/web``) or a
workload its models cover; without it, the only key in the store. ``history`` lists the key's models newest first:
version, what happened (fitted into shadow as a challenger, promoted, kept out, superseded, rolled back to), when,
why, the training span and the scores (pinball loss and MAE of champion vs challenger on the same points).
``rollback`` writes a rollback to ``--to`` (default: the champion before the current one) into the store
(``forecaster.runtime.rollout.request_rollback``); the service and the controller make that artefact the champion at
their next cycle, and because it lives in the store it survives their restarts.

The store URL comes from ``--store-url``, else from the service settings (``FORECASTER_STORE_URL``), as
``forecaster db``. Exit codes: 0 done, 1 nothing found (no history, unknown version, no artefact to restore),
2 bad input (several keys and no ``--workload``, the version is already the champion).

Registered on the ``forecaster`` app by the import in ``forecaster.cli``. Not pure (wiring).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.table import Table

from forecaster.cli.app import app, bad_input_exits, make_console
from forecaster.contracts.clock import utc_now
from forecaster.contracts.errors import NotFoundError
from forecaster.contracts.ports import ModelEvent, Store
from forecaster.runtime.rollout import request_rollback, resolve_key
from forecaster.runtime.settings import ServiceSettings

EXIT_NOT_FOUND = 1
model_app = typer.Typer(help="Model history and rollback: history, rollback.", no_args_is_help=True)
app.add_typer(model_app, name="model")

StoreUrl = Annotated[
    str | None,
    typer.Option(help="SQLAlchemy URL of the store (default: FORECASTER_STORE_URL or the service settings' "
                      "store_url)."),
]
Workload = Annotated[
    str | None,
    typer.Option("--workload", "-w", help="Model key (freq/5min, shop/web) or a workload its models cover "
                                          "(default: the only key)."),
]


def _open(store_url: str | None) -> Store:
    from forecaster.adapters.store import SqlStore  # lazy: SQLAlchemy loads only for model

    return SqlStore(store_url or ServiceSettings.from_env().store_url)


@contextmanager
def _not_found_exits() -> Iterator[None]:
    try:
        yield
    except NotFoundError as exc:
        make_console().print(f"error: {exc}", style="bold red", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_NOT_FOUND) from None


def event_dict(e: ModelEvent) -> dict[str, Any]:
    """A model event as JSON data (what ``--json`` prints, one object per event)."""
    return {"key": e.key, "version": e.version, "kind": e.kind, "at": e.at.isoformat(), "reason": e.reason,
            "previous": e.previous or None, "workload_ids": list(e.workload_ids),
            "train_start": None if e.train_start is None else e.train_start.isoformat(),
            "train_end": None if e.train_end is None else e.train_end.isoformat(), "scores": e.scores,
            "actor": e.actor}


def _scores(scores: dict[str, Any]) -> str:
    if not scores or not scores.get("n_points"):
        return ""
    champion, challenger = scores.get("champion") or {}, scores.get("challenger") or {}

    def fmt(value: object) -> str:
        return "—" if not isinstance(value, int | float) else f"{value:.4g}"

    return (f"{scores['n_points']} pts: pinball {fmt(champion.get('pinball'))} vs {fmt(challenger.get('pinball'))}, "
            f"MAE {fmt(champion.get('mae'))} vs {fmt(challenger.get('mae'))}")


def history_table(key: str, events: list[ModelEvent], champion: ModelEvent | None) -> Table:
    """One row per event, newest first; the champion's version in bold."""
    title = f"Model history of {key}" + (f" (champion {champion.version})" if champion is not None else "")
    table = Table(title=title, caption="scores: champion vs challenger on the same points")
    for col in ("at (UTC)", "version", "event", "trained on", "scores", "why"):
        table.add_column(col, overflow="fold")
    for e in events:
        span = "" if e.train_start is None or e.train_end is None else \
            f"{e.train_start:%Y-%m-%d %H:%M} .. {e.train_end:%Y-%m-%d %H:%M}"
        version = f"[bold]{e.version}[/bold]" if champion is not None and e.version == champion.version else e.version
        table.add_row(f"{e.at:%Y-%m-%d %H:%M}", version, e.kind, span, _scores(e.scores), e.reason)
    return table


@model_app.command("history")
def history(
    workload: Workload = None,
    limit: Annotated[int, typer.Option(help="Most recent events shown.", min=1, max=500)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    store_url: StoreUrl = None,
) -> None:
    """Show a workload's models: versions, training spans, promotions and why, scores."""
    console = make_console()
    with bad_input_exits(), _not_found_exits():
        store = _open(store_url)
        key = resolve_key(store, workload)
        events = store.list_model_events(key=key, limit=limit).items
        champion = store.champion(key)
    if as_json:
        doc = {"key": key, "champion": None if champion is None else champion.version,
               "events": [event_dict(e) for e in events]}
        console.print_json(json.dumps(doc))
        return
    console.print(history_table(key, events, champion))


@model_app.command("rollback")
def rollback(
    workload: Workload = None,
    to: Annotated[str | None, typer.Option("--to", help="Version to restore (default: the previous champion).")] = None,
    reason: Annotated[str, typer.Option(help="Why, kept in the model history.")] = "",
    store_url: StoreUrl = None,
) -> None:
    """Make an earlier model the champion again; the service and the controller pick it up at their next cycle."""
    console = make_console()
    with bad_input_exits(), _not_found_exits():
        store = _open(store_url)
        key = resolve_key(store, workload)
        event = request_rollback(store, key, to, utc_now(), actor="cli", reason=reason)
    console.print(f"{key}: rolled back to {event.version} (was {event.previous or 'none'}); the service and the "
                  "controller serve it from their next cycle", highlight=False, soft_wrap=True)
