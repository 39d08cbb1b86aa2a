"""``forecaster serve`` and ``forecaster controller`` take ``--dask-address`` / ``--dask-workers`` (issue 21): one of
the two (exit 2 before anything starts), named in the help with the setting; ``serve``'s options override the
``FORECASTER_DASK_*`` settings (``with_dask``)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from forecaster.cli import app
from forecaster.cli.serve import with_dask
from forecaster.contracts.errors import InputError
from forecaster.runtime.settings import ServiceSettings


@pytest.mark.parametrize("command", ["serve", "controller"])
def test_both_options_is_bad_input(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--dask-address", "tcp://127.0.0.1:1", "--dask-workers", "2"])
    assert result.exit_code == 2, result.output
    assert "not both" in result.output


@pytest.mark.parametrize("command", ["serve", "controller"])
def test_help_names_the_options_and_the_setting(command: str) -> None:
    out = CliRunner().invoke(app, [command, "--help"], terminal_width=200).output
    assert "--dask-address" in out and "--dask-workers" in out and "FORECASTER_DASK_ADDRESS" in out


def test_serve_options_override_the_settings() -> None:
    local = ServiceSettings(dask_workers=3)
    assert with_dask(local, "tcp://s:8786", None).dask_address == "tcp://s:8786"
    assert with_dask(local, "tcp://s:8786", None).dask_workers == 0
    remote = ServiceSettings(dask_address="tcp://s:8786")
    assert (with_dask(remote, None, 2).dask_address, with_dask(remote, None, 2).dask_workers) == (None, 2)
    assert with_dask(remote, None, None) is remote
    with pytest.raises(InputError, match="not both"):
        with_dask(remote, "tcp://t:8786", 2)
