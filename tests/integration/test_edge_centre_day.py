"""A day at a management centre, compressed: five shared devices (two cuffs, two pulse
oximeters, a glucose meter), 30 patients measured in interleaved sessions, and readings
taken with no session open that wait, unassigned, until staff assign them — once through
the web API, once at the station (`assign`, over MQTT). Real bumble devices, the whole
edge agent, Mosquitto, the cloud and TimescaleDB."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, tzinfo

import httpx
import psycopg
import pytest

from cloud.db import care_store
from edge_agent.clock import device_local
from simulators.ble.devices.blood_pressure_monitor import BloodPressureMonitor
from simulators.ble.devices.glucose_meter import EmulatedGlucoseMeter
from simulators.ble.devices.pulse_oximeter import PulseOximeter
from simulators.ble.peripheral import DeviceInformation
from simulators.ble.radio import SimulatedRadio
from tests.conftest import bearer, make_user
from tests.integration.edge_station import (
    edge_on_radio,
    edge_settings,
    eventually,
    register_edge,
    rows,
)

EDGE = "edge-centre-day"
READINGS_PER_MEASUREMENT = {"blood_pressure_monitor": 4, "pulse_oximeter": 2, "glucose_meter": 1}


def _info(serial: str, model: str) -> DeviceInformation:
    return DeviceInformation(manufacturer="CareBridge Simulated", model=model, serial=serial)


def _devices() -> list[tuple[str, object]]:
    return [
        ("blood_pressure_monitor", BloodPressureMonitor(
            address="C0:DE:00:00:10:01", device_information=_info("CUFF-A", "BPM-EMU-1"))),
        ("blood_pressure_monitor", BloodPressureMonitor(
            address="C0:DE:00:00:10:02", device_information=_info("CUFF-B", "BPM-EMU-1"))),
        ("pulse_oximeter", PulseOximeter(
            address="C0:DE:00:00:22:01", storage=True, continuous=False,
            device_information=_info("PLX-A", "PLX-EMU-1"))),
        ("pulse_oximeter", PulseOximeter(
            address="C0:DE:00:00:22:02", storage=True, continuous=False,
            device_information=_info("PLX-B", "PLX-EMU-1"))),
        ("glucose_meter", EmulatedGlucoseMeter(
            address="C0:DE:00:00:18:01", clock_offset=timedelta(0),
            device_information=_info("GLU-A", "CB-GLU-1"))),
    ]  # fmt: skip


_CATALOGUE = {
    "blood_pressure_monitor": "sig-blood-pressure",
    "pulse_oximeter": "sig-pulse-oximeter",
    "glucose_meter": "sig-glucose",
}


async def _measure(kind: str, device: object, n: int) -> None:
    """Patient number `n` measured on `device` now, as the device itself records it."""
    if isinstance(device, BloodPressureMonitor):
        device.store(112 + n, 72 + n % 9, 60 + n)
    elif isinstance(device, PulseOximeter):
        await device.measure_spot(96.0, 60.0 + n)
    elif isinstance(device, EmulatedGlucoseMeter):
        device.add_reading(round(5.0 + n / 10, 1))


async def _once_the_device_clock_is_past(device: object, moment: datetime, zone: tzinfo) -> None:
    """Wait until `device`'s own clock stamps a time after `moment`.

    Devices stamp whole seconds, and a clock the agent sets over the air is behind by the
    write's trip: measured a second after a session opened, a reading could be stamped
    before it, and so belong to the previous patient or share the previous reading's
    second (a cuff's records are told apart by their time). A real measurement takes
    30 s or more; here the device's own clock says when it is far enough."""
    local = device_local(moment, zone)  # as the agent sets device clocks
    while True:
        shown = device.device_time()  # type: ignore[attr-defined]
        if shown is not None and shown.replace(microsecond=0) > local:
            return
        await asyncio.sleep(0.05)


def _people(database_url: str) -> str:
    """A centre team with a health manager and the two patients staff will assign to."""
    token = make_user(database_url, "hm-centre", "health_manager", ("T-CENTRE",))
    with psycopg.connect(database_url, autocommit=True) as conn:
        for patient in ("P-UA1", "P-UA2"):
            care_store.create_patient(conn, patient, f"病人 {patient}", team_id="T-CENTRE")
    return token


async def test_a_centre_day_stores_every_reading_once_under_the_right_patient(
    cloud, broker, database_url, tmp_path
):
    register_edge(cloud, EDGE, "centre")
    staff = _people(database_url)
    settings = edge_settings(broker, tmp_path, EDGE, mode="centre")
    devices = _devices()
    expected: dict[str, tuple[int, str]] = {}
    most_connected = 0

    async with SimulatedRadio() as radio:
        for _kind, device in devices:
            await radio.add(device)  # type: ignore[arg-type]
        async with edge_on_radio(settings) as running:
            state = running.state
            for kind, device in devices:
                await state.pair(
                    device.address,  # type: ignore[attr-defined]
                    catalogue_id=_CATALOGUE[kind],
                    kind=kind,
                    now=datetime.now(UTC),
                )

            async def watch_links() -> None:
                nonlocal most_connected
                while True:
                    connected = sum(link.connected for link in running.links.links.values())
                    most_connected = max(most_connected, connected)
                    await asyncio.sleep(0.02)

            def patient_rows(patient: str) -> list[tuple[object, ...]]:
                return rows(
                    database_url,
                    "SELECT count(*), count(DISTINCT reading_id), count(DISTINCT measurement_id), "
                    "array_agg(DISTINCT device_serial) FROM readings WHERE patient_id = %s",
                    patient,
                )

            async def station(index: int, kind: str, device: object) -> None:
                address = device.address  # type: ignore[attr-defined]
                for round_ in range(6):
                    n = round_ * len(devices) + index
                    patient = f"P-{n:02d}"
                    expected[patient] = (
                        READINGS_PER_MEASUREMENT[kind],
                        device.device_information.serial,  # type: ignore[attr-defined]
                    )
                    opened_at = datetime.now(UTC)
                    await state.open_session(
                        address,
                        patient,
                        staff_id="hm-centre",
                        now=opened_at,
                        lasts=timedelta(minutes=10),
                    )
                    await _once_the_device_clock_is_past(device, opened_at, running.links.zone)
                    await _measure(kind, device, n)
                    # Long enough for a retry or two: on a loaded machine an emulated GATT
                    # request can time out (bumble then logs its late response), and the
                    # link backs off 2-5 s before it asks again.
                    try:
                        await eventually(
                            lambda p=patient: patient_rows(p)[0][0] > 0,
                            f"{patient}'s reading",
                            within=45.0,
                        )
                    except pytest.fail.Exception as missing:
                        # Say where the reading went instead: the test has failed this way
                        # intermittently and the bare timeout told nothing.
                        unassigned = [
                            (u.device_key, u.measured_at.isoformat(), u.reason)
                            for u in await state.unassigned()
                        ]
                        stats = await running.agent.outbox.stats()
                        link = running.links.links.get(address)
                        stored = rows(
                            database_url,
                            "SELECT patient_id, min(time) FROM readings WHERE device_serial = "
                            "%s GROUP BY measurement_id, patient_id ORDER BY 2 DESC LIMIT 3",
                            device.device_information.serial,  # type: ignore[attr-defined]
                        )
                        pytest.fail(
                            f"{missing}; outbox pending {stats.pending}, in flight "
                            f"{stats.in_flight}, rejected {stats.rejected}; unassigned "
                            f"{unassigned}; the device's latest stored {stored}; link {link}"
                        )
                await state.close_session(now=datetime.now(UTC), device_key=address)

            watcher = asyncio.create_task(watch_links())
            try:
                await asyncio.gather(
                    *(station(i, kind, device) for i, (kind, device) in enumerate(devices))
                )
            finally:
                watcher.cancel()

            # Two measurements with no session open: on a cuff and on the glucose meter.
            all_closed = datetime.now(UTC)
            await _once_the_device_clock_is_past(devices[0][1], all_closed, running.links.zone)
            await _measure("blood_pressure_monitor", devices[0][1], 90)
            await _once_the_device_clock_is_past(devices[4][1], all_closed, running.links.zone)
            await _measure("glucose_meter", devices[4][1], 91)
            async with httpx.AsyncClient(base_url=cloud.base_url, headers=bearer(staff)) as api:

                async def both_unassigned() -> list[dict] | None:
                    body = (
                        await api.get("/api/v1/unassigned-readings", params={"edge_id": EDGE})
                    ).json()
                    return body["items"] if len(body["items"]) == 2 else None

                items = await eventually(both_unassigned, "two unassigned measurements")
                by_serial = {item["device"]["serial"]: item for item in items}
                cuff, meter = by_serial["CUFF-A"], by_serial["GLU-A"]
                assert {v["metric"] for v in cuff["values"]} == {
                    "systolic", "diastolic", "mean_arterial_pressure", "pulse_rate"
                }  # fmt: skip
                assert rows(database_url, "SELECT count(*) FROM readings_daily "
                            "WHERE patient_id IN ('P-UA1', 'P-UA2')") == [(0,)]  # fmt: skip
                assert {u.measurement_id.hex for u in await state.unassigned()} >= {
                    cuff["measurement_id"].replace("-", ""),
                    meter["measurement_id"].replace("-", ""),
                }

                # Staff assign the cuff's in the web UI ...
                url = f"/api/v1/measurements/{cuff['measurement_id']}/assignment"
                given = await api.post(url, json={"patient_id": "P-UA1", "note": "忘记选病人"})
                assert given.status_code == 200, given.text
                assert given.json()["patient_id"] == "P-UA1"
                assert sorted(given.json()["reading_ids"]) == sorted(
                    v["reading_id"] for v in cuff["values"]
                )
                again = await api.post(url, json={"patient_id": "P-UA2"})
                assert again.status_code == 409

                # ... and the meter's at the station, which sends it over MQTT.
                await state.request_assignment(
                    uuid.UUID(meter["measurement_id"]),
                    "P-UA2",
                    staff_id="hm-centre",
                    note=None,
                    now=datetime.now(UTC),
                )

                async def answered() -> bool:
                    found = {u.measurement_id.hex: u.state for u in await state.unassigned()}
                    return found.get(meter["measurement_id"].replace("-", "")) == "assigned"

                await eventually(answered, "the cloud's answer to the station's assignment")
                left = (await api.get("/api/v1/unassigned-readings")).json()
                assert left == {"items": [], "next_before": None}

    assert most_connected >= 4, f"at most {most_connected} devices were connected at once"
    assert len(expected) == 30
    for patient, (count, serial) in sorted(expected.items()):
        assert patient_rows(patient) == [(count, count, 1, [serial])], patient
    stored = rows(
        database_url,
        "SELECT count(*), count(DISTINCT reading_id) FROM readings WHERE edge_id = %s",
        EDGE,
    )
    total = sum(count for count, _serial in expected.values()) + 4 + 1
    assert stored == [(total, total)], "every reading stored once"
    assert rows(database_url, "SELECT count(*) FROM readings WHERE patient_id IS NULL") == [(0,)]
    # Once assigned, the readings count in the patients' rollups like any other.
    assert rows(
        database_url,
        "SELECT patient_id, metric, n FROM readings_daily WHERE patient_id IN ('P-UA1', 'P-UA2') "
        "AND metric IN ('systolic', 'glucose') ORDER BY patient_id",
    ) == [("P-UA1", "systolic", 1), ("P-UA2", "glucose", 1)]
    audited = rows(
        database_url,
        "SELECT detail->>'via' FROM audit_log WHERE action = 'assign_measurement' ORDER BY 1",
    )
    assert audited == [("api",), ("edge",)]
