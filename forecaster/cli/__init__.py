"""The ``forecaster`` command line (typer + rich), one module per command group.

``app`` (``forecaster.cli.app``) holds the shared options and helpers; each command module registers its commands on
it when imported here: ``forecast``/``backtest`` (``forecast``), ``demo``, ``simulate``, ``rightsize``, ``controller``,
``serve``, ``keda-scaler`` (``keda``), ``db``. File reading and writing is ``files``; option parsers shared by the
operations commands are ``inputs``; tables are ``tables``. Entry point ``main()`` (``[project.scripts] forecaster``).
"""

# Importing a command module registers its commands on ``app``, in the order ``--help`` lists them.
from forecaster.cli import forecast  # noqa: F401  (forecast and backtest first)

# isort: split
from forecaster.cli import controller, db, demo, keda, model, rightsize, serve, simulate  # noqa: F401
from forecaster.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
