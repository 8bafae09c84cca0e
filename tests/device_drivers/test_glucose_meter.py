"""The glucose meter driver against the emulated meter, through the real bleak API, the
bumble-backed bleak backend and the simulated radio: discovery, Device Information, the
clock, RACP downloads (all, after N, nothing new, fallback), contexts joined by sequence
number, resuming after a dropped link, and ATT errors as driver errors.

The emulator's own RACP answers (operator and operand checks, delete, abort) are checked
here too, through the driver layer's `DeviceSession` and `RecordAccess`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import pytest
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from device_drivers import uuids
from device_drivers.codec.glucose import GlucoseMeasurement, GlucoseUnit, decode_glucose_measurement
from device_drivers.codec.racp import (
    GeneralResponse,
    NumberOfRecords,
    OpCode,
    Operator,
    RacpRequest,
    ResponseCode,
    decode_response,
)
from device_drivers.codec.wire import MedFloat
from device_drivers.errors import (
    ConnectionFailedError,
    DeviceRejectedError,
    ProcedureTimeoutError,
    ProfileMismatchError,
    RecordAccessError,
)
from device_drivers.glucose_meter import GlucoseMeterDriver
from device_drivers.measurement import Measurement
from device_drivers.record_access import RecordAccess
from device_drivers.session import DeviceSession
from protocols.metrics import Metric
from protocols.reading import DeviceKind, MealContext, StatusFlag
from simulators.ble.bleak_bumble import BumbleClient, BumbleScanner
from simulators.ble.devices.glucose_meter import (
    BASIC_OPERATORS,
    DEFAULT_START,
    EmulatedGlucoseMeter,
    StoredRecord,
)
from simulators.ble.peripheral import EmulatedPeripheral
from simulators.ble.radio import SimulatedRadio

NOW = datetime(2026, 3, 1, 12, 0, 0)
ADDRESS = "C0:DE:00:00:18:08"


def _stray_tasks() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


@pytest.fixture
async def radio() -> AsyncIterator[SimulatedRadio]:
    before = _stray_tasks()
    async with SimulatedRadio() as radio:
        yield radio
    leaked = [task for task in _stray_tasks() - before if not task.done()]
    assert not leaked, f"tasks left running after the radio closed: {leaked}"


async def find_meter() -> BLEDevice:
    def advertises_glucose(_device: BLEDevice, advertisement: AdvertisementData) -> bool:
        return GlucoseMeterDriver.service_uuid in advertisement.service_uuids

    device = await BleakScanner.find_device_by_filter(
        advertises_glucose,
        timeout=2.0,
        service_uuids=[GlucoseMeterDriver.service_uuid],
        backend=BumbleScanner,
    )
    assert device is not None, "the meter was not found by its service UUID"
    return device


@asynccontextmanager
async def connected(**driver_kwargs: float) -> AsyncIterator[GlucoseMeterDriver]:
    async with DeviceSession.connect(await find_meter(), backend=BumbleClient) as session:
        yield GlucoseMeterDriver(session, **driver_kwargs)


async def download(
    driver: GlucoseMeterDriver, *, after_sequence: int | None = None
) -> list[Measurement]:
    return [m async for m in driver.measurements(after_sequence=after_sequence)]


def mmol(measurement: Measurement) -> float:
    (observation,) = measurement.observations
    assert observation.metric is Metric.GLUCOSE
    return observation.value


def sequences(measurements: list[Measurement]) -> list[int | None]:
    return [measurement.sequence_number for measurement in measurements]


async def test_discover_prepare_and_download_every_record(radio: SimulatedRadio) -> None:
    meter = await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS))
    assert meter.clock_offset == timedelta(minutes=-7)  # a meter clock a little behind

    async with connected() as driver:
        await driver.prepare(NOW)
        got = await download(driver)
        ref = driver.session.device_ref(GlucoseMeterDriver.kind)

    assert driver.information is not None
    assert driver.information.model == "CB-GLU-1"
    assert ref.serial == "GLU0000001"
    assert ref.kind is DeviceKind.GLUCOSE_METER
    assert driver.clock_was_set
    clock = meter.device_time()
    assert clock is not None and abs(clock - NOW) < timedelta(seconds=5)
    assert driver.feature is not None and driver.feature.result_high_low_detection

    assert sequences(got) == [1, 2, 3]
    assert [mmol(m) for m in got] == pytest.approx([5.8, 7.9, 6.4])
    assert [m.device_time for m in got] == [
        DEFAULT_START,
        DEFAULT_START + timedelta(hours=2),
        DEFAULT_START + timedelta(hours=4, minutes=30),
    ]
    assert all(m.clock_set for m in got)
    assert [m.context.meal for m in got] == [MealContext.FASTING, MealContext.AFTER_MEAL, None]
    assert got[1].details["carbohydrate"]["grams"] == 60.0
    assert meter.requests == [bytes.fromhex("0101")]
    assert driver.last_sequence == 3


async def test_discover_lists_the_meter_by_its_service(radio: SimulatedRadio) -> None:
    await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS))
    found = await BleakScanner.discover(
        timeout=0.3, service_uuids=[uuids.GLUCOSE_SERVICE], backend=BumbleScanner
    )
    assert [device.address for device in found] == [ADDRESS]


async def test_download_after_a_sequence_number(radio: SimulatedRadio) -> None:
    meter = await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS))
    async with connected() as driver:
        await driver.prepare(NOW)
        got = await download(driver, after_sequence=1)
        assert await driver.record_count() == 3

    assert sequences(got) == [2, 3]
    assert meter.requests[0] == bytes.fromhex("0103010200")


async def test_no_new_records_ends_normally(radio: SimulatedRadio) -> None:
    meter = await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS))
    async with connected() as driver:
        await driver.prepare(NOW)
        assert await download(driver, after_sequence=3) == []
    assert meter.requests == [bytes.fromhex("0103010400")]


async def test_an_empty_meter_has_nothing(radio: SimulatedRadio) -> None:
    await radio.add(EmulatedGlucoseMeter(address=ADDRESS))
    async with connected() as driver:
        await driver.prepare(NOW)
        assert await download(driver) == []
        assert driver.last_sequence is None


async def test_hypoglycaemia_reaches_the_edge_as_2_6(radio: SimulatedRadio) -> None:
    await radio.add(EmulatedGlucoseMeter.hypoglycaemia(address=ADDRESS))
    async with connected() as driver:
        await driver.prepare(NOW)
        got = await download(driver)

    hypo = got[-1]
    assert sequences(got) == [1, 2, 3, 4]
    assert mmol(hypo) == pytest.approx(2.6)
    assert hypo.observations[0].device_value == pytest.approx(0.0026)
    assert hypo.observations[0].device_unit == "mol/L"
    assert hypo.context.meal is MealContext.BEFORE_MEAL


async def test_a_meter_whose_clock_was_never_set(radio: SimulatedRadio) -> None:
    meter = await radio.add(EmulatedGlucoseMeter.clock_never_set(address=ADDRESS))
    assert meter.device_time() is None
    async with connected() as driver:
        await driver.prepare(NOW)
        old = await download(driver)
        meter.add_reading(5.9)  # taken after the clock was set
        new = await download(driver, after_sequence=2)

    assert [(m.device_time, m.clock_set) for m in old] == [(None, False), (None, False)]
    assert old[0].context.meal is MealContext.FASTING
    (fresh,) = new
    assert fresh.clock_set
    assert fresh.device_time is not None and abs(fresh.device_time - NOW) < timedelta(seconds=5)


async def test_hi_lo_and_control_solution(radio: SimulatedRadio) -> None:
    await radio.add(EmulatedGlucoseMeter.extremes(address=ADDRESS))
    async with connected() as driver:
        await driver.prepare(NOW)
        got = await download(driver)

    # The control-solution test (#4) checks the meter, not the patient: held back.
    assert sequences(got) == [1, 2, 3, 5]
    assert driver.last_sequence == 5
    hi, lo = got[1], got[2]
    assert (mmol(hi), StatusFlag.VALUE_HI in hi.flags) == (33.3, True)
    assert (mmol(lo), StatusFlag.VALUE_LO in lo.flags) == (1.1, True)


async def test_a_dropped_link_mid_download_resumes_after_the_last_stored(
    radio: SimulatedRadio,
) -> None:
    meter = await radio.add(EmulatedGlucoseMeter.many_records(30, address=ADDRESS))
    meter.disconnect_after_records(12)
    stored: list[Measurement] = []

    async with connected() as driver:
        await driver.prepare(NOW)
        with pytest.raises(ConnectionFailedError):
            async for measurement in driver.measurements():
                stored.append(measurement)  # the edge stores each before asking for more
    assert sequences(stored) == list(range(1, 13))
    # The last one carried a context (every third record has none): joined, not lost.
    assert stored[-1].context.meal is MealContext.AFTER_MEAL

    async with connected() as driver:
        await driver.prepare(NOW)
        async for measurement in driver.measurements(after_sequence=stored[-1].sequence_number):
            stored.append(measurement)

    assert sequences(stored) == meter.sequence_numbers == list(range(1, 31))
    expected = [record.measurement.concentration for record in meter.records]
    assert [mmol(m) for m in stored] == pytest.approx(
        [c.value * 1000 for c in expected if c is not None and c.value is not None]
    )


async def test_operator_not_supported_falls_back_to_all_and_skips_old_records(
    radio: SimulatedRadio,
) -> None:
    meter = await radio.add(
        EmulatedGlucoseMeter.normal(address=ADDRESS, supported_operators=BASIC_OPERATORS)
    )
    async with connected() as driver:
        await driver.prepare(NOW)
        got = await download(driver, after_sequence=1)

    assert sequences(got) == [2, 3]
    assert meter.requests == [bytes.fromhex("0103010200"), bytes.fromhex("0101")]


async def test_after_the_last_sequence_number_before_a_wrap_asks_for_all(
    radio: SimulatedRadio,
) -> None:
    meter = EmulatedGlucoseMeter(address=ADDRESS, first_sequence=65534, clock_offset=timedelta(0))
    for value in (5.0, 5.5, 6.0):
        meter.add_reading(value)
    await radio.add(meter)
    async with connected() as driver:
        await driver.prepare(NOW)
        got = await download(driver, after_sequence=65535)

    assert meter.requests == [bytes.fromhex("0101")]
    assert sequences(got) == [65534, 65535, 0]


async def test_racp_before_subscribing_is_a_clear_att_error(radio: SimulatedRadio) -> None:
    meter = await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS))
    async with connected() as driver:
        with pytest.raises(DeviceRejectedError, match="prepare") as caught:
            await download(driver)  # no prepare(): 0x2A18 notifications are off
    assert caught.value.att_error == 0x81
    assert meter.requests == [bytes.fromhex("0101")]


@pytest.mark.parametrize(("code", "reason"), [(0x80, "busy"), (0x05, "0x05")])
async def test_other_racp_write_errors(radio: SimulatedRadio, code: int, reason: str) -> None:
    meter = await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS))
    meter.fail_writes(0x2A52, code)
    async with connected() as driver:
        await driver.prepare(NOW)
        with pytest.raises(DeviceRejectedError, match=reason) as caught:
            await download(driver)
    assert caught.value.att_error == code


async def test_a_refused_feature_read_fails_prepare(radio: SimulatedRadio) -> None:
    meter = await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS))
    meter.fail_reads(0x2A51, 0x05)  # insufficient authentication: not bonded
    async with connected() as driver:
        with pytest.raises(DeviceRejectedError, match="glucose feature") as caught:
            await driver.prepare(NOW)
    assert caught.value.att_error == 0x05


async def test_a_malformed_feature_is_kept_and_the_download_goes_on(
    radio: SimulatedRadio,
) -> None:
    meter = await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS))
    meter.raw_feature = b"\x01"
    async with connected() as driver:
        await driver.prepare(NOW)
        got = await download(driver)
    assert driver.feature is None
    assert [str(error) for error in driver.rejected] == [
        "glucose feature: features needs 2 byte(s) at offset 0, only 1 left (payload 01)"
    ]
    assert sequences(got) == [1, 2, 3]


async def test_a_malformed_record_is_kept_and_the_others_arrive(radio: SimulatedRadio) -> None:
    meter = await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS))
    meter.malform_next(0x2A18, lambda payload: payload[:5])
    meter.malform_next(0x2A34, b"\x02")
    async with connected() as driver:
        await driver.prepare(NOW)
        got = await download(driver)
    # #1 and its context were garbled; #2 still gets its own context.
    assert sequences(got) == [2, 3]
    assert got[0].context.meal is MealContext.AFTER_MEAL
    assert len(driver.rejected) == 2


async def test_a_context_that_never_comes_is_not_waited_for_long(radio: SimulatedRadio) -> None:
    lonely = GlucoseMeasurement(
        1,
        DEFAULT_START,
        concentration=MedFloat.number(0.0061),
        unit=GlucoseUnit.MOL_PER_L,
        sample_type=1,
        sample_location=1,
        context_follows=True,
    )
    meter = EmulatedGlucoseMeter(address=ADDRESS, records=[StoredRecord(lonely)])
    meter.add_reading(6.6, meal=1)
    await radio.add(meter)
    # The second record's context is re-numbered: it belongs to no measurement.
    meter.malform_next(0x2A34, lambda payload: payload[:1] + b"\x63\x00" + payload[3:])
    async with connected(context_wait=0.05) as driver:
        await driver.prepare(NOW)
        got = await download(driver)
    assert sequences(got) == [1, 2]
    assert [m.context.meal for m in got] == [None, None]


async def test_a_meter_without_the_context_characteristic(radio: SimulatedRadio) -> None:
    meter = await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS, with_context=False))
    async with connected() as driver:
        await driver.prepare(NOW)
        assert not driver.session.has(uuids.GLUCOSE_MEASUREMENT_CONTEXT)
        got = await download(driver)
    assert sequences(got) == [1, 2, 3]
    assert all(m.context.meal is None for m in got)
    assert all(not record.measurement.context_follows for record in meter.records)


async def test_a_meter_that_falls_silent_mid_report_times_out(radio: SimulatedRadio) -> None:
    await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS, record_interval=0.5))
    stored: list[Measurement] = []
    async with connected() as driver:
        await driver.prepare(NOW)
        with pytest.raises(ProcedureTimeoutError, match="nothing"):
            async for measurement in driver.measurements(idle_timeout=0.1):
                stored.append(measurement)
    assert sequences(stored) == [1]


async def test_a_device_without_the_glucose_service(radio: SimulatedRadio) -> None:
    await radio.add(
        EmulatedPeripheral(name="CB-Other", address=ADDRESS, service_uuids=[0x1808])
    )
    async with connected() as driver:
        with pytest.raises(ProfileMismatchError, match="glucose measurement"):
            await driver.prepare(NOW)


# -- the emulator's RACP, through the driver layer ----------------------------------------


class RawRacp:
    """Subscribed like a collector; sends arbitrary RACP bytes and returns the answer."""

    def __init__(self, session: DeviceSession) -> None:
        self.session = session
        self.records: list[bytes] = []
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()
        self.first_record = asyncio.Event()

    def _on_record(self, data: bytes) -> None:
        self.records.append(data)
        self.first_record.set()

    async def start(self) -> None:
        await self.session.subscribe(uuids.GLUCOSE_MEASUREMENT, "measurement", self._on_record)
        await self.session.subscribe(
            uuids.RECORD_ACCESS_CONTROL_POINT, "racp", self.answers.put_nowait
        )

    async def send(self, data: bytes) -> None:
        await self.session.write(uuids.RECORD_ACCESS_CONTROL_POINT, data, "racp")

    async def ask(self, data: bytes) -> bytes:
        await self.send(data)
        async with asyncio.timeout(2):
            return await self.answers.get()


@asynccontextmanager
async def raw_racp() -> AsyncIterator[RawRacp]:
    async with DeviceSession.connect(await find_meter(), backend=BumbleClient) as session:
        racp = RawRacp(session)
        await racp.start()
        yield racp


def answer(op: int, code: ResponseCode) -> bytes:
    return bytes([0x06, 0x00, op, code])


@pytest.mark.parametrize(
    ("request_hex", "expected"),
    [
        ("07", answer(0x07, ResponseCode.OP_CODE_NOT_SUPPORTED)),
        ("0500", answer(0x05, ResponseCode.OP_CODE_NOT_SUPPORTED)),
        ("01", answer(0x01, ResponseCode.INVALID_OPERATOR)),
        ("0100", answer(0x01, ResponseCode.INVALID_OPERATOR)),
        ("0107", answer(0x01, ResponseCode.INVALID_OPERATOR)),
        ("010100", answer(0x01, ResponseCode.INVALID_OPERAND)),
        ("0103", answer(0x01, ResponseCode.INVALID_OPERAND)),
        ("0103010200ff", answer(0x01, ResponseCode.INVALID_OPERAND)),
        ("0103030200", answer(0x01, ResponseCode.INVALID_OPERAND)),
        ("01040103000100", answer(0x01, ResponseCode.INVALID_OPERAND)),
        ("010302ea070101000000", answer(0x01, ResponseCode.OPERAND_NOT_SUPPORTED)),
        ("0103010900", answer(0x01, ResponseCode.NO_RECORDS_FOUND)),
        ("0301", answer(0x03, ResponseCode.INVALID_OPERATOR)),
        ("030000", answer(0x03, ResponseCode.INVALID_OPERAND)),
        ("0300", answer(0x03, ResponseCode.SUCCESS)),
        ("0401", bytes.fromhex("05000300")),
        ("0403010200", bytes.fromhex("05000200")),
        ("0402010100", bytes.fromhex("05000100")),
        ("04040102000200", bytes.fromhex("05000100")),
        ("0404010200020000", answer(0x04, ResponseCode.INVALID_OPERAND)),
    ],
)
async def test_racp_answers_as_the_spec_says(
    radio: SimulatedRadio, request_hex: str, expected: bytes
) -> None:
    await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS))
    async with raw_racp() as racp:
        assert await racp.ask(bytes.fromhex(request_hex)) == expected
        assert racp.records == []


async def test_an_empty_racp_write_is_refused(radio: SimulatedRadio) -> None:
    await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS))
    async with raw_racp() as racp:
        with pytest.raises(DeviceRejectedError) as caught:
            await racp.send(b"")
    assert caught.value.att_error == 0x0D  # invalid attribute value length


@pytest.mark.parametrize(
    ("request_hex", "expected"),
    [
        ("0101", [1, 2, 3]),
        ("0105", [1]),
        ("0106", [3]),
        ("0103010200", [2, 3]),
        ("0102010200", [1, 2]),
        ("01040102000200", [2]),
    ],
)
async def test_record_filters(radio: SimulatedRadio, request_hex: str, expected: list[int]) -> None:
    await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS))
    async with raw_racp() as racp:
        done = await racp.ask(bytes.fromhex(request_hex))
    assert done == answer(0x01, ResponseCode.SUCCESS)
    assert [decode_glucose_measurement(r).sequence_number for r in racp.records] == expected


async def test_delete_records(radio: SimulatedRadio) -> None:
    meter = await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS))
    async with connected() as driver:
        await driver.prepare(NOW)
        access = driver.record_access
        deleted = await access.run(
            RacpRequest(
                OpCode.DELETE_STORED_RECORDS,
                Operator.WITHIN_RANGE_INCLUSIVE,
                0x01,
                bytes.fromhex("01000200"),
            )
        )
        assert await access.count() == 1
        nothing = await access.run(
            RacpRequest(
                OpCode.DELETE_STORED_RECORDS,
                Operator.LESS_THAN_OR_EQUAL_TO,
                0x01,
                bytes.fromhex("0200"),
            )
        )
        everything = await access.run(RacpRequest.delete_all())
        assert await access.count() == 0
    assert isinstance(deleted, GeneralResponse) and deleted.succeeded
    assert isinstance(nothing, GeneralResponse) and nothing.no_records
    assert isinstance(everything, GeneralResponse) and everything.succeeded
    assert meter.records == []


async def test_abort_stops_a_long_report(radio: SimulatedRadio) -> None:
    meter = await radio.add(EmulatedGlucoseMeter.many_records(30, address=ADDRESS))
    meter.record_interval = 0.01
    async with raw_racp() as racp:
        await racp.send(bytes.fromhex("0101"))
        await racp.first_record.wait()
        assert meter.procedure_running
        # Anything but abort while a report runs: "procedure already in progress".
        with pytest.raises(DeviceRejectedError) as caught:
            await racp.send(bytes.fromhex("0401"))
        assert caught.value.att_error == 0x80
        assert await racp.ask(bytes.fromhex("0300")) == answer(0x03, ResponseCode.SUCCESS)
        sent = len(racp.records)
        await asyncio.sleep(0.05)
        assert len(racp.records) == sent < 30
        assert racp.answers.empty()  # the aborted report never answers
        assert not meter.procedure_running


async def test_racp_needs_both_subscriptions(radio: SimulatedRadio) -> None:
    await radio.add(EmulatedGlucoseMeter.normal(address=ADDRESS))
    async with DeviceSession.connect(await find_meter(), backend=BumbleClient) as session:
        access = RecordAccess(session)
        await access.start()  # RACP indications on, measurement notifications off
        with pytest.raises(DeviceRejectedError) as caught:
            await access.run(RacpRequest.report_all(), timeout=2)
        with pytest.raises(DeviceRejectedError) as empty:
            await session.write(uuids.RECORD_ACCESS_CONTROL_POINT, b"", "racp")
    assert caught.value.att_error == 0x81
    assert empty.value.att_error == 0x81


async def test_an_unsupported_operator_is_a_record_access_error(radio: SimulatedRadio) -> None:
    await radio.add(
        EmulatedGlucoseMeter.normal(address=ADDRESS, supported_operators=BASIC_OPERATORS)
    )
    async with connected() as driver:
        await driver.prepare(NOW)
        with pytest.raises(RecordAccessError) as caught:
            await driver.record_access.run(RacpRequest.report_from(2), timeout=2)
        count = await driver.record_access.run(
            RacpRequest(OpCode.REPORT_NUMBER_OF_STORED_RECORDS, Operator.ALL_RECORDS)
        )
    assert caught.value.response_code == ResponseCode.OPERATOR_NOT_SUPPORTED
    assert count == NumberOfRecords(3)
    assert decode_response(bytes.fromhex("06000104")) == GeneralResponse(1, 4)


@pytest.mark.parametrize("after_sequence", [None, 1])
async def test_a_meter_that_refuses_every_report(
    radio: SimulatedRadio, after_sequence: int | None
) -> None:
    meter = await radio.add(
        EmulatedGlucoseMeter.normal(address=ADDRESS, supported_operators=frozenset())
    )
    async with connected() as driver:
        await driver.prepare(NOW)
        with pytest.raises(RecordAccessError, match="operator not supported") as caught:
            await download(driver, after_sequence=after_sequence)
    assert caught.value.response_code == ResponseCode.OPERATOR_NOT_SUPPORTED
    # A filtered request falls back to "all" once; "all" itself refused is the end.
    assert len(meter.requests) == (1 if after_sequence is None else 2)
