"""The contract every part of carebridge shares: metrics, units, readings, MQTT messages.

This package imports no other carebridge package, so an edge, the cloud, the app and a
third-party gateway can all depend on it alone.
"""

from protocols.errors import (
    CareBridgeError,
    ImplausibleValueError,
    MalformedMessageError,
    SchemaViolationError,
    UnknownUnitError,
    UnsupportedVersionError,
)
from protocols.metrics import METRICS, Metric, MetricInfo
from protocols.reading import (
    BodyPosition,
    DeviceKind,
    DeviceRef,
    MealContext,
    MeasurementContext,
    MeasurementSite,
    Reading,
    Source,
    StatusFlag,
)

__all__ = [
    "METRICS",
    "BodyPosition",
    "CareBridgeError",
    "DeviceKind",
    "DeviceRef",
    "ImplausibleValueError",
    "MalformedMessageError",
    "MealContext",
    "MeasurementContext",
    "MeasurementSite",
    "Metric",
    "MetricInfo",
    "Reading",
    "SchemaViolationError",
    "Source",
    "StatusFlag",
    "UnknownUnitError",
    "UnsupportedVersionError",
]
