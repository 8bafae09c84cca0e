"""An emulated Bluetooth SIG pulse oximeter (Pulse Oximeter Service 0x1822).

It indicates spot-checks (0x2A5E), notifies a continuous stream (0x2A5F), answers PLX
Features (0x2A60) and, when spot-check storage is switched on, keeps the spot-checks no
collector took and hands them out through the Record Access Control Point (0x2A52) with
the only operator PLXS defines, "all records". Every payload is built with the driver's
own encoders (`device_drivers.codec.pulse_oximetry`), so the two sides cannot drift apart.

Scenarios: `normal()`, `desaturation()` (SpO2 86 %), `clock_never_set()` (no Current Time
service, so every spot-check says "device clock not set"), `with_storage()`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from bumble import gatt

from device_drivers.codec.pulse_oximetry import (
    FEATURE_PAI,
    FEATURE_SPOT_CHECK_STORAGE,
    FEATURE_SPOT_CHECK_TIMESTAMP,
    ContinuousMeasurement,
    DeviceSensorStatus,
    MeasurementStatus,
    PlxFeatures,
    SpO2PR,
    SpotCheckMeasurement,
    encode_continuous,
    encode_features,
    encode_spot_check,
    sfloat,
    timestamp,
)
from device_drivers.codec.racp import (
    OpCode,
    Operator,
    ResponseCode,
    encode_general_response,
    encode_number_of_records,
)
from device_drivers.codec.wire import Special
from simulators.ble.peripheral import AttError, EmulatedPeripheral

PLX_SERVICE: Final = 0x1822
SPOT_CHECK: Final = 0x2A5E
CONTINUOUS: Final = 0x2A5F
FEATURES: Final = 0x2A60
RACP: Final = 0x2A52

# ATT application errors of PLXS (and GLS): a RACP write while a procedure runs, or
# before the collector enabled RACP indications.
ATT_PROCEDURE_ALREADY_IN_PROGRESS: Final = 0x80
ATT_CCCD_IMPROPERLY_CONFIGURED: Final = 0x81
_ATT_INVALID_LENGTH: Final = 0x0D

FROM_STORAGE: Final = 1 << 9
# What a typical fingertip oximeter reports it can flag (measurement status bits 5-15
# except demo/testing/calibration; device and sensor status bits 0-15).
_STATUS_SUPPORT: Final = 0b1110_0011_1110_0000
_DSS_SUPPORT: Final = 0xFFFF
CLOCK_EPOCH: Final = datetime(2000, 1, 1)
"""Where an oximeter whose clock was never set starts counting (as in the vectors)."""

_REQUESTS: Final = {
    OpCode.REPORT_STORED_RECORDS,
    OpCode.DELETE_STORED_RECORDS,
    OpCode.ABORT_OPERATION,
    OpCode.REPORT_NUMBER_OF_STORED_RECORDS,
}


class PulseOximeter(EmulatedPeripheral):
    """A fingertip pulse oximeter.

    Args:
        spo2, pulse: what `measure_spot()` and `stream_continuous()` report by default.
        storage: spot-check storage with RACP; spot-checks no collector confirmed are kept.
        stored: spot-checks already in the memory (storage implied).
        spot_check, continuous: which measurement characteristics exist.
        features: PLX Features to report; by default what the options above imply.
    """

    def __init__(
        self,
        name: str = "CB-PLX",
        *,
        spo2: float = 97.0,
        pulse: float = 72.0,
        storage: bool = False,
        stored: Sequence[SpotCheckMeasurement] = (),
        spot_check: bool = True,
        continuous: bool = True,
        features: PlxFeatures | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("service_uuids", [PLX_SERVICE])
        kwargs.setdefault("clock_offset", timedelta(0))
        super().__init__(name=name, **kwargs)
        self.spo2 = spo2
        self.pulse = pulse
        self.storage = storage or bool(stored)
        self.has_spot_check = spot_check
        self.has_continuous = continuous
        self.stored: list[SpotCheckMeasurement] = list(stored)
        self.features = features or self.default_features()
        self.racp_requests: list[bytes] = []
        """Every RACP value written, in order, for tests to check what a collector asked."""
        self.report_interval = 0.0
        """Seconds between stored records in a report (a slow memory, or a long transfer)."""
        self._procedure: asyncio.Task[None] | None = None
        self._powered_on = self._now()

    # -- scenarios ---------------------------------------------------------------------

    @classmethod
    def normal(cls, **kwargs: Any) -> PulseOximeter:
        """A healthy adult at rest: SpO2 97 %, pulse 72 /min, clock settable."""
        return cls(spo2=97.0, pulse=72.0, **kwargs)

    @classmethod
    def desaturation(cls, **kwargs: Any) -> PulseOximeter:
        """A patient desaturating (COPD exacerbation, heart failure): SpO2 86 %, pulse 108."""
        return cls(spo2=86.0, pulse=108.0, **kwargs)

    @classmethod
    def clock_never_set(cls, **kwargs: Any) -> PulseOximeter:
        """No Current Time service and no clock: timestamps count from 2000-01-01 and every
        spot-check carries the "device clock not set" flag."""
        kwargs.setdefault("current_time", False)
        return cls(clock_offset=None, **kwargs)

    @classmethod
    def with_storage(
        cls, records: Sequence[SpotCheckMeasurement] | None = None, **kwargs: Any
    ) -> PulseOximeter:
        """Spot-check storage with three readings taken while no phone was near."""
        if records is None:
            records = [
                stored_spot_check(97.0, 66.0, datetime(2026, 1, 2, 3, 4, 5)),
                stored_spot_check(95.0, 71.0, datetime(2026, 1, 2, 9, 0, 0)),
                stored_spot_check(93.5, 80.0, datetime(2026, 1, 2, 21, 30, 0)),
            ]
        return cls(storage=True, stored=records, **kwargs)

    # -- GATT --------------------------------------------------------------------------

    def default_features(self) -> PlxFeatures:
        bits = FEATURE_SPOT_CHECK_TIMESTAMP | FEATURE_PAI
        if self.storage:
            bits |= FEATURE_SPOT_CHECK_STORAGE
        return PlxFeatures.of(
            bits,
            measurement_status_support=_STATUS_SUPPORT,
            device_sensor_status_support=_DSS_SUPPORT,
        )

    def build_services(self) -> list[gatt.Service]:
        p = gatt.Characteristic.Properties
        characteristics = []
        if self.has_spot_check:
            characteristics.append(self.characteristic(SPOT_CHECK, p.INDICATE))
        if self.has_continuous:
            characteristics.append(self.characteristic(CONTINUOUS, p.NOTIFY))
        characteristics.append(
            self.characteristic(FEATURES, p.READ, on_read=lambda: encode_features(self.features))
        )
        if self.storage:
            characteristics.append(
                self.characteristic(RACP, p.WRITE | p.INDICATE, on_write=self._on_racp)
            )
        return [gatt.Service(f"{PLX_SERVICE:04X}", characteristics)]

    # -- live measurements -------------------------------------------------------------

    def clock_reading(self) -> tuple[datetime, bool]:
        """(what the device clock shows, whether it was ever set)."""
        moment = self.device_time()
        if moment is None:
            return CLOCK_EPOCH + (self._now() - self._powered_on), False
        return moment, True

    def spot_check_record(
        self,
        spo2: float | Special | None = None,
        pulse: float | Special | None = None,
        *,
        measurement_status: int | None = None,
        device_sensor_status: int | None = None,
        pulse_amplitude_index: float | None = None,
    ) -> SpotCheckMeasurement:
        """A spot-check as this device would take it now."""
        stamp = None
        clock_not_set = False
        if self.features.supports(FEATURE_SPOT_CHECK_TIMESTAMP):
            moment, clock_set = self.clock_reading()
            stamp = timestamp(moment.replace(microsecond=0))
            clock_not_set = not clock_set
        return SpotCheckMeasurement(
            spo2=sfloat(self.spo2 if spo2 is None else spo2),
            pulse_rate=sfloat(self.pulse if pulse is None else pulse),
            timestamp=stamp,
            measurement_status=None
            if measurement_status is None
            else MeasurementStatus(measurement_status),
            device_sensor_status=None
            if device_sensor_status is None
            else DeviceSensorStatus(device_sensor_status),
            pulse_amplitude_index=None
            if pulse_amplitude_index is None
            else sfloat(pulse_amplitude_index),
            device_clock_not_set=clock_not_set,
        )

    async def measure_spot(
        self,
        spo2: float | Special | None = None,
        pulse: float | Special | None = None,
        **fields: Any,
    ) -> bool:
        """Take a spot-check and indicate it; True if a collector confirmed it.

        With storage on, a spot-check no collector confirmed is kept for a later RACP
        download, as real oximeters do when the phone is out of range.
        """
        record = self.spot_check_record(spo2, pulse, **fields)
        delivered = self.has_spot_check and await self.indicate(
            SPOT_CHECK, encode_spot_check(record)
        )
        if not delivered and self.storage:
            self.stored.append(record)
        return bool(delivered)

    async def stream_continuous(
        self,
        values: Iterable[tuple[float, float]] | None = None,
        interval: float = 1.0,
        **fields: Any,
    ) -> int:
        """Notify one continuous measurement per (SpO2, pulse) pair, `interval` s apart.

        `values` defaults to ten updates at the scenario's SpO2 and pulse. Returns how
        many notifications reached a subscribed collector.
        """
        pairs = list(values) if values is not None else [(self.spo2, self.pulse)] * 10
        sent = 0
        for index, (spo2, pulse) in enumerate(pairs):
            if index:
                await asyncio.sleep(interval)
            record = ContinuousMeasurement(
                normal=SpO2PR(sfloat(spo2), sfloat(pulse)),
                **fields,
            )
            sent += bool(await self.notify(CONTINUOUS, encode_continuous(record)))
        return sent

    # -- Record Access Control Point ---------------------------------------------------

    def _on_racp(self, value: bytes) -> None:
        self.racp_requests.append(value)
        if not self.is_subscribed(RACP):
            raise AttError(ATT_CCCD_IMPROPERLY_CONFIGURED)
        if not value:
            raise AttError(_ATT_INVALID_LENGTH)
        op, operator, operand = value[0], value[1] if len(value) > 1 else None, value[2:]
        busy = self._procedure is not None
        if op == OpCode.ABORT_OPERATION:
            self.spawn(self._abort(operator, operand))
            return
        if busy:
            raise AttError(ATT_PROCEDURE_ALREADY_IN_PROGRESS)
        # Answered after the Write Response, as a real device does (see `spawn`).
        self._procedure = self.spawn(self._procedure_task(op, operator, operand))

    async def _procedure_task(self, op: int, operator: int | None, operand: bytes) -> None:
        try:
            await self._run(op, operator, operand)
        finally:
            if self._procedure is asyncio.current_task():
                self._procedure = None

    async def _respond(self, op: int, code: ResponseCode) -> None:
        await self._answer(encode_general_response(op, code))

    async def _answer(self, value: bytes) -> None:
        # The procedure ends when its answer goes out: a collector may write its next
        # request as soon as the indication arrives, before this task sees the confirmation.
        if self._procedure is asyncio.current_task():
            self._procedure = None
        await self.indicate(RACP, value)

    async def _abort(self, operator: int | None, operand: bytes) -> None:
        if operator != Operator.NULL or operand:
            await self._respond(OpCode.ABORT_OPERATION, ResponseCode.INVALID_OPERATOR)
            return
        running, self._procedure = self._procedure, None
        if running is not None:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        await self._respond(OpCode.ABORT_OPERATION, ResponseCode.SUCCESS)

    async def _run(self, op: int, operator: int | None, operand: bytes) -> None:
        if op not in _REQUESTS:
            await self._respond(op, ResponseCode.OP_CODE_NOT_SUPPORTED)
            return
        if operator is None or operator == Operator.NULL or operator > max(Operator):
            await self._respond(op, ResponseCode.INVALID_OPERATOR)
            return
        if operator != Operator.ALL_RECORDS:
            # PLXS defines "all records" only; the others are valid RACP, not for PLXS.
            await self._respond(op, ResponseCode.OPERATOR_NOT_SUPPORTED)
            return
        if operand:
            await self._respond(op, ResponseCode.INVALID_OPERAND)
            return
        if op == OpCode.REPORT_NUMBER_OF_STORED_RECORDS:
            await self._answer(encode_number_of_records(len(self.stored)))
        elif op == OpCode.DELETE_STORED_RECORDS:
            self.stored.clear()
            await self._respond(op, ResponseCode.SUCCESS)
        elif not self.stored:
            await self._respond(op, ResponseCode.NO_RECORDS_FOUND)
        else:
            for index, record in enumerate(list(self.stored)):
                if index and self.report_interval:
                    await asyncio.sleep(self.report_interval)
                if not await self.indicate(SPOT_CHECK, encode_spot_check(as_stored(record))):
                    return  # the collector left; the records stay for next time
            await self._respond(op, ResponseCode.SUCCESS)


def as_stored(record: SpotCheckMeasurement) -> SpotCheckMeasurement:
    """The record as it comes out of storage: measurement status bit 9 set."""
    raw = record.measurement_status.raw if record.measurement_status is not None else 0
    return dataclasses.replace(record, measurement_status=MeasurementStatus(raw | FROM_STORAGE))


def stored_spot_check(spo2: float, pulse: float, moment: datetime | None) -> SpotCheckMeasurement:
    """A spot-check taken at `moment` (None: the clock was never set) for a memory."""
    return SpotCheckMeasurement(
        spo2=sfloat(spo2),
        pulse_rate=sfloat(pulse),
        timestamp=timestamp(moment),
        device_clock_not_set=moment is None,
    )


__all__ = [
    "ATT_CCCD_IMPROPERLY_CONFIGURED",
    "ATT_PROCEDURE_ALREADY_IN_PROGRESS",
    "CLOCK_EPOCH",
    "PulseOximeter",
    "as_stored",
    "stored_spot_check",
]
