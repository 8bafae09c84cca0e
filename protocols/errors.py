"""The one error hierarchy of carebridge.

Every error the project raises on purpose derives from `CareBridgeError` and carries a
machine-readable `code`, so a dead-letter record, an API response and a log line all name
the same reason in the same words.
"""

from __future__ import annotations


class CareBridgeError(Exception):
    """Base of every deliberate carebridge error."""

    code: str = "error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownUnitError(CareBridgeError):
    """A value came in a unit that cannot be converted to the metric's canonical unit."""

    code = "unknown_unit"


class ImplausibleValueError(CareBridgeError):
    """A value no human can have (or a device error disguised as a value)."""

    code = "implausible_value"


class MalformedMessageError(CareBridgeError):
    """A message is not JSON, or not a JSON object."""

    code = "malformed_message"


class UnsupportedVersionError(CareBridgeError):
    """A message declares a protocol version this build does not speak."""

    code = "unsupported_version"


class SchemaViolationError(CareBridgeError):
    """A message or reading does not match its schema."""

    code = "schema_violation"


class OversizedMessageError(CareBridgeError):
    """A message is larger than any valid message of its kind can be."""

    code = "message_too_large"
