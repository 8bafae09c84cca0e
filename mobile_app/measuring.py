"""Finding a patient's devices and taking one measurement through the real drivers.

Only bleak's public API (through `device_drivers`), with the backends injectable: None
is the platform's own (Android, BlueZ, …); the desktop demo and the tests pass the bumble
backend of `simulators.ble.bleak_bumble`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from bleak import BleakScanner
from bleak.backends.device import BLEDevice

from device_drivers.blood_pressure_monitor import BloodPressureMonitorDriver
from device_drivers.catalogue import Advertisement, CatalogueEntry, identify
from device_drivers.glucose_meter import GlucoseMeterDriver
from device_drivers.measurement import Measurement, to_readings
from device_drivers.session import DeviceSession
from protocols.reading import DeviceKind, DeviceRef, Reading, Source

SUPPORTED_KINDS = (DeviceKind.BLOOD_PRESSURE_MONITOR, DeviceKind.GLUCOSE_METER)

StageCallback = Callable[[str], None]
CuffCallback = Callable[[float], None]


@dataclass(frozen=True)
class Backends:
    """bleak backends; None everywhere means the platform's own."""

    scanner: type[Any] | None = None
    client: type[Any] | None = None


@dataclass(frozen=True)
class FoundDevice:
    address: str
    name: str
    entry: CatalogueEntry
    rssi: int | None
    ble_device: BLEDevice

    @property
    def kind(self) -> DeviceKind:
        return self.entry.kind


@dataclass(frozen=True)
class TakenMeasurement:
    """What one session with a device gave: every record, the newest being the result."""

    device: DeviceRef
    records: list[Measurement]
    result: Measurement | None
    received_at: datetime


async def scan(backends: Backends, duration: float = 4.0) -> list[FoundDevice]:
    """Nearby devices the app can measure with, strongest signal first."""
    # None means bleak's own choice of backend for the platform.
    backend = cast(Any, backends.scanner)
    found = await BleakScanner.discover(timeout=duration, return_adv=True, backend=backend)
    devices: list[FoundDevice] = []
    for ble_device, adv in found.values():
        entry = identify(
            Advertisement(
                name=adv.local_name,
                service_uuids=tuple(adv.service_uuids),
                manufacturer_data=dict(adv.manufacturer_data),
                service_data=dict(adv.service_data),
            )
        )
        if entry is None or not entry.connectable or entry.kind not in SUPPORTED_KINDS:
            continue
        devices.append(
            FoundDevice(
                address=ble_device.address,
                name=adv.local_name or ble_device.name or ble_device.address,
                entry=entry,
                rssi=adv.rssi,
                ble_device=ble_device,
            )
        )
    return sorted(devices, key=lambda d: -(d.rssi if d.rssi is not None else -999))


async def measure(
    device: FoundDevice,
    backends: Backends,
    *,
    on_stage: StageCallback,
    on_cuff_pressure: CuffCallback,
    wait_s: float = 90.0,
) -> TakenMeasurement:
    """Connect, let the device send what it has, and return the newest record.

    A cuff sends its stored results first; when the patient starts it, cuff pressures
    arrive and then the new result, which ends the session at once. A glucose meter
    sends its records on request and says when it is done. Stages reported: connecting,
    waiting (for the patient to press start), measuring, reading (a meter's records).
    """
    on_stage("connecting")
    session = DeviceSession.connect(device.ble_device, backend=backends.client)
    async with session:
        if device.kind is DeviceKind.BLOOD_PRESSURE_MONITOR:
            records = [m async for m in _cuff_records(session, on_stage, on_cuff_pressure, wait_s)]
        else:
            records = [m async for m in _meter_records(session, on_stage, wait_s)]
        ref = session.device_ref(device.kind)
    received = datetime.now(UTC)
    return TakenMeasurement(ref, records, _newest(records), received)


async def _cuff_records(
    session: DeviceSession, on_stage: StageCallback, on_cuff: CuffCallback, wait_s: float
) -> AsyncGenerator[Measurement, None]:
    pressures: list[float] = []

    def cuff(mmhg: float) -> None:
        if not pressures:
            on_stage("measuring")
        pressures.append(mmhg)
        on_cuff(mmhg)

    driver = BloodPressureMonitorDriver(session, on_cuff_pressure=cuff)
    await driver.prepare(datetime.now)
    on_stage("waiting")
    # Closed at once when we stop early, so the driver's waits do not outlive the link.
    results = cast(AsyncGenerator[Measurement, None], driver.measurements(idle_timeout=wait_s))
    async with contextlib.aclosing(results):
        async for measurement in results:
            yield measurement
            if pressures:
                return  # the result of the inflation we watched: nothing more to wait for


async def _meter_records(
    session: DeviceSession, on_stage: StageCallback, wait_s: float
) -> AsyncIterator[Measurement]:
    driver = GlucoseMeterDriver(session)
    await driver.prepare(datetime.now)
    on_stage("reading")
    async for measurement in driver.measurements(idle_timeout=wait_s):
        yield measurement


def _newest(records: list[Measurement]) -> Measurement | None:
    if not records:
        return None
    with_sequence = [r for r in records if r.sequence_number is not None]
    if with_sequence:
        return max(with_sequence, key=lambda r: r.sequence_number or 0)
    return records[-1]  # BLS results arrive oldest first


def readings_of(taken: TakenMeasurement, record: Measurement, patient_id: str) -> list[Reading]:
    """One record as the readings the outbox keeps, attributed to the measuring member."""
    return to_readings(
        record,
        device=taken.device,
        received_at=taken.received_at,
        source=Source.HOME,
        device_timezone=datetime.now().astimezone().tzinfo or UTC,
        patient_id=patient_id,
    )
