"""Errors of the device layer, under the project's one hierarchy (`protocols.errors`).

A decoder raises exactly one type, `PayloadError`, whatever is wrong with the bytes; a
driver raises `DriverError` subclasses that say what a person can do about it.
"""

from __future__ import annotations

from protocols.errors import CareBridgeError


class PayloadError(CareBridgeError):
    """A characteristic value or advertisement does not follow its layout."""

    code = "malformed_payload"

    def __init__(self, reason: str, payload: bytes = b"") -> None:
        super().__init__(reason)
        self.payload = bytes(payload)

    def __str__(self) -> str:
        if self.payload:
            return f"{self.reason} (payload {self.payload.hex()})"
        return self.reason


class DriverError(CareBridgeError):
    """A device session failed; `reason` is meant for support staff to read."""

    code = "driver_error"


class DeviceNotFoundError(DriverError):
    """No advertising device matched within the scan time."""

    code = "device_not_found"


class ConnectionFailedError(DriverError):
    """The link could not be set up, or it dropped during a procedure."""

    code = "connection_failed"


class ProfileMismatchError(DriverError):
    """The device lacks a service or characteristic its profile requires."""

    code = "profile_mismatch"


class DeviceRejectedError(DriverError):
    """The device answered an ATT request with an error code (e.g. insufficient authentication)."""

    code = "device_rejected"

    def __init__(self, reason: str, att_error: int | None = None) -> None:
        super().__init__(reason)
        self.att_error = att_error


class ProcedureTimeoutError(DriverError):
    """The device stopped answering in the middle of a procedure."""

    code = "procedure_timeout"


class RecordAccessError(DriverError):
    """A record-access control point procedure ended with a failure response code."""

    code = "record_access_failed"

    def __init__(self, reason: str, response_code: int) -> None:
        super().__init__(reason)
        self.response_code = response_code
