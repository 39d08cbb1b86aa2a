"""``forecaster forecast/backtest --dask-address | --dask-workers``: one of the two, parsed before any fit, and
``FORECASTER_DASK_ADDRESS`` read as the address (no cluster is started here: the fit itself is in
``test_dask_executor``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from forecaster.cli import app
from forecaster.cli.app import dask_executor
from forecaster.contracts.errors import InputError


@pytest.mark.parametrize("command", ["forecast", "backtest"])
def test_both_options_is_bad_input(command: str, tmp_path: Path) -> None:
    history = tmp_path / "h.csv"
    history.write_text("unique_id,ds,y\na,2024-01-01T00:00Z,1\n")
    result = CliRunner().invoke(
        app, [command, "--input", str(history), "--dask-address", "tcp://127.0.0.1:1", "--dask-workers", "2"]
    )
    assert result.exit_code == 2
    assert "not both" in result.output


def test_no_option_means_the_local_pool() -> None:
    with dask_executor(None, None) as ex:
        assert ex is None
    with pytest.raises(InputError, match="not both"), dask_executor("tcp://x:1", 2):
        pass


@pytest.mark.parametrize("command", ["forecast", "backtest"])
def test_help_names_the_options_and_the_setting(command: str) -> None:
    out = CliRunner().invoke(app, [command, "--help"], terminal_width=200).output
    assert "--dask-address" in out and "--dask-workers" in out and "FORECASTER_DASK_ADDRESS" in out
