from __future__ import annotations

from protocols.errors import CareBridgeError


class StackError(CareBridgeError):
    """A local service could not be started or stopped."""

    code = "stack_error"
