"""``ServiceSettings``: defaults, environment variables, mounted Secret files (env wins), validation naming the
variable, and the API settings built from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecaster.api.config import READ, WRITE, api_settings
from forecaster.contracts.errors import InputError
from forecaster.runtime.settings import ServiceSettings


def test_svc_settings_defaults() -> None:
    s = ServiceSettings()
    assert s.store_url == "sqlite:///forecaster.db"
    assert (s.refresh_interval_s, s.refit_interval_s, s.accuracy_interval_s) == (300.0, 86_400.0, 3_600.0)
    assert s.drift_multiple == 3.0 and s.levels == (80, 95) and s.lead_time_s == 420.0
    assert ServiceSettings.from_env({}) == s


def test_svc_settings_from_env_parses_every_kind_of_field() -> None:
    s = ServiceSettings.from_env({
        "FORECASTER_STORE_URL": "postgresql+psycopg://u:p@db/f",
        "FORECASTER_REFRESH_INTERVAL_S": "60",
        "FORECASTER_DRIFT_MIN_POINTS": "3",
        "FORECASTER_CONTROLLER_ENABLED": "yes",
        "FORECASTER_LEVELS": "95,50",
        "FORECASTER_WORKLOADS_FILE": "/etc/forecaster/workloads.yaml",
        "FORECASTER_MODEL_OPTIONS": '{"n_windows": 2, "members": ["seasonal", "lgbm"]}',
        "FORECASTER_READ_TOKENS": "r1, r2",
        "UNRELATED": "x",
    })
    assert s.store_url == "postgresql+psycopg://u:p@db/f" and s.refresh_interval_s == 60.0
    assert s.drift_min_points == 3 and s.controller_enabled is True and s.levels == (95, 50)
    assert s.workloads_file == Path("/etc/forecaster/workloads.yaml")
    assert s.model_options == {"n_windows": 2, "members": ["seasonal", "lgbm"]}
    assert s.read_tokens == ("r1", "r2") and s.write_tokens == ()


def test_svc_settings_secret_files_are_read_and_env_wins(tmp_path: Path) -> None:
    (tmp_path / "store_url").write_text("postgresql+psycopg://secret@db/f\n")
    (tmp_path / "write_tokens").write_text("w1\nw2\n")
    (tmp_path / "read_tokens").write_text("from-file")
    env = {"FORECASTER_SECRETS_DIR": str(tmp_path), "FORECASTER_READ_TOKENS": "from-env"}
    s = ServiceSettings.from_env(env)
    assert s.store_url == "postgresql+psycopg://secret@db/f"
    assert s.write_tokens == ("w1", "w2") and s.read_tokens == ("from-env",)
    api = api_settings(s)
    assert api.tokens["w1"] == frozenset({READ, WRITE}) and api.tokens["from-env"] == frozenset({READ})


@pytest.mark.parametrize(
    ("env", "match"),
    [({"FORECASTER_REFRESH_INTERVAL_S": "soon"}, "FORECASTER_REFRESH_INTERVAL_S"),
     ({"FORECASTER_REFRESH_INTERVAL_S": "0"}, "refresh_interval_s"),
     ({"FORECASTER_CONTROLLER_ENABLED": "maybe"}, "FORECASTER_CONTROLLER_ENABLED"),
     ({"FORECASTER_LEVELS": "80,100"}, "levels"),
     ({"FORECASTER_MODEL_OPTIONS": "[1]"}, "FORECASTER_MODEL_OPTIONS"),
     ({"FORECASTER_SECRETS_DIR": "/nonexistent/forecaster"}, "FORECASTER_SECRETS_DIR")],
    ids=["not-a-number", "zero-interval", "not-a-bool", "level-100", "options-not-object", "no-secret-dir"],
)
def test_svc_settings_bad_values_name_the_variable(env: dict[str, str], match: str) -> None:
    with pytest.raises(InputError, match=match):
        ServiceSettings.from_env(env)
