"""Device sessions of the whole edge agent on emulated devices, real Mosquitto and
TimescaleDB: a glucose meter that drops the link mid-download resumes after the last stored
sequence number; a meter whose clock is two hours off has its readings stored at the
corrected time with the skew kept; the local health endpoint answers."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import UTC, datetime, timedelta

from device_drivers.codec.racp import OpCode, Operator, decode_request
from simulators.ble.devices.glucose_meter import EmulatedGlucoseMeter
from simulators.ble.radio import SimulatedRadio
from tests.integration.edge_station import (
    edge_on_radio,
    edge_settings,
    eventually,
    register_edge,
    rows,
)

METER = "C0:DE:00:00:18:08"


async def test_a_meter_that_drops_mid_download_resumes_after_the_last_stored_sequence(
    cloud, broker, database_url, tmp_path
):
    register_edge(cloud, "edge-resume", "home")
    settings = edge_settings(
        broker, tmp_path, "edge-resume", mode="home", home_patient_id="P-RESUME"
    )
    async with SimulatedRadio() as radio:
        meter = await radio.add(
            EmulatedGlucoseMeter.many_records(12, address=METER, clock_offset=timedelta(0))
        )
        meter.disconnect_after_records(5)
        async with edge_on_radio(settings) as running:
            await running.state.pair(
                METER, catalogue_id="sig-glucose", kind="glucose_meter", now=datetime.now(UTC)
            )

            def stored() -> int:
                (count,) = rows(
                    database_url,
                    "SELECT count(*) FROM readings WHERE patient_id = 'P-RESUME'",
                )[0]
                return count == 12

            await eventually(stored, "all 12 glucose records in TimescaleDB")
            device = await running.state.device(METER)
            assert device is not None and device.last_sequence == 12

    first, second = (decode_request(raw) for raw in meter.requests[:2])
    assert (first.op_code, first.operator) == (OpCode.REPORT_STORED_RECORDS, Operator.ALL_RECORDS)
    # The link dropped after record 5: the next session asks only for what follows it.
    assert second.operator is Operator.GREATER_THAN_OR_EQUAL_TO
    assert second.sequence_range() == (6, None)
    keys = rows(
        database_url,
        "SELECT record_key, count(*), count(DISTINCT reading_id) FROM readings "
        "WHERE patient_id = 'P-RESUME' GROUP BY record_key ORDER BY min(time)",
    )
    assert [key.split("@")[0] for key, _n, _d in keys] == [f"seq:{n}" for n in range(1, 13)]
    assert all(n == 1 and distinct == 1 for _key, n, distinct in keys)


async def test_a_clock_two_hours_off_is_corrected_and_the_skew_kept(
    cloud, broker, database_url, tmp_path
):
    register_edge(cloud, "edge-clock", "home")
    settings = edge_settings(broker, tmp_path, "edge-clock", mode="home", home_patient_id="P-CLK")
    async with SimulatedRadio() as radio:
        meter = await radio.add(
            EmulatedGlucoseMeter(address=METER, clock_offset=timedelta(hours=2))
        )
        # Taken 40 and 5 minutes ago by a meter whose clock runs two hours ahead.
        meter.add_reading(6.1, at=meter.device_time() - timedelta(minutes=40))
        meter.add_reading(7.4, at=meter.device_time() - timedelta(minutes=5))
        real_times = [
            datetime.now(UTC) - timedelta(minutes=40),
            datetime.now(UTC) - timedelta(minutes=5),
        ]
        async with edge_on_radio(settings) as running:
            await running.state.pair(
                METER, catalogue_id="sig-glucose", kind="glucose_meter", now=datetime.now(UTC)
            )
            stored = await eventually(
                lambda: (
                    rows(
                        database_url,
                        "SELECT time, device_time, flags, value FROM readings "
                        "WHERE patient_id = 'P-CLK' ORDER BY time",
                    )
                    if len(rows(database_url, "SELECT 1 FROM readings WHERE patient_id = 'P-CLK'"))
                    == 2
                    else None
                ),
                "both glucose readings stored",
            )
            device = await running.state.device(METER)
            assert device is not None and abs(device.clock_skew_s - 7200) <= 1
            health_url = running.health.url if running.health else None
            health = await asyncio.to_thread(_get_json, health_url)
        # The agent set the meter's clock while it was connected.
        assert abs(meter.clock_offset or timedelta(hours=9)) < timedelta(seconds=5)

    assert [round(value, 2) for *_rest, value in stored] == [6.1, 7.4]
    local = datetime.now().astimezone().tzinfo
    for (time, device_time, flags, _value), real in zip(stored, real_times, strict=True):
        assert "clock_corrected" in flags
        assert abs(time - real) < timedelta(seconds=5), "stored at the corrected time"
        skew = device_time - time.astimezone(local).replace(tzinfo=None)
        assert abs(skew - timedelta(hours=2)) < timedelta(seconds=2), "the device's stamp kept"

    assert health["edge_id"] == "edge-clock"
    assert health["broker"]["state"] == "connected"
    assert health["status"] == "ok"
    assert [link["address"] for link in health["devices"]] == [METER]


def _get_json(url: str | None) -> dict:
    assert url is not None, "the health endpoint is on"
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.load(response)
