"""Settings an operator got wrong, told in the operator's words: the environment variable,
what it held, what it must be — not a traceback naming a Python field."""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from protocols.errors import CareBridgeError

# A value that may carry a secret is never repeated back (a database URL holds a password).
_SECRET_PARTS = ("password", "secret", "token", "url")


class SettingsError(CareBridgeError):
    """The process's settings cannot be read from its environment."""

    code = "settings_invalid"


def settings_error(exc: ValidationError, settings: type[BaseSettings]) -> SettingsError:
    """`exc`, raised while reading `settings` from the environment, as one line per
    variable: `CAREBRIDGE_MQTT_PORT='x': Input should be a valid integer, …`."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    problems = []
    for error in exc.errors():
        field = "_".join(str(part) for part in error["loc"])
        variable = f"{prefix}{field}".upper()
        given = error.get("input")
        if isinstance(given, str | int | float) and not any(
            part in field.lower() for part in _SECRET_PARTS
        ):
            problems.append(f"{variable}={given!r}: {error['msg']}")
        else:
            problems.append(f"{variable}: {error['msg']}")
    return SettingsError("; ".join(problems))
