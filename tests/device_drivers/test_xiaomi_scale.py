"""The Xiaomi scale plugin: advertisement frames against the shared vectors, what counts as a
reading, the plugin's matching, and `XiaomiScaleDriver` scanning the emulated MIBCS through
bleak → BumbleScanner → bumble host → simulated radio."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_drivers import uuids
from device_drivers.catalogue import Advertisement, Matcher, default_catalogue, identify
from device_drivers.codec.wire import DateTimeField
from device_drivers.errors import PayloadError
from device_drivers.measurement import Measurement, Observation
from device_drivers.scale import AdvertisedMeasurement, AdvertisementScaleDriver
from device_drivers.session import serial_from_address
from device_drivers.vendors import AdvertisedModel, AdvertisementPlugin, manufacturer_source
from device_drivers.vendors.xiaomi_scale import (
    MIBCS_SERVICE_DATA_UUID,
    MISCALE_V1_SERVICE_DATA_UUID,
    PLUGIN,
    MiBodyCompositionAdvertisement,
    MiScaleV1Advertisement,
    ScaleUnit,
    XiaomiScaleDriver,
    decode_advertisement,
    decode_frame,
    decode_mibcs,
    decode_miscale_v1,
    encode_mibcs,
    encode_miscale_v1,
    to_measurement,
)
from protocols.metrics import Metric
from protocols.reading import DeviceKind
from simulators.ble.bleak_bumble import BumbleScanner
from simulators.ble.devices.scale import EmulatedScale
from simulators.ble.devices.xiaomi_scale import XiaomiBodyCompositionScale
from simulators.ble.peripheral import EmulatedPeripheral
from simulators.ble.radio import SimulatedRadio
from tests.device_drivers.vectors import vector_id, vectors_for

FIXTURE = bytes.fromhex("0226b20705040f0201ac018642")
FIXTURE_TIME = datetime(1970, 5, 4, 15, 2, 1)
SOURCES = {
    "xiaomi_181B_adv": MIBCS_SERVICE_DATA_UUID,
    "xiaomi_181D_adv": MISCALE_V1_SERVICE_DATA_UUID,
}
ENCODERS: dict[type[Any], Any] = {
    MiBodyCompositionAdvertisement: encode_mibcs,
    MiScaleV1Advertisement: encode_miscale_v1,
}
# The scale sends a frame every 30 ms; a scan ends after this long without one. 0.15 s
# once ended a scan before the first frame on a loaded CI machine (nothing found).
SCAN_IDLE = 0.5


def _values(measurement: Measurement) -> dict[Metric, float]:
    return {obs.metric: obs.value for obs in measurement.observations}


# -- frames -----------------------------------------------------------------------------


@pytest.mark.parametrize("vector", vectors_for(*SOURCES), ids=vector_id)
def test_vectors_decode_exactly_and_encode_back(vector: dict[str, Any]) -> None:
    payload = bytes.fromhex(vector["hex"])

    frame = decode_frame(SOURCES[vector["characteristic"]], payload)

    assert frame.as_dict() == vector["decoded"]
    assert ENCODERS[type(frame)](frame) == payload


@given(st.binary(min_size=13, max_size=13))
def test_every_mibcs_frame_round_trips(payload: bytes) -> None:
    assert encode_mibcs(decode_mibcs(payload)) == payload


@given(st.binary(min_size=10, max_size=10))
def test_every_v1_frame_round_trips(payload: bytes) -> None:
    assert encode_miscale_v1(decode_miscale_v1(payload)) == payload


@given(st.sampled_from([MIBCS_SERVICE_DATA_UUID, MISCALE_V1_SERVICE_DATA_UUID]), st.binary())
def test_the_plugin_decoder_raises_only_payload_error(source: str, data: bytes) -> None:
    with contextlib.suppress(PayloadError):
        decode_advertisement(source, data)


def test_another_source_is_refused() -> None:
    with pytest.raises(PayloadError, match="no Xiaomi"):
        decode_advertisement(uuids.GLUCOSE_SERVICE, FIXTURE)


def test_builders_reproduce_the_captured_frames() -> None:
    mibcs = MiBodyCompositionAdvertisement.build(85.15, impedance=428, timestamp=FIXTURE_TIME)
    v1 = MiScaleV1Advertisement.build(86.55, timestamp=datetime(2021, 4, 11, 16, 19, 1))

    assert encode_mibcs(mibcs) == FIXTURE
    assert encode_miscale_v1(v1) == bytes.fromhex("229e43e507040b101301")
    lb = MiScaleV1Advertisement.build(155.43, unit=ScaleUnit.LB, timestamp=FIXTURE_TIME)
    assert lb.unit is ScaleUnit.LB
    assert lb.weight == 155.43


def test_encoders_refuse_a_time_stamp_that_is_not_seven_bytes() -> None:
    short = DateTimeField(None, b"\x00")
    with pytest.raises(PayloadError, match="7 bytes"):
        encode_mibcs(MiBodyCompositionAdvertisement(0x02, 0x24, short, 0, 14100))
    with pytest.raises(PayloadError, match="7 bytes"):
        encode_miscale_v1(MiScaleV1Advertisement(0x22, 14100, short))


def test_a_frame_from_an_unset_clock_is_kept_untrusted() -> None:
    frame = MiScaleV1Advertisement.build(70.5, timestamp=datetime(2026, 1, 2))
    unset = decode_miscale_v1(encode_miscale_v1(frame)[:3] + bytes(7))

    measurement = to_measurement(unset)

    assert measurement is not None
    assert measurement.device_time is None
    assert not measurement.clock_set
    assert unset.as_dict()["timestamp"] is None


# -- what is a reading ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "payload", "expected", "kind"),
    [
        (
            MIBCS_SERVICE_DATA_UUID,
            "0226b20705040f0201ac018642",
            {Metric.WEIGHT: 85.15, Metric.IMPEDANCE: 428.0},
            DeviceKind.BODY_COMPOSITION_SCALE,
        ),
        (
            MIBCS_SERVICE_DATA_UUID,
            "0326ea070102030405f401b73c",
            {Metric.WEIGHT: 70.50186, Metric.IMPEDANCE: 500.0},
            DeviceKind.BODY_COMPOSITION_SCALE,
        ),
        (
            MIBCS_SERVICE_DATA_UUID,
            "0264ea07010203040500001437",
            {Metric.WEIGHT: 70.5},
            DeviceKind.BODY_COMPOSITION_SCALE,
        ),
        (
            MISCALE_V1_SERVICE_DATA_UUID,
            "229e43e507040b101301",
            {Metric.WEIGHT: 86.55},
            DeviceKind.WEIGHT_SCALE,
        ),
        (
            MISCALE_V1_SERVICE_DATA_UUID,
            "321437ea070102030405",
            {Metric.WEIGHT: 70.5},
            DeviceKind.WEIGHT_SCALE,
        ),
    ],
)
def test_stabilized_frames_with_the_load_on_are_readings(
    source: str, payload: str, expected: dict[Metric, float], kind: DeviceKind
) -> None:
    measurement = decode_advertisement(source, bytes.fromhex(payload))

    assert measurement is not None
    assert measurement.kind is kind
    assert _values(measurement) == pytest.approx(expected, rel=1e-5)
    assert measurement.clock_set


@pytest.mark.parametrize(
    ("source", "payload"),
    [
        (MIBCS_SERVICE_DATA_UUID, "0204b207010112101a0000a852"),  # still settling
        (MIBCS_SERVICE_DATA_UUID, "02a6b20705040f0201ac018642"),  # load removed
        (MIBCS_SERVICE_DATA_UUID, "0226b20705040f0201ac010000"),  # nothing on the plate
        (MISCALE_V1_SERVICE_DATA_UUID, "a29e43e507040b101301"),  # load removed
        (MISCALE_V1_SERVICE_DATA_UUID, "021437ea070102030405"),  # still settling
    ],
)
def test_settling_removed_and_empty_frames_are_not_readings(source: str, payload: str) -> None:
    assert decode_advertisement(source, bytes.fromhex(payload)) is None


def test_repeats_of_a_frame_share_their_record_key_and_impedance_joins_it() -> None:
    weight_only = MiBodyCompositionAdvertisement.build(85.15, timestamp=FIXTURE_TIME)
    received = datetime(2026, 3, 14, 8, 0, 0)

    first = decode_advertisement(MIBCS_SERVICE_DATA_UUID, encode_mibcs(weight_only))
    repeat = decode_advertisement(MIBCS_SERVICE_DATA_UUID, encode_mibcs(weight_only))
    with_impedance = decode_advertisement(MIBCS_SERVICE_DATA_UUID, FIXTURE)

    assert first is not None and repeat is not None and with_impedance is not None
    assert first == repeat
    keys = {m.record_key(received) for m in (first, repeat, with_impedance)}
    assert keys == {f"t:{FIXTURE_TIME.isoformat()}"}


# -- plugin description -----------------------------------------------------------------


def test_the_plugin_matches_by_uuid_and_length() -> None:
    mibcs = Advertisement(name="MIBFS", service_data={MIBCS_SERVICE_DATA_UUID.upper(): FIXTURE})
    sig = Advertisement(service_uuids=(uuids.BODY_COMPOSITION_SERVICE,))
    other_length = Advertisement(service_data={MIBCS_SERVICE_DATA_UUID: FIXTURE + b"\x00"})

    found = PLUGIN.identify(mibcs)

    assert found is not None
    model, source, payload = found
    assert model.catalogue_id == "xiaomi-mibcs2"
    assert (source, payload) == (MIBCS_SERVICE_DATA_UUID, FIXTURE)
    assert PLUGIN.identify(sig) is None
    assert PLUGIN.identify(other_length) is None


def test_the_plugin_and_the_catalogue_agree() -> None:
    for model in PLUGIN.models:
        (entry,) = [e for e in default_catalogue() if e.id == model.catalogue_id]
        assert entry.matcher == model.matcher
        assert entry.kind is model.kind
        assert entry.driver_class() is XiaomiScaleDriver
        assert not entry.connectable
    found = identify(Advertisement(service_data={MIBCS_SERVICE_DATA_UUID: FIXTURE}))
    assert found is not None
    assert found.id == "xiaomi-mibcs2"


def test_a_model_needs_data_to_decode() -> None:
    with pytest.raises(ValueError, match="name prefix alone"):
        AdvertisedModel("x", "Acme", "A1", DeviceKind.WEIGHT_SCALE, Matcher(name_prefix="AC"))


def test_manufacturer_data_models_hand_over_their_company_payload() -> None:
    model = AdvertisedModel(
        "acme", "Acme", "A1", DeviceKind.WEIGHT_SCALE, Matcher(manufacturer_id=0xFF64)
    )
    adv = Advertisement(manufacturer_data={0xFF64: b"\x01\x02"})

    assert model.payload(adv) == ("manufacturer:0xff64", b"\x01\x02")
    assert manufacturer_source(0xFF64) == "manufacturer:0xff64"
    assert model.payload(Advertisement(manufacturer_data={0x0001: b""})) is None


def test_an_advertisement_driver_needs_a_plugin() -> None:
    with pytest.raises(ValueError, match="plugin"):
        AdvertisementScaleDriver()


# -- scanning the emulated scale ---------------------------------------------------------


def _stray_tasks() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


@pytest.fixture
async def radio() -> AsyncIterator[SimulatedRadio]:
    before = _stray_tasks()
    async with SimulatedRadio() as radio:
        yield radio
    await asyncio.sleep(0)
    leaked = [task for task in _stray_tasks() - before if not task.done()]
    assert not leaked, f"tasks left running after the radio closed: {leaked}"


def _mibcs(**kwargs: Any) -> XiaomiBodyCompositionScale:
    kwargs.setdefault("frame_seconds", 0.03)
    return XiaomiBodyCompositionScale(**kwargs)


async def _scan(driver: AdvertisementScaleDriver, **kwargs: Any) -> list[AdvertisedMeasurement]:
    kwargs.setdefault("idle_timeout", SCAN_IDLE)
    return [found async for found in driver.advertised_measurements(**kwargs)]


async def _scanning(radio: SimulatedRadio) -> None:
    """Until the central scans: the user steps on once the gateway listens."""
    while not radio.central.is_scanning:
        await asyncio.sleep(0.002)


async def _while_weighing(
    radio: SimulatedRadio,
    driver: AdvertisementScaleDriver,
    scale: XiaomiBodyCompositionScale,
    *args: Any,
    **kwargs: Any,
) -> list[AdvertisedMeasurement]:
    scanning = asyncio.create_task(_scan(driver))
    await _scanning(radio)
    await scale.weigh(*args, **kwargs)
    return await scanning


async def test_one_stabilized_reading_is_yielded_once(radio: SimulatedRadio) -> None:
    scale = await radio.add(_mibcs())
    # Neighbours that must not be taken for the Xiaomi: a SIG scale, and a device with
    # other bytes under 0x181B.
    await radio.add(EmulatedScale(name="CB-Scale"))
    await radio.add(EmulatedPeripheral(name="CB-Other", service_data={0x181B: b"\x00\x01"}))
    driver = XiaomiScaleDriver(backend=BumbleScanner)

    (found,) = await _while_weighing(radio, driver, scale, 85.15, 428, at=FIXTURE_TIME)

    assert found.address == scale.address
    assert found.device.kind is DeviceKind.BODY_COMPOSITION_SCALE
    assert found.device.model == "XMTZC05HM"
    assert found.device.manufacturer == "Xiaomi"
    assert found.device.serial == serial_from_address(scale.address)
    assert found.rssi == scale.rssi
    measurement = found.measurement
    assert _values(measurement) == {Metric.WEIGHT: 85.15, Metric.IMPEDANCE: 428.0}
    assert measurement.device_time == FIXTURE_TIME
    # The scale broadcast settling and removed frames too; they made no reading.
    frames = [decode_mibcs(frame) for frame in scale.frames_sent]
    assert any(not frame.stabilized for frame in frames)
    assert any(frame.load_removed for frame in frames)
    assert FIXTURE in scale.frames_sent


async def test_impedance_measured_later_joins_the_same_record(radio: SimulatedRadio) -> None:
    scale = await radio.add(_mibcs(unit=ScaleUnit.JIN))
    driver = XiaomiScaleDriver(backend=BumbleScanner, address=scale.address.lower())

    found = await _while_weighing(radio, driver, scale, 70.5, 505, impedance_delay_frames=3)

    weight_only, complete = (f.measurement for f in found)
    assert _values(weight_only) == {Metric.WEIGHT: 70.5}
    assert _values(complete) == {Metric.WEIGHT: 70.5, Metric.IMPEDANCE: 505.0}
    assert weight_only.details["unit"] == "jin"
    received = datetime(2026, 3, 14, 8, 0, 0)
    assert weight_only.record_key(received) == complete.record_key(received)


async def test_the_common_driver_shape_yields_measurements_of_the_chosen_device(
    radio: SimulatedRadio,
) -> None:
    scale = await radio.add(_mibcs(unit=ScaleUnit.LB, clock_offset=timedelta(hours=-1)))
    other = await radio.add(_mibcs(name="MIBFS2"))
    driver = XiaomiScaleDriver(backend=BumbleScanner, address=scale.address)

    async def collect() -> list[Measurement]:
        return [m async for m in driver.measurements(idle_timeout=SCAN_IDLE)]

    collecting = asyncio.create_task(collect())
    await _scanning(radio)
    await asyncio.gather(scale.weigh(80.0, 480), other.weigh(60.0, 520))
    (measurement,) = await collecting

    (weight,) = [o for o in measurement.observations if o.metric is Metric.WEIGHT]
    assert weight.device_unit == "[lb_av]"
    assert weight.value == pytest.approx(80.0, abs=0.005)


class _FussyPlugin:
    """A vendor whose decoder refuses a payload: how bad adverts reach `on_bad_payload`."""

    @staticmethod
    def decode(source: str, data: bytes) -> Measurement | None:
        if data == b"\xee":
            raise PayloadError("garbled", data)
        return Measurement(
            kind=DeviceKind.WEIGHT_SCALE,
            observations=(Observation.of(Metric.WEIGHT, data[0], "kg"),),
        )


FUSSY = AdvertisementPlugin(
    name="fussy",
    models=(
        AdvertisedModel(
            "fussy", "Fussy", "F1", DeviceKind.WEIGHT_SCALE, Matcher(manufacturer_id=0xFF64)
        ),
    ),
    decode_advertisement=_FussyPlugin.decode,
)


async def _scan_for_a_while(
    radio: SimulatedRadio, driver: AdvertisementScaleDriver
) -> list[AdvertisedMeasurement]:
    """Scan while every peripheral advertises for 0.1 s, then let the scan go idle."""
    scanning = asyncio.create_task(_scan(driver, idle_timeout=0.1))
    await _scanning(radio)
    await asyncio.sleep(0.1)  # several 20 ms advertising intervals of each device
    for peripheral in radio.peripherals:
        await peripheral.stop_advertising()
    return await scanning


async def test_malformed_adverts_are_reported_once_each(
    radio: SimulatedRadio, caplog: pytest.LogCaptureFixture
) -> None:
    bad_device = await radio.add(
        EmulatedPeripheral(name="F1-bad", manufacturer_data={0xFF64: b"\xee"})
    )
    good_device = await radio.add(
        EmulatedPeripheral(name="F1-good", manufacturer_data={0xFF64: b"\x48"})
    )
    bad: list[PayloadError] = []

    reported = AdvertisementScaleDriver(
        plugin=FUSSY, backend=BumbleScanner, on_bad_payload=bad.append
    )
    found = await _scan_for_a_while(radio, reported)
    await bad_device.start_advertising()
    await good_device.start_advertising()
    with caplog.at_level(logging.WARNING):
        logged = AdvertisementScaleDriver(plugin=FUSSY, backend=BumbleScanner)
        assert len(await _scan_for_a_while(radio, logged)) == 1

    (good,) = found
    assert _values(good.measurement) == {Metric.WEIGHT: 72.0}
    assert good.device.model == "F1"
    assert len(bad) == 1  # one device, one distinct payload: reported once
    assert caplog.text.count("malformed advertisement") == 1
