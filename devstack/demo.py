"""`python -m devstack.demo`: the whole system on this machine, with simulated devices.

Starts (or reuses) a project-local TimescaleDB and Mosquitto under `.local/`, the cloud,
and a centre edge agent fed by simulated devices; loads a week of demo readings through the
real MQTT path; prints where to look; runs until Ctrl-C. Point `CAREBRIDGE_DATABASE_URL` or
`CAREBRIDGE_MQTT_HOST`/`CAREBRIDGE_MQTT_PORT` at existing services to use those instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from cloud.auth import Role
from cloud.db import care_store
from cloud.db.migrate import migrate
from devstack.cloud import CloudProcess
from devstack.demo_programmes import seed_programmes
from devstack.errors import StackError
from devstack.mosquitto import LocalMosquitto
from devstack.postgres import LocalPostgres
from edge_agent.agent import EdgeAgent
from edge_agent.runtime import Bluetooth, RunningAgent, running_agent
from edge_agent.settings import EdgeSettings
from protocols.logs import configure_logging
from protocols.reading import MealContext, Source
from simulators.ble.bleak_bumble import BumbleClient, BumbleScanner
from simulators.ble.devices.blood_pressure_monitor import BloodPressureMonitor
from simulators.ble.devices.glucose_meter import EmulatedGlucoseMeter
from simulators.ble.devices.pulse_oximeter import PulseOximeter
from simulators.ble.peripheral import DeviceInformation
from simulators.ble.radio import SimulatedRadio
from simulators.readings import SimulatedCuff, SimulatedGlucoseMeter, everyday_blood_pressure

REPO = Path(__file__).resolve().parents[1]
LOCAL = REPO / ".local"
PG_PORT = int(os.environ.get("CAREBRIDGE_DEMO_PG_PORT", "55432"))
MQTT_PORT = int(os.environ.get("CAREBRIDGE_MQTT_PORT", "18830"))
HTTP_PORT = int(os.environ.get("CAREBRIDGE_HTTP_PORT", "8080"))
EDGE_ID = "centre-demo"
DEMO_PATIENTS = [f"P-{n:04d}" for n in range(1, 21)]


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def start_database() -> tuple[str, LocalPostgres | None]:
    if url := os.environ.get("CAREBRIDGE_DATABASE_URL"):
        say(f"using the database at {url}")
        return url, None
    server = LocalPostgres(LOCAL / "pg" / "data", PG_PORT)
    if server.is_running():
        say(f"TimescaleDB already running on 127.0.0.1:{PG_PORT}")
    else:
        say(f"starting TimescaleDB on 127.0.0.1:{PG_PORT} (data in .local/pg)")
        server.start()
    return server.dsn, server


def start_broker() -> LocalMosquitto | None:
    if os.environ.get("CAREBRIDGE_MQTT_HOST"):
        say(f"using the broker at {os.environ['CAREBRIDGE_MQTT_HOST']}:{MQTT_PORT}")
        return None
    broker = LocalMosquitto(LOCAL / "mosquitto", MQTT_PORT)
    say(f"starting Mosquitto on 127.0.0.1:{MQTT_PORT} (data in .local/mosquitto)")
    broker.start()
    return broker


def start_cloud(database_url: str) -> CloudProcess:
    env = dict(
        os.environ,
        CAREBRIDGE_DATABASE_URL=database_url,
        CAREBRIDGE_MQTT_PORT=str(MQTT_PORT),
        CAREBRIDGE_HTTP_PORT=str(HTTP_PORT),
        CAREBRIDGE_INGEST_WORKER_ID="ingest-demo",
    )
    say("starting the cloud (log in .local/cloud.log)")
    cloud = CloudProcess(env, HTTP_PORT, LOCAL / "cloud.log")
    cloud.start(timeout=60)
    return cloud


DEMO_PASSWORD = "carebridge-demo"
DEMO_USERS = [
    ("cm01", "个管师 王芳", Role.CASE_MANAGER),
    ("doc01", "医生 李强", Role.DOCTOR),
    ("hm01", "健管师 赵敏", Role.HEALTH_MANAGER),
    ("qc01", "质控 陈静", Role.QC_SUPERVISOR),
    ("admin", "管理员", Role.ADMIN),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


def seed_people(database_url: str) -> None:
    """A care team with its staff and the demo patients (only what is missing)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO edges (edge_id, mode, label) VALUES (%s, 'centre', %s) "
            "ON CONFLICT (edge_id) DO NOTHING",
            (EDGE_ID, "演示管理中心 Demo centre"),
        )
        if conn.execute("SELECT 1 FROM care_teams WHERE team_id = 'team-cardio'").fetchone():
            return
        with conn.transaction():
            care_store.create_team(conn, "team-cardio", "心内科随访组")
            for user_id, name, role in DEMO_USERS:
                teams = [] if role in (Role.ADMIN, Role.QC_SUPERVISOR) else ["team-cardio"]
                care_store.create_user(conn, user_id, name, role, DEMO_PASSWORD, teams)
            care_store.set_team_lead(conn, "team-cardio", "doc01")
            for n, patient in enumerate(DEMO_PATIENTS):
                care_store.create_patient(
                    conn,
                    patient,
                    f"{SURNAMES[n]}{'建国秀英志明丽华'[n % 8]}",
                    team_id="team-cardio",
                    case_manager_id="cm01",
                    doctor_id="doc01",
                    id_number=f"11010119{50 + n}0101{n:03d}X",
                    phone=f"1380013{n:04d}",
                    cohorts=["hypertension"] + (["diabetes"] if n % 3 == 0 else []),
                )


async def load_history(agent: EdgeAgent, rng: random.Random) -> int:
    """A week of morning and evening readings for the demo patients (same ids every run)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # A device never reuses a record number: start each run's numbering from the date, so
    # a rerun on the same day resends the same records and another day adds new ones.
    first = int(today.timestamp()) // 3600
    cuffs = [
        SimulatedCuff(f"DEMO-BP-{i}", source=Source.CENTRE, next_sequence=first)
        for i in range(len(DEMO_PATIENTS))
    ]
    meters = [
        SimulatedGlucoseMeter(f"DEMO-GLU-{i}", next_sequence=first)
        for i in range(len(DEMO_PATIENTS))
    ]
    total = 0
    for day in range(7, 0, -1):
        for hour in (7, 19):
            at = today - timedelta(days=day) + timedelta(hours=hour)
            for patient, cuff, meter in zip(DEMO_PATIENTS, cuffs, meters, strict=True):
                readings = cuff.measure(*everyday_blood_pressure(rng), patient_id=patient, at=at)
                meal = MealContext.FASTING if hour == 7 else MealContext.AFTER_MEAL
                readings += meter.measure(
                    round(rng.gauss(7.2, 1.4), 1), patient_id=patient, meal=meal, at=at
                )
                total += await agent.submit(readings)
    # Two patients with a hypertensive crisis today, so the queue is not empty.
    for patient, cuff in list(zip(DEMO_PATIENTS, cuffs, strict=True))[:2]:
        total += await agent.submit(
            cuff.measure(188, 114, 96, patient_id=patient, at=today + timedelta(hours=8))
        )
    return total


def work_the_queue(base: str, rng: random.Random) -> int:
    """cm01 has already worked part of the week's queue: some alerts acknowledged, some of
    those resolved, so the dashboard's time-to-acknowledge and SLA figures have data. The
    two crises of today stay open for the visitor."""
    with httpx.Client(base_url=base, timeout=10) as api:
        token = api.post(
            "/api/v1/auth/token", json={"username": "cm01", "password": DEMO_PASSWORD}
        ).json()["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        deadline = time.monotonic() + 60
        items: list[dict[str, Any]] = []
        while time.monotonic() < deadline:  # ingest judges the week's readings meanwhile
            items = api.get(
                "/api/v1/queue", params={"status": "open", "tier": ["medium", "low"], "limit": 200}
            ).json()["items"]
            if len(items) >= 10:
                break
            time.sleep(1)
        worked = 0
        for n, item in enumerate(items):
            if n % 3 == 2:
                continue  # a third stays open
            path = f"/api/v1/alerts/{item['alert_id']}/actions"
            if api.post(path, json={"action": "acknowledge"}).is_success:
                worked += 1
                if n % 3 == 0:
                    api.post(
                        path,
                        json={
                            "action": "resolve",
                            "outcome_code": rng.choice(
                                ["patient_reached_advised", "doctor_informed"]
                            ),
                            "note": "电话随访，已告知复测与用药注意事项",
                        },
                    )
        return worked


DEMO_DEVICES = {
    # kind: (catalogue entry, address, serial)
    "blood_pressure_monitor": ("sig-blood-pressure", "C0:DE:DE:00:10:01", "CENTRE-CUFF-1"),
    "pulse_oximeter": ("sig-pulse-oximeter", "C0:DE:DE:00:22:01", "CENTRE-PLX-1"),
    "glucose_meter": ("sig-glucose", "C0:DE:DE:00:18:01", "CENTRE-GLU-1"),
}
UNASSIGNED_EVERY = 5
"""Every fifth live measurement is taken with no session open: it waits, unassigned, on the
centre station (hm01) until staff assign it."""


def emulated_devices() -> dict[str, Any]:
    """The centre's shared devices as emulated BLE peripherals (real GATT over bumble)."""

    def info(kind: str, model: str) -> DeviceInformation:
        serial = DEMO_DEVICES[kind][2]
        return DeviceInformation(manufacturer="CareBridge Demo", model=model, serial=serial)

    return {
        "blood_pressure_monitor": BloodPressureMonitor(
            address=DEMO_DEVICES["blood_pressure_monitor"][1],
            device_information=info("blood_pressure_monitor", "BPM-EMU-1"),
        ),
        "pulse_oximeter": PulseOximeter(
            address=DEMO_DEVICES["pulse_oximeter"][1],
            storage=True,
            continuous=False,
            device_information=info("pulse_oximeter", "PLX-EMU-1"),
        ),
        "glucose_meter": EmulatedGlucoseMeter(
            address=DEMO_DEVICES["glucose_meter"][1],
            clock_offset=timedelta(0),
            device_information=info("glucose_meter", "CB-GLU-1"),
        ),
    }


async def measure_on(device: Any, rng: random.Random) -> None:
    """A patient measures on the device now, as the device itself records it."""
    if isinstance(device, BloodPressureMonitor):
        device.store(*everyday_blood_pressure(rng))
    elif isinstance(device, PulseOximeter):
        await device.measure_spot(float(rng.randint(94, 99)), float(rng.randint(58, 90)))
    else:
        device.add_reading(round(rng.gauss(7.0, 1.2), 1))


async def simulate_centre(
    running: RunningAgent, devices: dict[str, Any], rng: random.Random, stop: asyncio.Event
) -> None:
    """A centre day, sped up: the health manager opens a session on a device for a patient
    and the patient measures; now and then someone measures with no session open."""
    for kind in devices:
        catalogue_id, address, _serial = DEMO_DEVICES[kind]
        await running.state.pair(
            address, catalogue_id=catalogue_id, kind=kind, now=datetime.now(UTC)
        )
    count = 0
    while not stop.is_set():
        count += 1
        kind = rng.choice(sorted(devices))
        address = DEMO_DEVICES[kind][1]
        if count % UNASSIGNED_EVERY:
            await running.state.open_session(
                address,
                rng.choice(DEMO_PATIENTS),
                staff_id="hm01",
                now=datetime.now(UTC),
                lasts=timedelta(minutes=2),
            )
        await asyncio.sleep(1.1)  # devices stamp whole seconds
        await measure_on(devices[kind], rng)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=8)
        await running.state.close_session(now=datetime.now(UTC), device_key=address)


async def run_edge() -> None:
    settings = EdgeSettings(
        edge_id=EDGE_ID,
        mode="centre",
        mqtt_host=os.environ.get("CAREBRIDGE_MQTT_HOST", "127.0.0.1"),
        mqtt_port=MQTT_PORT,
        outbox_path=LOCAL / "edge" / "outbox.sqlite3",
        credentials_path=LOCAL / "edge" / "credentials.json",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    rng = random.Random(20261124)
    bluetooth = Bluetooth(scanner_backend=BumbleScanner, client_backend=BumbleClient)
    devices = emulated_devices()
    # The radio first: the agent's Bluetooth side finds it when it starts scanning.
    async with (
        SimulatedRadio() as radio,
        running_agent(settings, stop, bluetooth=bluetooth) as running,
    ):
        for device in devices.values():
            await radio.add(device)
        added = await load_history(running.agent, rng)
        say(f"demo history queued through the edge outbox ({added} new readings)")
        base = f"http://127.0.0.1:{HTTP_PORT}"
        worked = await asyncio.to_thread(work_the_queue, base, rng)
        say(f"cm01 has acknowledged {worked} of the week's alerts (dashboard figures)")
        edge_health = f"http://127.0.0.1:{settings.health_port}/health"
        say("ready:")
        print(
            f"\n    open  {base}/               the web UI (sign in as cm01: 工作台 workbench)\n"
            f"          {base}/docs           the API: press Authorize and sign in\n"
            f"          {base}/health         health of database, broker and ingest\n"
            f"          {edge_health}   the centre edge agent's health\n\n"
            f"    users (password {DEMO_PASSWORD}): cm01 case manager, doc01 doctor,\n"
            "          hm01 centre health manager, qc01 QC supervisor, admin\n\n"
            "    An emulated cuff, pulse oximeter and glucose meter measure a patient every few\n"
            "    seconds over BLE; every fifth measurement waits unassigned on hm01's centre\n"
            "    station (现场测量). Ctrl-C stops everything; data stays in .local/.\n",
            flush=True,
        )
        await simulate_centre(running, devices, rng, stop)


def main() -> int:
    configure_logging(os.environ.get("CAREBRIDGE_LOG_LEVEL", "warning"), service="demo")
    LOCAL.mkdir(exist_ok=True)
    database: LocalPostgres | None = None
    broker: LocalMosquitto | None = None
    cloud: CloudProcess | None = None
    try:
        database_url, database = start_database()
        broker = start_broker()
        migrate(database_url)
        seed_people(database_url)
        seed_programmes(database_url, announce=say)
        cloud = start_cloud(database_url)
        asyncio.run(run_edge())
    except StackError as exc:
        say(f"error: {exc.reason}")
        return 1
    finally:
        say("stopping")
        if cloud is not None:
            cloud.stop()
        if broker is not None:
            broker.stop()
        if database is not None:
            database.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
