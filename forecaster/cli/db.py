"""``forecaster db``: the store's schema migrations (``forecaster.adapters.migrate``).

    forecaster db upgrade [--store-url URL] [--revision head]    # run the migrations this release ships
    forecaster db current [--store-url URL]                      # where the database stands

The store URL comes from ``--store-url``, else from the service settings (``FORECASTER_STORE_URL`` or the mounted
Secret file ``store_url``, as ``forecaster serve`` reads it), so an init container or a Job in the service's
Deployment runs ``forecaster db upgrade`` with no argument. Exit codes: 0 done (or nothing to do), 1 the database
cannot be migrated by this release (made by a newer one), 2 bad input.

Registered on the ``forecaster`` app by the import at the end of ``forecaster.cli``. Not pure (wiring).
"""

from __future__ import annotations

from typing import Annotated

import typer

from forecaster.cli.app import app, bad_input_exits, make_console
from forecaster.contracts.errors import PermanentError
from forecaster.runtime.settings import ServiceSettings

db_app = typer.Typer(help="Store schema migrations (Alembic): upgrade, current.", no_args_is_help=True)
app.add_typer(db_app, name="db")

StoreUrl = Annotated[
    str | None,
    typer.Option(
        help="SQLAlchemy URL of the store (default: FORECASTER_STORE_URL or the service settings' store_url)."
    ),
]


def _url(store_url: str | None) -> str:
    return store_url or ServiceSettings.from_env().store_url


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def upgrade(
    store_url: StoreUrl = None, revision: Annotated[str, typer.Option(help="Target revision.")] = "head"
) -> None:
    """Upgrade the store's schema to this release's newest revision (a store made before migrations included)."""
    from forecaster.adapters import migrate  # lazy: Alembic loads only for db
    from forecaster.adapters.store import make_engine  # lazy: SQLAlchemy loads only for db

    console = make_console()
    with bad_input_exits():
        url = _url(store_url)
        engine = make_engine(url)
    try:
        before, after = migrate.upgrade(engine, revision)
    except PermanentError as exc:
        console.print(f"error: {exc}", style="bold red", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    if before == after:
        console.print(f"store {_safe(url)}: {after.describe()}, nothing to do", highlight=False, soft_wrap=True)
    else:
        console.print(f"store {_safe(url)}: {before.describe()} -> {after.describe()}", highlight=False, soft_wrap=True)


@db_app.command("current")
def current(store_url: StoreUrl = None) -> None:
    """Say where the store's schema stands: empty, made before migrations, behind, or at the newest revision."""
    from forecaster.adapters import migrate  # lazy: Alembic loads only for db
    from forecaster.adapters.store import make_engine  # lazy: SQLAlchemy loads only for db

    console = make_console()
    with bad_input_exits():
        url = _url(store_url)
        engine = make_engine(url)
    try:
        found = migrate.state(engine)
    finally:
        engine.dispose()
    console.print(
        f"store {_safe(url)}: {found.describe()}; this release's newest revision is {migrate.head()}",
        highlight=False,
        soft_wrap=True,
    )
    if found.kind == "unknown":
        raise typer.Exit(1)
