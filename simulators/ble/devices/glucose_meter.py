"""An emulated Bluetooth glucose meter: the Glucose Service (0x1808) with its record store
and the Record Access Control Point, answering as GLS 1.0 and `ble_profiles.md` §2 say.

Payloads come from `device_drivers.codec.glucose`'s encoders, so the emulator and the
driver can only disagree where the profile leaves room (timing, order, faults).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from bumble import att, gatt
from bumble.device import Connection

from device_drivers.codec.glucose import (
    SAMPLE_LOCATION_CONTROL_SOLUTION,
    SAMPLE_TYPE_CONTROL_SOLUTION,
    Carbohydrate,
    GlucoseContext,
    GlucoseFeature,
    GlucoseMeasurement,
    GlucoseUnit,
    SensorStatus,
    encode_glucose_context,
    encode_glucose_feature,
    encode_glucose_measurement,
)
from device_drivers.codec.racp import (
    OpCode,
    Operator,
    RacpRequest,
    ResponseCode,
    decode_request,
    encode_general_response,
    encode_number_of_records,
)
from device_drivers.codec.wire import MedFloat, Special
from simulators.ble.peripheral import AttError, DeviceInformation, EmulatedPeripheral

GLUCOSE_SERVICE: Final = 0x1808
GLUCOSE_MEASUREMENT: Final = 0x2A18
GLUCOSE_CONTEXT: Final = 0x2A34
GLUCOSE_FEATURE: Final = 0x2A51
RACP: Final = 0x2A52

ATT_PROCEDURE_IN_PROGRESS: Final = 0x80
ATT_CCCD_IMPROPERLY_CONFIGURED: Final = 0x81

MEAL_PREPRANDIAL: Final = 1
MEAL_POSTPRANDIAL: Final = 2
MEAL_FASTING: Final = 3
MEAL_CASUAL: Final = 4
MEAL_BEDTIME: Final = 5

SAMPLE_CAPILLARY_WHOLE_BLOOD: Final = 1
LOCATION_FINGER: Final = 1

DEFAULT_FEATURE: Final = GlucoseFeature(
    low_battery_detection=True,
    sensor_malfunction_detection=True,
    sensor_sample_size=True,
    strip_insertion_error_detection=True,
    strip_type_error_detection=True,
    result_high_low_detection=True,
    temperature_high_low_detection=True,
    general_device_fault=True,
    time_fault=True,
)
ALL_OPERATORS: Final = frozenset(
    {
        Operator.ALL_RECORDS,
        Operator.LESS_THAN_OR_EQUAL_TO,
        Operator.GREATER_THAN_OR_EQUAL_TO,
        Operator.WITHIN_RANGE_INCLUSIVE,
        Operator.FIRST_RECORD,
        Operator.LAST_RECORD,
    }
)
BASIC_OPERATORS: Final = frozenset({Operator.ALL_RECORDS})
"""What the cheapest meters implement: everything else is "operator not supported"."""

DEFAULT_START: Final = datetime(2026, 1, 2, 7, 30)

_P = gatt.Characteristic.Properties
_REQUEST_OPS: Final = {
    int(OpCode.REPORT_STORED_RECORDS),
    int(OpCode.DELETE_STORED_RECORDS),
    int(OpCode.ABORT_OPERATION),
    int(OpCode.REPORT_NUMBER_OF_STORED_RECORDS),
}
_OPERATORS: Final = {int(operator) for operator in Operator}
_FILTERED: Final = {
    Operator.LESS_THAN_OR_EQUAL_TO,
    Operator.GREATER_THAN_OR_EQUAL_TO,
    Operator.WITHIN_RANGE_INCLUSIVE,
}
_UNSET: Final[Any] = object()


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record in the meter's memory: the measurement and, if any, its context."""

    measurement: GlucoseMeasurement
    context: GlucoseContext | None = None

    @property
    def sequence_number(self) -> int:
        return self.measurement.sequence_number


class _Refusal(Exception):
    """A RACP request the meter answers with a failure response code."""

    def __init__(self, op_code: int, code: ResponseCode) -> None:
        super().__init__(f"{op_code:#04x}: {code.name}")
        self.op_code = op_code
        self.code = code


class EmulatedGlucoseMeter(EmulatedPeripheral):
    """A glucose meter with a record memory, sequence numbers and RACP.

    Args:
        records: initial memory, oldest first (their sequence numbers are kept).
        feature: the Glucose Feature value it reports.
        supported_operators: RACP operators it implements; others are answered with
            "operator not supported", as many cheap meters do for anything but "all".
        with_context: whether it has the optional Measurement Context characteristic.
        record_interval: seconds between records of a report (0 = as fast as it can).
        first_sequence: sequence number of the next new record (wraps at 65535 → 0).
    """

    def __init__(
        self,
        name: str = "CB-Glucose",
        *,
        records: Iterable[StoredRecord] = (),
        feature: GlucoseFeature = DEFAULT_FEATURE,
        supported_operators: Iterable[Operator] = ALL_OPERATORS,
        with_context: bool = True,
        record_interval: float = 0.0,
        first_sequence: int = 1,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("service_uuids", [GLUCOSE_SERVICE])
        kwargs.setdefault(
            "device_information",
            DeviceInformation(
                manufacturer="CareBridge Simulated", model="CB-GLU-1", serial="GLU0000001"
            ),
        )
        super().__init__(name=name, **kwargs)
        self.records: list[StoredRecord] = list(records)
        self.feature = feature
        self.supported_operators = frozenset(supported_operators)
        self.with_context = with_context
        self.record_interval = record_interval
        self.next_sequence = (
            (self.records[-1].sequence_number + 1) % 65536 if self.records else first_sequence
        )
        self.raw_feature: bytes | None = None
        """Bytes to answer Glucose Feature reads with instead of `feature` (a broken meter)."""
        self.requests: list[bytes] = []
        """Every RACP write received, for tests to check what the collector asked."""
        self._procedure: asyncio.Task[None] | None = None
        self._disconnect_after_records: int | None = None
        self._records_since_armed = 0

    # -- scenarios ---------------------------------------------------------------------

    @classmethod
    def normal(cls, **kwargs: Any) -> EmulatedGlucoseMeter:
        """Three readings of an ordinary day, with meal contexts; the clock a few minutes off."""
        kwargs.setdefault("clock_offset", timedelta(minutes=-7))
        meter = cls(**kwargs)
        meter.add_reading(5.8, at=DEFAULT_START, meal=MEAL_FASTING)
        meter.add_reading(
            7.9, at=DEFAULT_START + timedelta(hours=2), meal=MEAL_POSTPRANDIAL, carbohydrate_g=60
        )
        meter.add_reading(6.4, at=DEFAULT_START + timedelta(hours=4, minutes=30))
        return meter

    @classmethod
    def hypoglycaemia(cls, **kwargs: Any) -> EmulatedGlucoseMeter:
        """The normal day, then 2.6 mmol/L before dinner: a hypo the cloud must alert on."""
        meter = cls.normal(**kwargs)
        meter.add_reading(2.6, at=DEFAULT_START + timedelta(hours=10), meal=MEAL_PREPRANDIAL)
        return meter

    @classmethod
    def clock_never_set(cls, **kwargs: Any) -> EmulatedGlucoseMeter:
        """Fresh from the box: no clock, so every record's base time is all zeros."""
        kwargs["clock_offset"] = None
        meter = cls(**kwargs)
        meter.add_reading(6.1, at=None, meal=MEAL_FASTING)
        meter.add_reading(8.2, at=None)
        return meter

    @classmethod
    def extremes(cls, **kwargs: Any) -> EmulatedGlucoseMeter:
        """A "HI", a "LO" and a control-solution test between two ordinary readings."""
        kwargs.setdefault("clock_offset", timedelta(0))
        meter = cls(**kwargs)
        meter.add_reading(6.0, at=DEFAULT_START)
        meter.add_reading(
            Special.POSITIVE_INFINITY,
            at=DEFAULT_START + timedelta(hours=1),
            status=SensorStatus(result_higher_than_device_can_process=True),
        )
        meter.add_reading(
            Special.NEGATIVE_INFINITY,
            at=DEFAULT_START + timedelta(hours=2),
            status=SensorStatus(result_lower_than_device_can_process=True),
        )
        meter.add_reading(
            5.5,
            at=DEFAULT_START + timedelta(hours=3),
            sample_type=SAMPLE_TYPE_CONTROL_SOLUTION,
            sample_location=SAMPLE_LOCATION_CONTROL_SOLUTION,
        )
        meter.add_reading(6.2, at=DEFAULT_START + timedelta(hours=4))
        return meter

    @classmethod
    def many_records(cls, count: int = 30, **kwargs: Any) -> EmulatedGlucoseMeter:
        """A month of readings, every other one with a context: for long downloads."""
        kwargs.setdefault("clock_offset", timedelta(0))
        meter = cls(**kwargs)
        for index in range(count):
            meter.add_reading(
                round(4.5 + (index % 9) * 0.5, 1),
                at=DEFAULT_START + timedelta(hours=8 * index),
                meal=(MEAL_PREPRANDIAL, None, MEAL_POSTPRANDIAL)[index % 3],
            )
        return meter

    # -- the record memory -------------------------------------------------------------

    def add_reading(
        self,
        glucose: float | Special,
        *,
        unit: str = "mmol/L",
        at: datetime | None = _UNSET,
        time_offset_minutes: int | None = None,
        meal: int | None = None,
        carbohydrate_g: float | None = None,
        status: SensorStatus | None = None,
        sample_type: int = SAMPLE_CAPILLARY_WHOLE_BLOOD,
        sample_location: int = LOCATION_FINGER,
        context: GlucoseContext | None = None,
    ) -> StoredRecord:
        """Store a new reading as the meter would after a test strip.

        `glucose` is in `unit` ("mmol/L" → sent in mol/L, "mg/dL" → in kg/L); `at` is the
        base time, by default the device clock now (None: the clock is not set).
        `meal`/`carbohydrate_g` build a context; `context` gives one outright.
        """
        if at is _UNSET:
            at = self.device_time()
        if at is not None:
            at = at.replace(microsecond=0)
        sequence = self.next_sequence
        self.next_sequence = (sequence + 1) % 65536
        if isinstance(glucose, Special):
            concentration = MedFloat.of(glucose)
            wire_unit = GlucoseUnit.MOL_PER_L if unit == "mmol/L" else GlucoseUnit.KG_PER_L
        elif unit == "mmol/L":
            concentration = MedFloat.number(float(Decimal(repr(glucose)).scaleb(-3)))
            wire_unit = GlucoseUnit.MOL_PER_L
        elif unit == "mg/dL":
            concentration = MedFloat.number(float(Decimal(repr(glucose)).scaleb(-5)))
            wire_unit = GlucoseUnit.KG_PER_L
        else:
            raise ValueError(f"a meter reports mmol/L or mg/dL, not {unit!r}")
        if context is None and (meal is not None or carbohydrate_g is not None):
            carbohydrate = None
            if carbohydrate_g is not None:
                grams = Decimal(repr(carbohydrate_g)).scaleb(-3)
                carbohydrate = Carbohydrate(1, MedFloat.number(float(grams)))
            context = GlucoseContext(sequence, meal=meal, carbohydrate=carbohydrate)
        elif context is not None:
            context = replace(context, sequence_number=sequence)
        measurement = GlucoseMeasurement(
            sequence_number=sequence,
            base_time=at,
            time_offset_minutes=time_offset_minutes,
            concentration=concentration,
            unit=wire_unit,
            sample_type=sample_type,
            sample_location=sample_location,
            sensor_status=status,
            context_follows=context is not None and self.with_context,
        )
        record = StoredRecord(measurement, context if self.with_context else None)
        self.records.append(record)
        return record

    @property
    def sequence_numbers(self) -> list[int]:
        return [record.sequence_number for record in self.records]

    # -- fault hooks -------------------------------------------------------------------

    def disconnect_after_records(self, count: int) -> None:
        """Drop the link after `count` more records were sent, mid-report."""
        self._disconnect_after_records = count
        self._records_since_armed = 0

    def clear_faults(self) -> None:
        super().clear_faults()
        self._disconnect_after_records = None
        self._records_since_armed = 0

    # -- GATT --------------------------------------------------------------------------

    def build_services(self) -> list[gatt.Service]:
        characteristics = [self.characteristic(GLUCOSE_MEASUREMENT, _P.NOTIFY)]
        if self.with_context:
            characteristics.append(self.characteristic(GLUCOSE_CONTEXT, _P.NOTIFY))
        characteristics += [
            self.characteristic(GLUCOSE_FEATURE, _P.READ, on_read=self._read_feature),
            self.characteristic(RACP, _P.WRITE | _P.INDICATE, on_write=self._on_racp),
        ]
        return [gatt.Service(f"{GLUCOSE_SERVICE:04X}", characteristics)]

    def _read_feature(self) -> bytes:
        if self.raw_feature is not None:
            return self.raw_feature
        return encode_glucose_feature(self.feature)

    def on_disconnection(self, connection: Connection, reason: int) -> None:
        procedure = self._procedure
        if procedure is not None and procedure is not asyncio.current_task():
            procedure.cancel()

    # -- Record Access Control Point ---------------------------------------------------

    @property
    def procedure_running(self) -> bool:
        return self._procedure is not None and not self._procedure.done()

    def _on_racp(self, value: bytes) -> None:
        self.requests.append(value)
        # GLS: no RACP procedure unless the collector can hear both the records and the
        # answer; a real meter refuses the write itself rather than report into the void.
        if not (self.is_subscribed(GLUCOSE_MEASUREMENT) and self.is_subscribed(RACP)):
            raise AttError(ATT_CCCD_IMPROPERLY_CONFIGURED)
        if not value:
            raise AttError(att.ErrorCode.INVALID_ATTRIBUTE_LENGTH)
        if value[0] == OpCode.ABORT_OPERATION:
            self._start(self._abort(value, self._procedure))
            return
        if self.procedure_running:
            raise AttError(ATT_PROCEDURE_IN_PROGRESS)
        try:
            request = self._parse(value)
        except _Refusal as refusal:
            self._start(self._answer(refusal.op_code, refusal.code))
            return
        self._start(self._serve(request))

    def _start(self, work: Any) -> None:
        self._procedure = self.spawn(work)

    def _parse(self, value: bytes) -> RacpRequest:
        """Validate in the order GLS checks: op code, operator, operand."""
        op_code = value[0]
        if op_code not in _REQUEST_OPS:
            raise _Refusal(op_code, ResponseCode.OP_CODE_NOT_SUPPORTED)
        if len(value) < 2:
            raise _Refusal(op_code, ResponseCode.INVALID_OPERATOR)
        operator_code, operand = value[1], value[2:]
        if operator_code == Operator.NULL or operator_code not in _OPERATORS:
            raise _Refusal(op_code, ResponseCode.INVALID_OPERATOR)
        operator = Operator(operator_code)
        if operator not in self.supported_operators:
            raise _Refusal(op_code, ResponseCode.OPERATOR_NOT_SUPPORTED)
        if operator not in _FILTERED:
            if operand:
                raise _Refusal(op_code, ResponseCode.INVALID_OPERAND)
            return decode_request(value)
        if not operand:
            raise _Refusal(op_code, ResponseCode.INVALID_OPERAND)
        if operand[0] == 0x02:
            # User-facing time filtering is an optional feature this meter lacks.
            raise _Refusal(op_code, ResponseCode.OPERAND_NOT_SUPPORTED)
        width = 5 if operator == Operator.WITHIN_RANGE_INCLUSIVE else 3
        if operand[0] != 0x01 or len(operand) != width:
            raise _Refusal(op_code, ResponseCode.INVALID_OPERAND)
        request = decode_request(value)
        low, high = request.sequence_range()
        if low is not None and high is not None and low > high:
            raise _Refusal(op_code, ResponseCode.INVALID_OPERAND)
        return request

    def _select(self, request: RacpRequest) -> list[StoredRecord]:
        records = self.records
        if not records:
            return []
        if request.operator == Operator.FIRST_RECORD:
            return records[:1]
        if request.operator == Operator.LAST_RECORD:
            return records[-1:]
        low, high = request.sequence_range()
        return [
            record
            for record in records
            if (low is None or record.sequence_number >= low)
            and (high is None or record.sequence_number <= high)
        ]

    async def _serve(self, request: RacpRequest) -> None:
        selected = self._select(request)
        op_code = request.op_code
        if op_code == OpCode.REPORT_NUMBER_OF_STORED_RECORDS:
            await self._indicate_answer(encode_number_of_records(len(selected)))
            return
        if not selected:
            await self._answer(op_code, ResponseCode.NO_RECORDS_FOUND)
            return
        if op_code == OpCode.DELETE_STORED_RECORDS:
            doomed = {id(record) for record in selected}
            self.records = [record for record in self.records if id(record) not in doomed]
            await self._answer(op_code, ResponseCode.SUCCESS)
            return
        for record in selected:
            if not await self._send(record):
                return  # the collector left; nobody to answer
            await asyncio.sleep(self.record_interval)
        await self._answer(op_code, ResponseCode.SUCCESS)

    async def _send(self, record: StoredRecord) -> bool:
        payload = encode_glucose_measurement(record.measurement)
        if not await self.notify(GLUCOSE_MEASUREMENT, payload):
            return False
        if record.context is not None and self.with_context:
            await self.notify(GLUCOSE_CONTEXT, encode_glucose_context(record.context))
        self._records_since_armed += 1
        limit = self._disconnect_after_records
        if limit is not None and self._records_since_armed >= limit:
            self._disconnect_after_records = None
            await self.disconnect()
            return False
        return True

    async def _abort(self, value: bytes, running: asyncio.Task[None] | None) -> None:
        if value[1:2] != bytes([Operator.NULL]):
            await self._answer(OpCode.ABORT_OPERATION, ResponseCode.INVALID_OPERATOR)
            return
        if value[2:]:
            await self._answer(OpCode.ABORT_OPERATION, ResponseCode.INVALID_OPERAND)
            return
        if running is not None and not running.done():
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        await self._answer(OpCode.ABORT_OPERATION, ResponseCode.SUCCESS)

    async def _answer(self, op_code: int, code: ResponseCode) -> None:
        await self._indicate_answer(encode_general_response(op_code, code))

    async def _indicate_answer(self, payload: bytes) -> None:
        await self.indicate(RACP, payload)


__all__ = [
    "ALL_OPERATORS",
    "BASIC_OPERATORS",
    "DEFAULT_FEATURE",
    "EmulatedGlucoseMeter",
    "StoredRecord",
]
