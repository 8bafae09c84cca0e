"""A wrong setting is reported as the environment variable the operator set, with what it
held (unless it may hold a secret) and what it must be."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from protocols.settings_errors import SettingsError, settings_error


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CB_TEST_", extra="ignore")

    port: int = 1
    linger_ms: int = Field(default=20, ge=0)
    database_url: str = Field(default="postgresql://", min_length=12)
    mqtt_password: str | None = Field(default=None, min_length=8)


def _error(monkeypatch: pytest.MonkeyPatch, **env: str) -> SettingsError:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        _Settings()
    return settings_error(raised.value, _Settings)


def test_each_wrong_variable_is_named_with_its_value_and_rule(monkeypatch):
    error = _error(monkeypatch, CB_TEST_PORT="eighty", CB_TEST_LINGER_MS="-5")

    assert error.code == "settings_invalid"
    assert error.reason == (
        "CB_TEST_PORT='eighty': Input should be a valid integer, unable to parse string as an"
        " integer; CB_TEST_LINGER_MS='-5': Input should be greater than or equal to 0"
    )


def test_values_that_may_hold_a_secret_are_not_repeated(monkeypatch):
    error = _error(monkeypatch, CB_TEST_DATABASE_URL="pg://s3", CB_TEST_MQTT_PASSWORD="s3cret")

    assert "s3" not in error.reason
    assert error.reason.startswith("CB_TEST_DATABASE_URL: String should have at least 12")
    assert "; CB_TEST_MQTT_PASSWORD: String should have at least 8" in error.reason
