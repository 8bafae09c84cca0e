"""Storage and the read API on a real TimescaleDB: rollups, latest, charts, home BP,
retention, device bindings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.db.retention import drop_old_readings
from cloud.settings import CloudSettings
from protocols.reading import Source
from simulators.readings import SimulatedCuff, SimulatedGlucoseMeter
from tests.conftest import bearer, make_user
from tests.integration.edge_support import store_readings as store

TZ = "Asia/Shanghai"


@pytest.fixture
def api(database_url):
    settings = CloudSettings(database_url=database_url, ingest_in_process=False, timezone=TZ)
    qc = make_user(database_url, "qc", "qc_supervisor")
    with TestClient(create_app(settings), headers=bearer(qc)) as client:
        yield client


@pytest.fixture
def admin_api(database_url):
    settings = CloudSettings(database_url=database_url, ingest_in_process=False, timezone=TZ)
    admin = make_user(database_url, "admin", "admin")
    with TestClient(create_app(settings), headers=bearer(admin)) as client:
        yield client


def daily_row(database_url, patient, metric, day):
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT n, min_value, max_value, sum_value FROM readings_daily "
            "WHERE patient_id = %s AND metric = %s AND day = %s",
            (patient, metric, day),
        ).fetchone()


def test_a_late_reading_updates_its_own_days_rollup_once(database_url):
    meter = SimulatedGlucoseMeter("G1")
    day = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai, 20 November
    store(database_url, meter.measure(5.0, patient_id="P1", at=day))
    store(database_url, meter.measure(9.0, patient_id="P1", at=day + timedelta(hours=2)))
    assert daily_row(database_url, "P1", "glucose", "2026-11-20") == (2, 5.0, 9.0, 14.0)

    # Four days later, a record the meter had kept arrives for the 20th.
    late = meter.measure(3.0, patient_id="P1", at=day + timedelta(hours=4))
    assert len(store(database_url, late)) == 1
    assert daily_row(database_url, "P1", "glucose", "2026-11-20") == (3, 3.0, 9.0, 17.0)
    # Sent again (a resend after a lost ack): stored once, counted once.
    assert store(database_url, late) == set()
    assert daily_row(database_url, "P1", "glucose", "2026-11-20") == (3, 3.0, 9.0, 17.0)


def test_a_device_time_with_an_offset_is_stored_as_the_devices_wall_clock(database_url):
    meter = SimulatedGlucoseMeter("G-OFFSET")
    at = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    [reading] = meter.measure(5.0, patient_id="P1", at=at)
    shanghai = datetime(2026, 11, 20, 9, 30, tzinfo=ZoneInfo(TZ))
    reading = reading.model_copy(update={"device_time": shanghai})
    assert store(database_url, [reading]) == {reading.reading_id}
    with psycopg.connect(database_url) as conn:
        (kept,) = conn.execute(
            "SELECT device_time FROM readings WHERE reading_id = %s", (reading.reading_id,)
        ).fetchone()
    assert kept == datetime(2026, 11, 20, 9, 30)


def test_the_rollup_day_is_the_hospitals_calendar_day(database_url):
    # 23:30 UTC on the 20th is 07:30 on the 21st in Shanghai.
    at = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    store(database_url, SimulatedGlucoseMeter("G2").measure(6.0, patient_id="P2", at=at))
    assert daily_row(database_url, "P2", "glucose", "2026-11-21") == (1, 6.0, 6.0, 6.0)


def test_latest_per_metric_ignores_older_arrivals(api, database_url):
    cuff = SimulatedCuff("C1")
    now = datetime.now(UTC)
    store(database_url, cuff.measure(130, 85, 70, patient_id="P3", at=now))
    store(database_url, cuff.measure(150, 95, 80, patient_id="P3", at=now - timedelta(days=2)))
    items = api.get("/api/v1/patients/P3/latest").json()["items"]
    assert {i["metric"]: i["value"] for i in items}["systolic"] == 130
    many = api.post("/api/v1/latest", json={"patient_ids": ["P3", "nobody"]}).json()["items"]
    assert {i["patient_id"] for i in many} == {"P3"}
    # The panel's rows are the JSON each latest value keeps (migration 0016): the older
    # arrival must have left it alone, as it left the value.
    assert _by_metric(many) == _by_metric([{**i, "patient_id": "P3"} for i in items])


def _by_metric(items: list[dict]) -> dict[str, tuple]:
    return {
        i["metric"]: (
            i["patient_id"], i["value"], i["reading_id"], i["source"],
            datetime.fromisoformat(i["measured_at"]),
        )
        for i in items
    }  # fmt: skip


def test_chart_downsamples_to_the_requested_points(api, database_url):
    cuff = SimulatedCuff("C2")
    start = datetime.now(UTC) - timedelta(days=30)
    for hour in range(0, 30 * 24, 6):  # four a day for 30 days
        store(
            database_url,
            cuff.measure(120 + hour % 7, 80, 70, patient_id="P4", at=start + timedelta(hours=hour)),
        )
    body = api.get(
        "/api/v1/patients/P4/readings",
        params={
            "metric": "systolic",
            "points": 30,
            "since": start.isoformat(),
            "until": (start + timedelta(days=30)).isoformat(),
        },
    ).json()
    assert body["bucket_seconds"] == 86400
    assert len(body["items"]) == 30
    assert sum(b["n"] for b in body["items"]) == 120
    raw = api.get("/api/v1/patients/P4/readings", params={"metric": "systolic", "limit": 5})
    assert len(raw.json()["items"]) == 5
    daily = api.get("/api/v1/patients/P4/daily", params={"metric": "systolic", "days": 90})
    assert sum(d["n"] for d in daily.json()["items"]) == 120


def test_home_bp_average_discards_the_first_day_and_ignores_centre_readings(api, database_url):
    zone = ZoneInfo(TZ)
    today = datetime.now(zone).replace(hour=8, minute=0, second=0, microsecond=0)
    home = SimulatedCuff("HOME-1")
    centre = SimulatedCuff("CENTRE-1", source=Source.CENTRE)
    for back in range(6, 0, -1):  # six days ending yesterday
        systolic = 170 if back == 6 else 140
        store(
            database_url,
            home.measure(systolic, 90, 70, patient_id="P5", at=today - timedelta(days=back)),
        )
    store(database_url, centre.measure(200, 120, 70, patient_id="P5", at=today))
    body = api.get("/api/v1/patients/P5/home-bp-average").json()
    assert body["systolic"] == 140.0 and body["diastolic"] == 90.0
    assert body["readings_used"] == 5 and body["sufficient"] is True
    assert body["day_discarded"] == str((today - timedelta(days=6)).date())


def test_patients_without_readings_for_n_days(api, database_url):
    now = datetime.now(UTC)
    store(
        database_url,
        SimulatedCuff("C3").measure(120, 80, 70, patient_id="QUIET", at=now - timedelta(days=5)),
    )
    store(database_url, SimulatedCuff("C4").measure(120, 80, 70, patient_id="ACTIVE", at=now))
    body = api.get("/api/v1/patients-without-readings", params={"days": 3}).json()
    assert [i["patient_id"] for i in body["items"]] == ["QUIET"]


def test_retention_drops_whole_old_chunks_and_keeps_rollups(database_url):
    cuff = SimulatedCuff("C5")
    old = datetime.now(UTC) - timedelta(days=400)
    store(database_url, cuff.measure(120, 80, 70, patient_id="P6", at=old))
    store(database_url, cuff.measure(121, 81, 71, patient_id="P6", at=datetime.now(UTC)))
    with psycopg.connect(database_url, autocommit=True) as conn:
        dropped = drop_old_readings(conn, timedelta(days=365))
        remaining = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
        rollups = conn.execute("SELECT count(*) FROM readings_daily").fetchone()[0]
    assert len(dropped) == 1
    assert remaining == 4
    assert rollups == 8


def test_a_home_device_belongs_to_one_patient_at_a_time(admin_api):
    api = admin_api
    device = {
        "serial": "BP-HOME-9",
        "kind": "blood_pressure_monitor",
        "model": "X1",
        "owner_type": "patient",
        "owner_id": "P7",
    }
    assert api.post("/api/v1/devices", json=device).status_code == 201
    assert api.post("/api/v1/devices", json=device).status_code == 409
    path = "/api/v1/devices/blood_pressure_monitor/BP-HOME-9"
    t1 = datetime(2026, 1, 1, tzinfo=UTC)
    t2 = datetime(2026, 6, 1, tzinfo=UTC)
    assert (
        api.post(
            f"{path}/bindings", json={"patient_id": "P7", "starts_at": t1.isoformat()}
        ).status_code
        == 201
    )
    assert (
        api.post(
            f"{path}/bindings", json={"patient_id": "P8", "starts_at": t2.isoformat()}
        ).status_code
        == 201
    )
    bindings = api.get(path).json()["bindings"]
    assert [(b["patient_id"], b["ends_at"] is None) for b in bindings] == [
        ("P7", False),
        ("P8", True),
    ]
    # Giving it to someone from a time inside P7's closed period would overlap: refused.
    clash = api.post(
        f"{path}/bindings",
        json={"patient_id": "P9", "starts_at": (t1 + timedelta(days=10)).isoformat()},
    )
    assert clash.status_code == 409
